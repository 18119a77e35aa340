"""What a replica config predicts for the profiler's own measurements, from the engine. Pure.

The engine (``ReplicaEngine``) is driven on a virtual clock exactly as the profiler drove the server:
one request alone (TTFT), a wave of ``n`` sent at once (the step while all decode), a closed loop of
``n`` clients (output tokens/s once every client has had an answer). The report sets these beside the
measured points; the round-trip test compares them at loads the fit never saw.
"""

from __future__ import annotations

from heapq import heappop, heappush

from jetscale.engine.api import EngineRequest
from jetscale.engine.factory import make_engine
from jetscale.engine.presets import ReplicaConfig
from jetscale.profile.points import steady_tokens_s

__all__ = ["closed_loop_tokens_s", "ttft_alone_s", "wave_step_s"]


def ttft_alone_s(config: ReplicaConfig, prompt_tokens: int) -> float:
    """TTFT of one request on an idle replica: its prefill."""
    return config.roofline().prefill_s(prompt_tokens)


def wave_step_s(config: ReplicaConfig, context_tokens: float) -> float:
    """The decode step while the batch holds ``context_tokens`` tokens."""
    return config.roofline().decode_step_s(round(context_tokens))


def closed_loop_tokens_s(
    config: ReplicaConfig, clients: int, prompt_tokens: int, output_tokens: int, *, think_s: float = 0.0,
    rounds: int = 5,
) -> float:  # fmt: skip
    """Output tokens/s of ``clients`` closed-loop clients, measured as ``measure.closed_loop`` does; each
    client sends its next request ``think_s`` after its last one ended (the client's own overhead)."""
    engine = make_engine(config)
    ends: list[tuple[float, int]] = []
    due: list[float] = [0.0] * clients  # when each pending request reaches the server
    sent = 0
    limit = clients * rounds
    while len(ends) < limit:
        upcoming = engine.next_event_time()
        t = min(due[0], upcoming) if due and upcoming is not None else (due[0] if due else upcoming)
        if t is None:
            break
        while due and due[0] <= t:
            heappop(due)
            engine.submit(EngineRequest(request_id=sent, input_tokens=prompt_tokens, output_tokens=output_tokens,
                                        arrival_s=t), t)  # fmt: skip
            sent += 1
        for done in engine.advance(t)[1]:
            ends.append((done.end_s, done.output_tokens))
            if sent + len(due) < limit:
                heappush(due, done.end_s + think_s)
    rate = steady_tokens_s(ends, clients)
    return rate if rate is not None else 0.0
