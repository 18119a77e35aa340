"""Statistics of a load run: latency percentiles, throughput, errors, SLOs met, generator health.

Definitions (all client-side, measured from the moment the request was written):

- TTFT: first response bytes (streamed APIs) - sent. Non-streamed responses have no TTFT.
- TPOT: (end - first token) / (output tokens - 1), requests with 2+ tokens. This is *not* JetStream
  benchmark_serving's "TPOT" (latency / output tokens, which includes the TTFT).
- E2E: end of the response - sent.
- Throughput: finished requests and tokens per second of the measured window.
- SLO ``ttft_p95=2s``: met when the p95 TTFT of successful requests is <= 2 s. ``share_within`` is the share
  of all finished requests that were successful *and* within the target, so errors count as misses (the
  simulator's ``share_within`` is the same count; *attainment*, a share of minutes, is ``jetscale tune``'s).
- Generator health (open loop and trace replay): lateness = sent - scheduled. The generator kept up when
  at most ``LATE_SHARE`` of requests (or one request, in a short run) were sent more than ``LATE_S``
  late and none was left unsent.

- Time base: every figure is on the wall clock of this process. Against a server whose time is
  compressed (``jetscale serve --speed 10``, ``jetscale up --speed 10``) ``in_model_time`` restates the
  headline figures on the server's clock: durations x speed, rates / speed (client overhead is scaled too).

Latency percentiles per interval group requests by the time they ended; sends by the time they were sent.
Percentiles use numpy's default (linear interpolation). Pure: records in, frozen dataclasses out.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from jetscale.errors import ConfigError
from jetscale.load.records import Outcome, Records
from jetscale.units import parse_duration_s

__all__ = [
    "LATE_S",
    "LATE_SHARE",
    "PERCENTILES",
    "Dist",
    "GeneratorHealth",
    "Interval",
    "Metric",
    "Slo",
    "SloResult",
    "Summary",
    "dist",
    "parse_slos",
    "summarize",
]

PERCENTILES = (50, 90, 95, 99)
LATE_S = 0.010
LATE_SHARE = 0.01


class Metric(StrEnum):
    TTFT = "ttft"
    TPOT = "tpot"
    E2E = "e2e"


@dataclass(frozen=True, slots=True, kw_only=True)
class Dist:
    """A latency distribution in seconds (NaN when there are no samples)."""

    count: int
    mean_s: float
    p50_s: float
    p90_s: float
    p95_s: float
    p99_s: float
    max_s: float

    def at(self, percentile: float) -> float:
        return {50: self.p50_s, 90: self.p90_s, 95: self.p95_s, 99: self.p99_s, 100: self.max_s}.get(
            int(percentile) if float(percentile).is_integer() else -1, math.nan
        )


def dist(values: np.ndarray) -> Dist:
    v = values[np.isfinite(values)]
    if len(v) == 0:
        nan = math.nan
        return Dist(count=0, mean_s=nan, p50_s=nan, p90_s=nan, p95_s=nan, p99_s=nan, max_s=nan)
    p50, p90, p95, p99 = (float(x) for x in np.percentile(v, PERCENTILES))
    return Dist(count=len(v), mean_s=float(v.mean()), p50_s=p50, p90_s=p90, p95_s=p95, p99_s=p99, max_s=float(v.max()))


@dataclass(frozen=True, slots=True, kw_only=True)
class Slo:
    """A service-level objective: the ``percentile`` of ``metric`` must be <= ``target_s``."""

    metric: Metric
    percentile: float
    target_s: float

    @property
    def label(self) -> str:
        return f"{self.metric.value}_p{self.percentile:g}<={self.target_s:g}s"


_SLO = re.compile(r"^(?P<metric>ttft|tpot|e2e)_p(?P<pct>\d+(?:\.\d+)?)$")


def parse_slos(spec: str | None) -> tuple[Slo, ...]:
    """``ttft_p95=2s,e2e_p99=30s,tpot_p50=100ms`` -> SLOs; empty or None -> none."""
    if not spec or not spec.strip():
        return ()
    slos: list[Slo] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, eq, value = part.partition("=")
        match = _SLO.match(key.strip())
        if not eq or match is None:
            raise ConfigError(f"'--slo' must be like ttft_p95=2s,e2e_p99=30s (metric ttft|tpot|e2e) (got {part!r})")
        pct = float(match["pct"])
        if not 0 < pct <= 100:
            raise ConfigError(f"'--slo' percentile must be in (0, 100] (got {part!r})")
        target = parse_duration_s(value.strip(), f"'--slo' {key.strip()}")
        if target <= 0:
            raise ConfigError(f"'--slo' target must be > 0 (got {part!r})")
        slos.append(Slo(metric=Metric(match["metric"]), percentile=pct, target_s=target))
    return tuple(slos)


@dataclass(frozen=True, slots=True, kw_only=True)
class SloResult:
    label: str
    metric: Metric
    percentile: float
    target_s: float
    observed_s: float  # the percentile over successful requests (NaN when none)
    met: bool
    share_within: float  # share of finished requests that succeeded within the target
    intervals_met: int  # intervals (with samples) where the percentile met the target
    intervals_total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GeneratorHealth:
    """Did the load generator send what it was asked to, when it was asked to?"""

    mode: str  # open, closed, trace
    planned: int  # requests scheduled (open loop and trace); requests sent in a closed loop
    sent: int
    not_sent: int  # scheduled but never sent before the run ended
    lateness: Dist  # sent - scheduled (empty in a closed loop)
    late_share: float  # share of requests sent more than LATE_S late
    kept_up: bool
    cpu_saturated: bool  # the generator process ran above 90% CPU at some point
    verdict: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Interval:
    start_s: float
    width_s: float
    scheduled_rps: float  # NaN in a closed loop
    sent_rps: float
    completed_rps: float  # finished, success or error
    ok_rps: float
    input_tps: float
    output_tps: float
    in_flight: int  # at the end of the interval
    errors: dict[str, int]
    ttft: Dist
    tpot: Dist
    e2e: Dist
    lateness_p99_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    elapsed_s: float
    sent: int
    ok: int
    failed: int
    unfinished: int
    request_rps: float  # successful requests per second
    input_tps: float
    output_tps: float
    ttft: Dist
    tpot: Dist
    e2e: Dist
    errors: dict[str, int]
    slos: tuple[SloResult, ...]
    generator: GeneratorHealth
    interval_s: float
    intervals: tuple[Interval, ...]

    @property
    def slos_met(self) -> bool:
        return all(s.met for s in self.slos)


def _metric(records: Records, metric: Metric) -> np.ndarray:
    if metric is Metric.TTFT:
        return records.ttft_s
    if metric is Metric.TPOT:
        return records.tpot_s
    return records.e2e_s


def _errors(records: Records, mask: np.ndarray) -> dict[str, int]:
    out: dict[str, int] = {}
    failed = mask & (records.outcome != Outcome.OK)
    for outcome, code in zip(records.outcome[failed].tolist(), records.code[failed].tolist(), strict=True):
        label = Outcome(outcome).label(code)
        out[label] = out.get(label, 0) + 1
    return dict(sorted(out.items()))


def _health(records: Records, *, mode: str, planned: int, cpu_saturated: bool) -> GeneratorHealth:
    sent = len(records)
    if mode == "closed":
        verdict = "closed loop: the offered load is whatever the users' round trips allow"
        if cpu_saturated:
            verdict += "; the generator's CPU was saturated, so the users ran slower than the server allowed"
        return GeneratorHealth(
            mode=mode,
            planned=sent,
            sent=sent,
            not_sent=0,
            lateness=dist(np.empty(0)),
            late_share=0.0,
            kept_up=not cpu_saturated,
            cpu_saturated=cpu_saturated,
            verdict=verdict,
        )
    late = records.lateness_s
    n_late = int(np.count_nonzero(late > LATE_S))
    late_share = n_late / sent if sent else 0.0
    not_sent = max(0, planned - sent)
    lateness = dist(late)
    kept_up = n_late <= max(1, LATE_SHARE * sent) and not_sent == 0  # one straggler is not a trend
    if kept_up:
        verdict = (
            f"kept up: {100 * (1 - late_share):.1f}% of requests sent within {LATE_S * 1000:g} ms of schedule "
            f"(p99 lateness {lateness.p99_s * 1000:.1f} ms)"
        )
    else:
        verdict = (
            f"FELL BEHIND: {100 * late_share:.1f}% of requests sent more than {LATE_S * 1000:g} ms late "
            f"(max {lateness.max_s:.3f} s), {not_sent} never sent; the server saw less load than scheduled"
        )
    if cpu_saturated:
        verdict += "; generator CPU above 90%"
    return GeneratorHealth(
        mode=mode,
        planned=planned,
        sent=sent,
        not_sent=not_sent,
        lateness=lateness,
        late_share=late_share,
        kept_up=kept_up,
        cpu_saturated=cpu_saturated,
        verdict=verdict,
    )


def _edges(elapsed_s: float, interval_s: float) -> np.ndarray:
    """Bucket edges from 0 to the end of the run; a last sliver under a quarter interval joins its neighbour."""
    end = max(elapsed_s, 1e-9)
    edges = [*np.arange(0.0, end, interval_s).tolist(), end]
    if len(edges) > 2 and end - edges[-2] < interval_s / 4:
        del edges[-2]
    return np.asarray(edges, dtype=float)


def summarize(
    records: Records,
    *,
    elapsed_s: float,
    interval_s: float,
    mode: str,
    planned_s: np.ndarray | None = None,
    slos: tuple[Slo, ...] = (),
    cpu_saturated: bool = False,
) -> Summary:
    """The run's summary. ``planned_s`` holds the scheduled times of an open loop or trace (sent or not)."""
    if interval_s <= 0:
        raise ConfigError(f"'--interval' must be > 0 (got {interval_s})")
    ok = records.ok
    finished = records.finished
    window = max(elapsed_s, 1e-9)
    ttft_all, tpot_all, e2e_all = (np.where(ok, _metric(records, m), np.nan) for m in Metric)
    edges = _edges(elapsed_s, interval_s)
    n_buckets = len(edges) - 1
    done_bucket = np.clip(
        np.searchsorted(edges, np.nan_to_num(records.done_s, nan=-1.0), side="right") - 1, -1, n_buckets - 1
    )
    done_bucket = np.where(finished, done_bucket, -1).astype(np.int64)
    sent_counts = np.histogram(records.sent_s, bins=edges)[0]
    sched_counts = np.histogram(planned_s, bins=edges)[0] if planned_s is not None else None
    sent_sorted = np.sort(records.sent_s)
    done_sorted = np.sort(records.done_s[finished])
    in_flight = np.searchsorted(sent_sorted, edges[1:], side="right") - np.searchsorted(
        done_sorted, edges[1:], side="right"
    )
    late = records.lateness_s
    slo_hits = [0] * len(slos)
    slo_total = [0] * len(slos)
    intervals: list[Interval] = []
    for b in range(n_buckets):
        in_b = done_bucket == b
        ok_b = in_b & ok
        width = float(edges[b + 1] - edges[b])
        ttft_b, tpot_b, e2e_b = dist(ttft_all[in_b]), dist(tpot_all[in_b]), dist(e2e_all[in_b])
        for i, slo in enumerate(slos):
            values = {Metric.TTFT: ttft_all, Metric.TPOT: tpot_all, Metric.E2E: e2e_all}[slo.metric][in_b]
            values = values[np.isfinite(values)]
            if len(values):
                slo_total[i] += 1
                slo_hits[i] += float(np.percentile(values, slo.percentile)) <= slo.target_s
        sent_b = (records.sent_s >= edges[b]) & (records.sent_s < edges[b + 1])
        late_b = late[sent_b]
        late_b = late_b[np.isfinite(late_b)]
        intervals.append(
            Interval(
                start_s=float(edges[b]),
                width_s=width,
                scheduled_rps=float(sched_counts[b] / width) if sched_counts is not None else math.nan,
                sent_rps=float(sent_counts[b] / width),
                completed_rps=float(np.count_nonzero(in_b) / width),
                ok_rps=float(np.count_nonzero(ok_b) / width),
                input_tps=float(records.input_tokens[ok_b].sum() / width),
                output_tps=float(records.output_tokens[ok_b].sum() / width),
                in_flight=int(in_flight[b]),
                errors=_errors(records, in_b),
                ttft=ttft_b,
                tpot=tpot_b,
                e2e=e2e_b,
                lateness_p99_s=float(np.percentile(late_b, 99)) if len(late_b) else math.nan,
            )
        )
    results: list[SloResult] = []
    n_finished = int(np.count_nonzero(finished))
    for i, slo in enumerate(slos):
        values = _metric(records, slo.metric)
        good = ok & np.isfinite(values)
        observed = float(np.percentile(values[good], slo.percentile)) if np.any(good) else math.nan
        within = int(np.count_nonzero(good & (values <= slo.target_s)))
        results.append(
            SloResult(
                label=slo.label,
                metric=slo.metric,
                percentile=slo.percentile,
                target_s=slo.target_s,
                observed_s=observed,
                met=bool(observed <= slo.target_s),
                share_within=within / n_finished if n_finished else 0.0,
                intervals_met=slo_hits[i],
                intervals_total=slo_total[i],
            )
        )
    planned = len(planned_s) if planned_s is not None else len(records)
    return Summary(
        elapsed_s=elapsed_s,
        sent=len(records),
        ok=int(np.count_nonzero(ok)),
        failed=int(np.count_nonzero(finished & ~ok)),
        unfinished=int(np.count_nonzero(~finished)),
        request_rps=float(np.count_nonzero(ok) / window),
        input_tps=float(records.input_tokens[ok].sum() / window),
        output_tps=float(records.output_tokens[ok].sum() / window),
        ttft=dist(ttft_all),
        tpot=dist(tpot_all),
        e2e=dist(e2e_all),
        errors=_errors(records, np.ones(len(records), dtype=bool)),
        slos=tuple(results),
        generator=_health(records, mode=mode, planned=planned, cpu_saturated=cpu_saturated),
        interval_s=interval_s,
        intervals=tuple(intervals),
    )


def in_model_time(summary: Summary, server_speed: float) -> dict[str, float]:
    """The headline figures of ``summary`` on the clock of a server running ``server_speed`` times faster
    than the wall (its model time): seconds multiplied by the speed, per-second rates divided by it."""
    if not (math.isfinite(server_speed) and server_speed > 0):
        raise ConfigError(f"'--server-speed' must be > 0 (got {server_speed})")
    k = server_speed
    figures = {
        "server_speed": k,
        "elapsed_s": summary.elapsed_s * k,
        "request_rps": summary.request_rps / k,
        "input_tps": summary.input_tps / k,
        "output_tps": summary.output_tps / k,
    }
    for name, d in (("ttft", summary.ttft), ("tpot", summary.tpot), ("e2e", summary.e2e)):
        for p, value in (("p50", d.p50_s), ("p95", d.p95_s), ("p99", d.p99_s)):
            figures[f"{name}_{p}_s"] = value * k
    return figures
