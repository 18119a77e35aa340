"""The contract between the engine model and its drivers (the live server and the simulator).

An ``Engine`` is one replica as a state machine with no clock (JetStream's ``ReplicaEngine``, vLLM's
``VllmEngine``; ``jetscale.engine.factory.make_engine`` picks by the config's stack): the caller passes ``now_s`` on
its own clock (wall time x speed in the server, virtual time in the simulator) and asks when the next
thing will happen. Every method is O(1) plus O(requests that change stage); no per-token objects.

A request's life: ``submit`` puts it in the prefill backlog (or refuses it when the backlog is at its
bound) -> prefill (its first token is produced when the prefill ends) -> transfer -> generate backlog
-> insert into a free decode slot -> one generate step per loop for the whole batch -> finished when it
has produced ``output_tokens`` tokens, which frees its slot for the next prefilled request. A request
whose client goes away is ``cancel``-led: it leaves its backlog, or its slot at the next step.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

__all__ = ["Completion", "Engine", "EngineRequest", "EngineSnapshot", "FirstToken", "Refusal", "Shed", "Stage"]


class Stage(StrEnum):
    PREFILL_BACKLOG = "prefill_backlog"
    PREFILL = "prefill"
    TRANSFER_BACKLOG = "transfer_backlog"
    GENERATE_BACKLOG = "generate_backlog"
    DECODE = "decode"
    DONE = "done"


class Shed(StrEnum):
    """Why ``submit`` refused a request."""

    BACKLOG_FULL = "backlog_full"  # the prefill backlog is at prefill_backlog_limit
    QUEUE_WAIT = "queue_wait"  # its expected wait for a prefill is over max_queue_wait_s


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """The engine's last refusal: why, the expected wait it saw, and when a retry would likely be taken."""

    reason: Shed
    expected_wait_s: float  # engine seconds a request would have waited for its prefill to start
    retry_in_s: float  # engine seconds until a place frees (backlog full) or the wait falls under the bound


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineRequest:
    """A request as the engine sees it: sizes in tokens and when it arrived."""

    request_id: int
    input_tokens: int
    output_tokens: int  # tokens to produce, the first one by the prefill (>= 1)
    arrival_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstToken:
    """The prefill of ``request_id`` ended at ``time_s`` and produced its first token."""

    request_id: int
    time_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Completion:
    """A finished request with the times of its stages (all on the caller's clock)."""

    request_id: int
    input_tokens: int
    output_tokens: int
    arrival_s: float
    prefill_start_s: float
    first_token_s: float  # prefill end
    insert_s: float  # took a decode slot
    end_s: float

    @property
    def ttft_s(self) -> float:
        return self.first_token_s - self.arrival_s

    @property
    def latency_s(self) -> float:
        return self.end_s - self.arrival_s

    @property
    def tpot_s(self) -> float:
        """Time per output token after the first (0 for one-token requests)."""
        rest = self.output_tokens - 1
        return (self.end_s - self.first_token_s) / rest if rest > 0 else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSnapshot:
    """The replica's gauges at one instant, as /metrics reports them."""

    prefill_backlog: int  # waiting for prefill, excluding the one being prefilled
    transfer_backlog: int
    generate_backlog: int  # prefilled, waiting for a decode slot
    slots_used: int
    decode_slots: int
    hbm_used_bytes: int
    hbm_total_bytes: int
    duty_cycle: float  # share of time the accelerator was busy since the previous snapshot (0..1)
    # vLLM's (0 for JetStream): the share of KV cache blocks in use, preemptions so far, and prompt tokens
    # looked up in / found in the prefix cache so far. For vLLM, prefill_backlog is its waiting queue and
    # slots_used its running requests (prefilling ones included).
    kv_cache_usage: float = 0.0
    preemptions: int = 0
    prefix_cache_queries: int = 0
    prefix_cache_hits: int = 0

    @property
    def slots_used_fraction(self) -> float:
        return self.slots_used / self.decode_slots if self.decode_slots else 0.0


class Engine(Protocol):
    """What the server and the simulator call. Events are returned in time order."""

    last_refusal: Refusal | None  # set each time ``submit`` returns False

    def submit(self, request: EngineRequest, now_s: float) -> bool:
        """Queue ``request`` for prefill; False (nothing changes; see ``last_refusal``) when it is shed."""
        ...

    def expected_wait_s(self, now_s: float) -> float:
        """The engine's estimate of how long a request submitted now would wait for its prefill to start."""
        ...

    def cancel(self, request_id: int, now_s: float) -> Stage | None:
        """Drop ``request_id`` (its client went away); the stage it left, or None if unknown or finished."""
        ...

    def advance(self, now_s: float) -> tuple[list[FirstToken], list[Completion]]:
        """Run the model up to ``now_s``; return first tokens and completions that happened by then."""
        ...

    def next_event_time(self) -> float | None:
        """When the next first token or completion will happen if nothing is submitted; None when idle."""
        ...

    def tokens_generated(self, request_id: int, now_s: float) -> int:
        """Tokens ``request_id`` has produced by ``now_s`` (0 before its prefill ends), for streaming."""
        ...

    def snapshot(self, now_s: float) -> EngineSnapshot:
        """The gauges at ``now_s``."""
        ...
