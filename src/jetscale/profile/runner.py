"""A profile run: the sweep, its bounds, and resuming from what an earlier run measured. I/O.

The sweep, in order (each step saved to ``DIR/points.json`` as soon as it is measured):

1. **Discover**: the server answers a warm-up request; ``/metrics`` tells whether it exports JetStream's
   (or vLLM's) metrics; for the OpenAI API, ``/v1/models`` names the model.
2. **Prefill**: TTFT at concurrency 1 for prompt lengths at and between JetStream's buckets up to the
   longest prompt (so padding, where the server pads, shows as flat steps).
3. **Decode**: waves of 1, 2, 4, ... requests at a short and a long prompt, up to the concurrency
   ceiling; output lengths long enough that every wave has a stretch where all decode together. The slot
   count comes from the server's metrics where it has JetStream's (active requests / share of slots in
   use); otherwise from the first wave that queues (then bisected).
4. **Capacity**: closed loops at the slot count and twice it (within the ceiling): the throughput where
   it stops growing and requests start to queue.

Bounds: ``budget_s`` of wall time in all (checked before each measurement), ``max_concurrency``, and a
stop at the first burst of errors (``error_burst`` failures in a row). Whatever stops it, what was
measured is kept and the run says why it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import grpc

from jetscale.engine.accelerator import PREFILL_BUCKETS
from jetscale.errors import ConfigError
from jetscale.profile.client import Client, RequestFailed
from jetscale.profile.measure import MetricsReader, closed_loop, decode_wave, prefill_point
from jetscale.profile.points import Measurements

__all__ = ["ProfileOptions", "plan_prompt_lengths", "run_profile"]

POINTS_FILE = "points.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileOptions:
    target: str  # base URL
    api: str  # jetstream-http or openai
    out: Path
    max_prompt_tokens: int  # the longest prompt to send (the replica's max_prefill_length)
    max_output_tokens: int  # the most tokens a request may ask for
    server_speed: float = 1.0
    budget_s: float = 600.0
    max_concurrency: int = 64
    samples: int = 5  # requests per prefill point (their median)
    error_burst: int = 3
    model: str | None = None
    metrics: str | None = None  # base URL of the server's /metrics when it is not the target (gRPC)


def plan_prompt_lengths(max_prompt_tokens: int) -> list[int]:
    """Bucket edges and the points three quarters of the way to them, up to ``max_prompt_tokens``."""
    lengths = {max_prompt_tokens}
    for bucket in PREFILL_BUCKETS:
        for length in (bucket * 3 // 4, bucket):
            if 1 <= length <= max_prompt_tokens:
                lengths.add(length)
    return sorted(lengths)


class _Stop(Exception):
    """The budget is spent or errors came in a burst."""


class _Run:
    def __init__(self, options: ProfileOptions, points: Measurements) -> None:
        self.options = options
        self.points = points
        self.deadline = time.monotonic() + options.budget_s
        self.failures = 0

    def save(self) -> None:
        path = self.options.out / POINTS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.points.to_json(), encoding="utf-8")
        tmp.replace(path)

    def check_budget(self) -> None:
        if time.monotonic() > self.deadline:
            raise _Stop(f"budget of {self.options.budget_s:g} s spent")

    def failed(self, error: RequestFailed) -> None:
        self.failures += 1
        self.points.errors.append(str(error))
        if self.failures >= self.options.error_burst:
            raise _Stop(f"{self.failures} requests failed in a row, the last: {error}")

    def ok(self) -> None:
        self.failures = 0


def _load(options: ProfileOptions) -> Measurements:
    path = options.out / POINTS_FILE
    if path.is_file():
        points = Measurements.from_json(path.read_text(encoding="utf-8"), source=str(path))
        if (points.target, points.api, points.server_speed) != (options.target, options.api, options.server_speed):
            raise ConfigError(
                f"'--out' {options.out} holds a profile of {points.target} ({points.api}, speed "
                f"{points.server_speed:g}); give another folder to profile {options.target} (got the same)"
            )
        points.stopped = ""
        return points
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Measurements(target=options.target, api=options.api, server_speed=options.server_speed, started=started)


async def run_profile(
    options: ProfileOptions,
    *,
    say: Callable[[str], None] = lambda _: None,
    advance: Callable[[int], None] = lambda _: None,
    total: Callable[[int], None] = lambda _: None,
) -> Measurements:
    """Measure the server at ``options.target``; see the module docstring. ``advance`` and ``total`` drive
    a progress bar (steps done, steps planned)."""
    options.out.mkdir(parents=True, exist_ok=True)
    points = _load(options)
    run = _Run(options, points)
    lengths = plan_prompt_lengths(options.max_prompt_tokens)
    timeout = aiohttp.ClientTimeout(total=max(60.0, options.budget_s))
    grpc_target = options.target.removeprefix("grpc://") if options.api == "jetstream-grpc" else None
    channel = grpc.aio.insecure_channel(grpc_target) if grpc_target is not None else None
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        client = Client(session, base=options.target, api=options.api, model=options.model, channel=channel)
        metrics_base = options.metrics or (None if grpc_target is not None else options.target)
        try:
            await _discover(run, session, client)
            metrics = await MetricsReader.discover(session, metrics_base) if metrics_base is not None else None
            points.server["metrics"] = metrics.family if metrics is not None else "none"
            concurrencies = _doublings(options.max_concurrency)
            total(len(lengths) + 2 * len(concurrencies) + 2)
            await _prefill(run, client, lengths, advance)
            await _decode(run, client, metrics, concurrencies, advance)
            await _capacity(run, client, advance)
        except _Stop as stop:
            points.stopped = str(stop)
            say(f"stopped early: {stop}; what was measured is kept")
        finally:
            run.save()
            if channel is not None:
                await channel.close()
    return points


async def _discover(run: _Run, session: aiohttp.ClientSession, client: Client) -> None:
    options = run.options
    if options.api == "openai" and client.model is None:
        try:
            async with session.get(f"{options.target}/v1/models", timeout=aiohttp.ClientTimeout(total=10)) as response:
                doc = await response.json(content_type=None) if response.status == 200 else {}
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise ConfigError(f"'--target' must be a server that answers (got {options.target!r}: {error})") from None
        models = doc.get("data") if isinstance(doc, dict) else None
        if isinstance(models, list) and models and isinstance(models[0], dict):
            client.model = str(models[0].get("id"))
    run.points.server["model"] = client.model
    try:
        for _ in range(2):  # warm-up: compilation, caches, connection set-up
            await client.request(8, 2)
    except RequestFailed as error:
        if error.status == 0:  # no HTTP answer at all
            raise ConfigError(f"'--target' must be a server that answers (got {options.target!r}: {error})") from None
        raise ConfigError(f"'--target' must answer a {options.api} request (got {options.target!r}: {error})") from None
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        raise ConfigError(f"'--target' must be a server that answers (got {options.target!r}: {error})") from None


async def _prefill(run: _Run, client: Client, lengths: list[int], advance: Callable[[int], None]) -> None:
    done = {p.prompt_tokens for p in run.points.prefill}
    for length in lengths:
        if length in done:
            advance(1)
            continue
        run.check_budget()
        try:
            point = await prefill_point(client, length, samples=run.options.samples, speed=run.options.server_speed)
        except RequestFailed as error:
            run.failed(error)
            advance(1)
            continue
        run.ok()
        run.points.prefill.append(point)
        run.save()
        advance(1)


def _doublings(ceiling: int) -> list[int]:
    out, n = [], 1
    while n <= ceiling:
        out.append(n)
        n *= 2
    return out


async def _decode(
    run: _Run, client: Client, metrics: MetricsReader | None, concurrencies: list[int], advance: Callable[[int], None]
) -> None:
    options = run.options
    short = max(1, options.max_prompt_tokens // 8)
    long = max(short + 1, options.max_prompt_tokens // 2)
    done = {(p.concurrency, p.prompt_tokens) for p in run.points.decode}
    queued_at: int | None = None
    for prompt in (short, long):
        for n in concurrencies:
            if (queued_at is not None and n >= queued_at) or (run.points.slots is not None and n > run.points.slots):
                advance(1)
                continue
            if (n, prompt) in done:
                advance(1)
                continue
            run.check_budget()
            output = _wave_output(run, n, prompt)
            try:
                wave = await decode_wave(client, n, prompt, output, speed=options.server_speed, metrics=metrics)
            except RequestFailed as error:
                run.failed(error)
                advance(1)
                continue
            run.ok()
            if wave.slots_seen is not None and run.points.slots is None and n >= 2:
                run.points.slots = wave.slots_seen
                run.points.slots_source = f"the server's {metrics.family if metrics else ''} metrics"
            if wave.queued:
                queued_at = n if queued_at is None else min(queued_at, n)
            if wave.point is not None:
                run.points.decode.append(wave.point)
            run.save()
            advance(1)
    if run.points.slots is None:
        run.points.slots, run.points.slots_source = await _bisect_slots(run, client, queued_at, short)
        run.save()


def _wave_output(run: _Run, n: int, prompt: int) -> int:
    """Output tokens for a wave of ``n``: enough that all decode together for a stretch after the prefills."""
    options = run.options
    cap = max(2, options.max_output_tokens)
    ttft = [p.ttft_s for p in run.points.prefill if p.prompt_tokens >= prompt]
    steps = [p.step_s for p in run.points.decode]
    wanted = int(1.5 * n * min(ttft) / min(steps)) + 48 if ttft and steps else 64
    return max(2, min(cap, max(64, wanted)))


async def _bisect_slots(run: _Run, client: Client, queued_at: int | None, prompt: int) -> tuple[int | None, str]:
    """The largest concurrency that does not queue, between the last clean wave and the first queued one."""
    if queued_at is None:
        clean = max((p.concurrency for p in run.points.decode), default=None)
        return clean, f"at least {clean}: no wave up to the ceiling queued" if clean else "unknown"
    low, high = max(1, queued_at // 2), queued_at
    while high - low > 1:
        run.check_budget()
        middle = (low + high) // 2
        try:
            wave = await decode_wave(client, middle, prompt, _wave_output(run, middle, prompt),
                                     speed=run.options.server_speed, metrics=None)  # fmt: skip
        except RequestFailed as error:
            run.failed(error)
            break
        if wave.queued:
            high = middle
        else:
            low = middle
            if wave.point is not None:
                run.points.decode.append(wave.point)
    return low, f"the largest wave that did not queue ({high} queued)"


async def _capacity(run: _Run, client: Client, advance: Callable[[int], None]) -> None:
    options = run.options
    slots = run.points.slots or 1
    prompt = max(1, options.max_prompt_tokens // 8)
    output = min(max(2, options.max_output_tokens), 64)
    done = {p.concurrency for p in run.points.capacity}
    for n in (slots, 2 * slots):
        if n > options.max_concurrency or n in done:
            advance(1)
            continue
        run.check_budget()
        try:
            point = await closed_loop(client, n, prompt, output, speed=options.server_speed, deadline=run.deadline)
        except RequestFailed as error:
            run.failed(error)
            advance(1)
            continue
        run.ok()
        if point is not None:
            run.points.capacity.append(point)
            run.save()
        advance(1)
