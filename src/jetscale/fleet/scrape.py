"""Metrics for the fleet's HPA: what each replica's ``/metrics`` says, turned into the HPA's readings.

Two sources give the controller the same thing (``MetricsSource``): this module's ``DirectScrape``,
which GETs every running replica's ``/metrics`` each scrape interval and keeps the latest answer of
each, and ``jetscale.fleet.prometheus.PrometheusSource``, which asks a real Prometheus with PromQL as
prometheus-adapter does. Either way the readings follow the custom metrics API:

- a ``Pods`` metric is one value per pod: that pod's series of the metric (restricted to the metric's
  selector), combined per pod as the adapter rules jetscale renders combine them
  (``jetscale.k8s.metrics.pod_aggregation``: ``avg`` for fractions and percentages, ``sum`` for counts);
  a pod whose last scrape failed, or that has no such series, has no value (a *missing* pod to the HPA);
- an ``External`` metric is every matching series of the whole fleet;
- Resource, ContainerResource and Object metrics are not served by the local fleet: the reading is
  ``MetricUnavailable``, as a cluster without that metrics API answers.

When the source itself is down, every reading is ``MetricUnavailable`` and the HPA holds
(ScalingActive=False); it never mistakes an outage for low load.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from jetscale.fleet.clock import FleetClock
from jetscale.hpa.types import (
    ExternalMetric,
    MetricReading,
    MetricSourceType,
    MetricSpec,
    MetricUnavailable,
    PodMetric,
    PodMetrics,
)
from jetscale.k8s.metrics import pod_aggregation

__all__ = [
    "SIGNALS",
    "DirectScrape",
    "MetricsSource",
    "PodScrape",
    "ScrapeTarget",
    "Series",
    "aggregate",
    "fleet_signals",
    "parse_exposition",
    "readings_from_scrapes",
    "to_milli",
]

# The timeline's fleet signals: column of ``jetscale.report.timeline.Sample`` -> the replica metrics that
# fill it, the first a replica exports (JetStream's, then vLLM's: its waiting queue is the backlog)
SIGNALS: dict[str, tuple[str, ...]] = {
    "prefill_backlog": ("jetstream_prefill_backlog_size", "vllm:num_requests_waiting"),
    "slots_used": ("jetstream_slots_used_percentage",),
    "hbm_usage": ("memory_used_percentage",),
}
NOT_SERVED = "the local fleet serves Pods and External metrics only (no metrics API for {type} metrics)"

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Series:
    labels: Labels
    value: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ScrapeTarget:
    """A running replica (a pod with an address): its name and base URL."""

    pod: str
    url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PodScrape:
    """One scrape of one pod at model time ``t_s``: the series of the wanted metrics, or the error."""

    t_s: float
    series: Mapping[str, tuple[Series, ...]]
    error: str | None = None


class MetricsSource(Protocol):
    """Where the controller gets its readings (direct scrape or Prometheus)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def set_targets(self, targets: Sequence[ScrapeTarget]) -> None: ...

    async def prime(self, pods: Sequence[str], timeout_wall_s: float) -> None:
        """Wait (at most ``timeout_wall_s``) until every one of ``pods`` has been scraped once."""

    async def readings(self, metrics: Sequence[MetricSpec], pods: Sequence[str]) -> tuple[MetricReading, ...]: ...

    async def signals(self, pods: Sequence[str]) -> dict[str, float]: ...


# ---- the text format --------------------------------------------------------------------------------
def _labels(text: str) -> Labels:
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        eq = text.index("=", i)
        key = text[i:eq].strip().lstrip(",").strip()
        j = eq + 2  # past ="
        chars: list[str] = []
        while text[j] != '"':
            if text[j] == "\\":
                j += 1
                chars.append({"n": "\n"}.get(text[j], text[j]))
            else:
                chars.append(text[j])
            j += 1
        out.append((key, "".join(chars)))
        i = j + 1
        while i < n and text[i] in ", ":
            i += 1
    return tuple(out)


def parse_exposition(text: str, names: Iterable[str]) -> dict[str, tuple[Series, ...]]:
    """The samples of the metrics ``names`` in Prometheus text format ``text`` (other lines skipped)."""
    wanted = frozenset(names)
    found: dict[str, list[Series]] = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace != -1 and (space == -1 or brace < space):
            name = line[:brace]
            if name not in wanted:
                continue
            close = line.rindex("}")
            labels = _labels(line[brace + 1 : close])
            rest = line[close + 1 :].split()
        else:
            name = line[:space]
            if name not in wanted:
                continue
            labels = ()
            rest = line[space + 1 :].split()
        try:
            value = float(rest[0])
        except (IndexError, ValueError):
            continue
        found.setdefault(name, []).append(Series(labels, value))
    return {name: tuple(series) for name, series in found.items()}


# ---- from series to readings --------------------------------------------------------------------------
_MAX_INT64 = 2**63 - 1


def to_milli(value: float) -> int:
    """A metric value in milli-units as prometheus-adapter hands it to the HPA:
    ``NewMilliQuantity(int64(value*1000.0))``, truncated toward zero; NaN is 0."""
    if math.isnan(value):
        return 0
    milli = value * 1000.0
    if math.isinf(milli):
        return _MAX_INT64 if milli > 0 else -_MAX_INT64 - 1
    return max(-_MAX_INT64 - 1, min(_MAX_INT64, int(milli)))


def _matches(series: Series, selector: Labels | None) -> bool:
    if not selector:
        return True
    labels = dict(series.labels)
    return all(labels.get(k) == v for k, v in selector)


def aggregate(name: str, values: Sequence[float]) -> float:
    """One pod's series of ``name`` combined as the adapter rule does (``pod_aggregation``)."""
    if pod_aggregation(name) == "avg":
        return sum(values) / len(values)
    return float(sum(values))


def readings_from_scrapes(
    metrics: Sequence[MetricSpec], scrapes: Mapping[str, PodScrape | None], pods: Sequence[str]
) -> tuple[MetricReading, ...]:
    """The HPA's readings, one per metric, from the latest scrape of each of ``pods`` (None: never scraped)."""
    out: list[MetricReading] = []
    for metric in metrics:
        if metric.type is MetricSourceType.PODS:
            values: dict[str, PodMetric] = {}
            for pod in pods:
                scrape = scrapes.get(pod)
                if scrape is None or scrape.error is not None:
                    continue
                picked = [s.value for s in scrape.series.get(metric.name, ()) if _matches(s, metric.selector)]
                if picked:
                    milli = to_milli(aggregate(metric.name, picked))
                    values[pod] = PodMetric(value_milli=milli, timestamp_s=scrape.t_s)
            out.append(PodMetrics(values=values))
        elif metric.type is MetricSourceType.EXTERNAL:
            found = [
                (s.value, scrape.t_s)
                for pod in pods
                if (scrape := scrapes.get(pod)) is not None and scrape.error is None
                for s in scrape.series.get(metric.name, ())
                if _matches(s, metric.selector)
            ]
            if not found:
                out.append(MetricUnavailable(error=f"no series of external metric {metric.name} from any replica"))
            else:
                stamp = max(t for _, t in found)
                out.append(ExternalMetric(values_milli=tuple(to_milli(v) for v, _ in found), timestamp_s=stamp))
        else:
            out.append(MetricUnavailable(error=NOT_SERVED.format(type=metric.type.value)))
    return tuple(out)


def fleet_signals(scrapes: Mapping[str, PodScrape | None], pods: Sequence[str]) -> dict[str, float]:
    """The fleet average of each timeline signal over ``pods`` with a good scrape (NaN when none has one)."""
    out: dict[str, float] = {}
    for column, names in SIGNALS.items():
        out[column] = math.nan
        for name in names:
            per_pod = [
                aggregate(name, [s.value for s in series])
                for pod in pods
                if (scrape := scrapes.get(pod)) is not None
                and scrape.error is None
                and (series := scrape.series.get(name))
            ]
            if per_pod:
                out[column] = sum(per_pod) / len(per_pod)
                break
    return out


# ---- the direct scraper -------------------------------------------------------------------------------
class DirectScrape:
    """GET every target's ``/metrics`` each ``interval_s`` model seconds; keep each pod's latest result.

    A failed GET replaces the pod's last good scrape with the error, so the pod goes missing at once,
    as a metrics pipeline that lost the pod would report it. Inert until ``start()``.
    """

    def __init__(
        self, *, clock: FleetClock, names: Iterable[str], interval_s: float = 15.0, timeout_wall_s: float = 2.0
    ) -> None:
        self._clock = clock
        self._names = frozenset(names) | frozenset(name for alternatives in SIGNALS.values() for name in alternatives)
        self._interval_s = interval_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_wall_s)
        self._targets: dict[str, str] = {}
        self._scrapes: dict[str, PodScrape] = {}
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    def set_targets(self, targets: Sequence[ScrapeTarget]) -> None:
        self._targets = {t.pod: t.url for t in targets}
        for pod in list(self._scrapes):
            if pod not in self._targets:
                del self._scrapes[pod]

    async def start(self) -> None:
        if self._task is None:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
            self._task = asyncio.create_task(self._loop(), name="jetscale-scrape")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def scrape_once(self) -> None:
        """Scrape every target now (the loop calls this each interval)."""
        targets = dict(self._targets)
        results = await asyncio.gather(*(self._scrape(url) for url in targets.values()))
        for pod, result in zip(targets, results, strict=True):
            if pod in self._targets:
                self._scrapes[pod] = result

    async def prime(self, pods: Sequence[str], timeout_wall_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.scrape_once(), timeout_wall_s)

    @property
    def latest(self) -> dict[str, PodScrape]:
        return dict(self._scrapes)

    async def readings(self, metrics: Sequence[MetricSpec], pods: Sequence[str]) -> tuple[MetricReading, ...]:
        return readings_from_scrapes(metrics, self._scrapes, pods)

    async def signals(self, pods: Sequence[str]) -> dict[str, float]:
        return fleet_signals(self._scrapes, pods)

    async def _loop(self) -> None:
        period = self._clock.to_wall_s(self._interval_s)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            await self.scrape_once()
            next_at += period
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def _scrape(self, url: str) -> PodScrape:
        assert self._http is not None
        t_s = self._clock.model_s()
        try:
            async with self._http.get(f"{url}/metrics") as response:
                text = await response.text()
                if response.status != 200:
                    return PodScrape(t_s=t_s, series={}, error=f"HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError) as exc:
            return PodScrape(t_s=t_s, series={}, error=f"{type(exc).__name__}: {exc}")
        return PodScrape(t_s=t_s, series=parse_exposition(text, self._names))
