"""Latency statistics kept without storing every request: exact percentiles per short window, and a
log-bucketed histogram for the whole run.

Definitions are those of ``jetscale load`` (``jetscale.load.stats``), measured from the request's
arrival (a simulated client sends at arrival, over a network that takes no time):
TTFT = first token - arrival; E2E = end - arrival; TPOT = (end - first token) / (output tokens - 1),
for requests of two or more tokens.

``LogHistogram`` buckets are ``BUCKET_RATIO`` wide (about 1 %) from 0.1 ms to 100,000 s; a percentile
is the geometric middle of the bucket holding its rank, so it is within half a bucket (about 0.5 %) of
the exact value. Windows (a timeline sample, a minute) are small, so their percentiles are exact
(numpy's default, linear interpolation), as are the counts of requests within an SLO target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from jetscale.engine.api import Completion

__all__ = [
    "BUCKET_RATIO",
    "CompletionArrays",
    "LatencyStats",
    "LogHistogram",
    "completion_arrays",
    "window_percentiles",
]

BUCKET_RATIO = 1.01
_LOW_S = 1e-4
_HIGH_S = 1e5


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CompletionArrays:
    """A batch of finished requests as arrays (seconds and tokens); ``tpot_s`` is NaN for 1-token ones."""

    request_id: np.ndarray
    arrival_s: np.ndarray
    first_token_s: np.ndarray
    end_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.end_s)

    @property
    def ttft_s(self) -> np.ndarray:
        result: np.ndarray = self.first_token_s - self.arrival_s
        return result

    @property
    def e2e_s(self) -> np.ndarray:
        result: np.ndarray = self.end_s - self.arrival_s
        return result

    @property
    def tpot_s(self) -> np.ndarray:
        rest = self.output_tokens - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            result: np.ndarray = np.where(rest > 0, (self.end_s - self.first_token_s) / np.maximum(rest, 1), np.nan)
        return result


def completion_arrays(done: Sequence[Completion], *, ids: bool = True) -> CompletionArrays:
    """The fields of ``done`` as arrays (one pass per field). Without ``ids``, ``request_id`` is left empty
    (latency needs only the times and the lengths)."""
    n = len(done)
    empty = np.empty(0, dtype=np.int64)
    return CompletionArrays(
        request_id=np.fromiter((c.request_id for c in done), dtype=np.int64, count=n) if ids else empty,
        arrival_s=np.fromiter((c.arrival_s for c in done), dtype=float, count=n),
        first_token_s=np.fromiter((c.first_token_s for c in done), dtype=float, count=n),
        end_s=np.fromiter((c.end_s for c in done), dtype=float, count=n),
        input_tokens=np.fromiter((c.input_tokens for c in done), dtype=np.int64, count=n),
        output_tokens=np.fromiter((c.output_tokens for c in done), dtype=np.int64, count=n),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyStats:
    """A latency distribution in seconds (NaN when empty)."""

    count: int
    mean_s: float
    p50_s: float
    p90_s: float
    p95_s: float
    p99_s: float
    max_s: float

    def at(self, percentile: float) -> float:
        table = {50.0: self.p50_s, 90.0: self.p90_s, 95.0: self.p95_s, 99.0: self.p99_s, 100.0: self.max_s}
        return table.get(float(percentile), math.nan)


class LogHistogram:
    """Counts of values in log-spaced buckets; O(1) memory whatever the number of values."""

    __slots__ = ("_counts", "_edges", "count", "max", "total")

    def __init__(self) -> None:
        n = math.ceil(math.log(_HIGH_S / _LOW_S) / math.log(BUCKET_RATIO))
        self._edges = _LOW_S * BUCKET_RATIO ** np.arange(n + 1)
        # bucket 0 holds values below the first edge, bucket n + 1 values above the last
        self._counts = np.zeros(n + 2, dtype=np.int64)
        self.count = 0
        self.total = 0.0
        self.max = -math.inf

    def add(self, values: np.ndarray) -> None:
        v = values[np.isfinite(values)]
        if not len(v):
            return
        index = np.searchsorted(self._edges, v, side="right")
        self._counts += np.bincount(index, minlength=len(self._counts))
        self.count += len(v)
        self.total += float(v.sum())
        self.max = max(self.max, float(v.max()))

    def merge(self, other: LogHistogram) -> None:
        self._counts += other._counts
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)

    def quantile(self, q: float, *, infinite: int = 0) -> float:
        """The value at quantile ``q`` (0..1): nearest rank, placed at its bucket's geometric middle.
        ``infinite`` more values count as larger than any (refused requests): inf when the rank is theirs."""
        n = self.count + infinite
        if not n:
            return math.nan
        rank = max(1, math.ceil(q * n))
        if rank > self.count:
            return math.inf
        bucket = int(np.searchsorted(np.cumsum(self._counts), rank, side="left"))
        edges = self._edges
        if bucket == 0:
            return float(edges[0])
        if bucket >= len(edges):
            return self.max
        return min(float(math.sqrt(edges[bucket - 1] * edges[bucket])), self.max)

    def stats(self) -> LatencyStats:
        if not self.count:
            nan = math.nan
            return LatencyStats(count=0, mean_s=nan, p50_s=nan, p90_s=nan, p95_s=nan, p99_s=nan, max_s=nan)
        q = self.quantile
        return LatencyStats(
            count=self.count,
            mean_s=self.total / self.count,
            p50_s=q(0.50),
            p90_s=q(0.90),
            p95_s=q(0.95),
            p99_s=q(0.99),
            max_s=self.max,
        )


def window_percentiles(values: np.ndarray, percentiles: Sequence[float]) -> list[float]:
    """Exact percentiles of a window's finite values (NaN each when there are none)."""
    v = values[np.isfinite(values)]
    if not len(v):
        return [math.nan] * len(percentiles)
    return [float(x) for x in np.percentile(v, percentiles)]
