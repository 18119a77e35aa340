"""The three measurements of a profile, each on a live server through ``Client``. I/O, wall clock.

* ``prefill_point``: TTFT of one prompt length at concurrency 1, the median of a few requests (the least
  of them would start every prediction from the best case).
* ``decode_wave``: ``n`` requests sent at once. Their prefills run first, then they decode together; the
  step time is read over the stretch where every one of them has its first token and none has ended
  (per request: time between two messages over the tokens between them; the median over requests).
  A wave in which a request got its first token only after another ended was queued: the server has
  fewer than ``n`` slots (or batches no further).
* ``closed_loop``: ``n`` clients, each sending its next request when the last one ends: output tokens/s
  over the stretch after every client's first answer, and the median TTFT.

Times come back in model seconds (wall x ``speed``).
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from dataclasses import dataclass

import aiohttp

from jetscale.profile.client import Client, RequestFailed, Timeline
from jetscale.profile.points import CapacityPoint, DecodePoint, PrefillPoint, steady_tokens_s

__all__ = ["MetricsReader", "RequestFailed", "WaveResult", "closed_loop", "decode_wave", "prefill_point"]


async def prefill_point(client: Client, prompt_tokens: int, *, samples: int, speed: float) -> PrefillPoint:
    ttfts = []
    for k in range(samples):
        timeline = await client.request(prompt_tokens, 1, seed=k)
        ttfts.append(timeline.first_token_s * speed)
    measured = timeline.prompt_tokens or prompt_tokens
    return PrefillPoint(prompt_tokens=measured, ttft_s=statistics.median(ttfts), samples=samples)


@dataclass(frozen=True, slots=True, kw_only=True)
class WaveResult:
    point: DecodePoint | None  # None: no stretch where all decoded together
    queued: bool  # some request started only after another ended
    slots_seen: int | None  # the slot count the server's metrics implied mid-wave


async def decode_wave(
    client: Client, concurrency: int, prompt_tokens: int, output_tokens: int, *, speed: float,
    metrics: MetricsReader | None,
) -> WaveResult:  # fmt: skip
    waiting = concurrency
    all_started = asyncio.Event()

    def started() -> None:
        nonlocal waiting
        waiting -= 1
        if waiting == 0:
            all_started.set()

    async def read_slots(reader: MetricsReader) -> int | None:
        await all_started.wait()
        return await reader.slots(active=concurrency)

    watcher = asyncio.create_task(read_slots(metrics)) if metrics is not None else None
    try:
        done = await asyncio.gather(
            *(client.request(prompt_tokens, output_tokens, seed=k, on_first_token=started) for k in range(concurrency))
        )
        slots_seen = await watcher if watcher is not None else None
    finally:
        if watcher is not None and not watcher.done():
            watcher.cancel()
    first_all = max(t.sent_s + t.first_token_s for t in done)
    end_any = min(t.sent_s + t.end_s for t in done)
    queued = first_all > end_any
    steps: list[float] = []
    middle = (first_all + end_any) / 2
    for t in done:
        inside = [(t.sent_s + s, n) for s, n in zip(t.times_s, t.tokens, strict=True)
                  if first_all <= t.sent_s + s <= end_any]  # fmt: skip
        if len(inside) >= 2 and inside[-1][1] - inside[0][1] >= 2:
            steps.append((inside[-1][0] - inside[0][0]) / (inside[-1][1] - inside[0][1]))
    if queued or not steps:
        return WaveResult(point=None, queued=queued, slots_seen=None if queued else slots_seen)
    context = sum((t.prompt_tokens or prompt_tokens) + _tokens_at(t, middle) for t in done)
    point = DecodePoint(
        concurrency=concurrency, prompt_tokens=prompt_tokens, output_tokens=output_tokens,
        context_tokens=context, step_s=statistics.median(steps) * speed,
    )  # fmt: skip
    return WaveResult(point=point, queued=False, slots_seen=slots_seen)


def _tokens_at(timeline: Timeline, at: float) -> float:
    count = 0.0
    for s, n in zip(timeline.times_s, timeline.tokens, strict=True):
        if timeline.sent_s + s > at:
            break
        count = n
    return count


async def closed_loop(
    client: Client, concurrency: int, prompt_tokens: int, output_tokens: int, *, speed: float, rounds: int = 5,
    deadline: float,
) -> CapacityPoint | None:  # fmt: skip
    """``concurrency`` clients for ``rounds`` requests each (or until ``deadline``, a monotonic time)."""
    ends: list[tuple[float, int]] = []
    ttfts: list[float] = []

    async def user(k: int) -> None:
        for r in range(rounds):
            if time.monotonic() > deadline:
                return
            timeline = await client.request(prompt_tokens, output_tokens, seed=k * rounds + r)
            ends.append((timeline.sent_s + timeline.end_s, timeline.output_tokens))
            ttfts.append(timeline.first_token_s * speed)

    await asyncio.gather(*(user(k) for k in range(concurrency)))
    rate = steady_tokens_s(ends, concurrency)
    if rate is None or rate <= 0:
        return None
    return CapacityPoint(
        concurrency=concurrency, prompt_tokens=prompt_tokens, output_tokens=output_tokens,
        output_tokens_s=rate / speed, ttft_p50_s=statistics.median(ttfts), requests=len(ends),
    )  # fmt: skip


class MetricsReader:
    """The server's ``/metrics``, when it has JetStream's or vLLM's: what they say about slots."""

    def __init__(self, session: aiohttp.ClientSession, url: str, family: str) -> None:
        self._session = session
        self._url = url
        self.family = family  # "jetstream" or "vllm"

    @classmethod
    async def discover(cls, session: aiohttp.ClientSession, base: str) -> MetricsReader | None:
        try:
            async with session.get(f"{base}/metrics", timeout=aiohttp.ClientTimeout(total=5)) as response:
                text = await response.text() if response.status == 200 else ""
        except (aiohttp.ClientError, TimeoutError):
            return None
        if "jetstream_slots_used_percentage" in text:
            return cls(session, f"{base}/metrics", "jetstream")
        if "vllm:num_requests_running" in text:
            return cls(session, f"{base}/metrics", "vllm")
        return None

    async def slots(self, *, active: int) -> int | None:
        """JetStream: ``active`` / the share of slots in use. vLLM reports no slot count: None."""
        try:
            async with self._session.get(self._url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return None
        if self.family != "jetstream":
            return None
        values = [float(v) for v in re.findall(r"^jetstream_slots_used_percentage(?:\{[^}]*\})? (\S+)$", text, re.M)]
        share = sum(values) / len(values) if values else 0.0
        return round(active / share) if share > 0 else None
