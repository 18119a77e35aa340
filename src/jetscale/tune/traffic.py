"""The tuner's traffic: one seed's variant of it, compressed in time for the coarse pass, and a recorded
``jetscale load`` run read back as a trace.

**Seeds.** An open loop draws seed ``base + i`` for run ``i`` (other arrivals, other sizes, as
``jetscale load --seed`` would); a trace is the same requests every time, and the seed only changes the
replicas' start-up delays (and, compressed, which requests are kept).

**Compression** by ``k`` (the coarse pass): the traffic's time axis is divided by ``k`` and only one
request in ``k`` is kept, so the request rate at each point of the (shorter) curve is the rate at the
matching point of the original: the fleet needs the same replicas for the same load, the run has ``k``
times fewer requests, and ramps are ``k`` times steeper, which makes the coarse pass the harder of the
two. Start-up delays, scrape and sync periods and HPA windows are not compressed. An open loop's shape is
compressed exactly (knots and period divided by ``k``); a trace keeps every ``k``-th request.

**Load runs.** ``jetscale load`` writes ``requests.csv`` (one row per request: ``scheduled_s``,
``sent_s``, sizes, outcome). ``read_load_run`` replays it: arrival at ``scheduled_s`` (``sent_s`` in a
closed loop, which has no schedule), the output tokens it produced (its ``max_tokens`` when it failed
before producing any).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from jetscale.errors import ConfigError
from jetscale.load.arrivals import RateShape, ShapeKind
from jetscale.load.trace import Trace
from jetscale.load.workload import DatasetWorkload, Workload
from jetscale.sim.scenario import OpenTraffic, TraceTraffic

__all__ = [
    "TunerTraffic",
    "compress_shape",
    "expected_requests",
    "mean_sizes",
    "read_load_run",
    "size_workload",
    "variant",
]

TunerTraffic = OpenTraffic | TraceTraffic


def compress_shape(shape: RateShape, k: int) -> RateShape:
    """``shape`` with its time axis divided by ``k`` (same rates)."""
    if shape.kind is ShapeKind.DIURNAL:
        return replace(shape, period_s=shape.period_s / k)
    return replace(shape, knots=tuple((t / k, r) for t, r in shape.knots))


def variant(traffic: TunerTraffic, *, seed_index: int, compression: int) -> TunerTraffic:
    """Run ``seed_index``'s traffic, compressed ``compression`` times (1: as it is)."""
    if compression < 1:
        raise ConfigError(f"'compression' must be >= 1 (got {compression})")
    if isinstance(traffic, OpenTraffic):
        shape = traffic.shape if compression == 1 else compress_shape(traffic.shape, compression)
        limit = traffic.max_requests
        return replace(
            traffic,
            shape=shape,
            seed=traffic.seed + seed_index,
            max_requests=None if limit is None else max(1, limit // compression),
        )
    if compression == 1:
        return traffic
    trace = traffic.trace
    keep = slice(seed_index % compression, None, compression)
    thinned = Trace(
        times_s=trace.times_s[keep] / compression,
        input_tokens=trace.input_tokens[keep],
        output_tokens=trace.output_tokens[keep],
    )
    limit = traffic.max_requests
    return TraceTraffic(
        trace=thinned,
        max_requests=None if limit is None else max(1, limit // compression),
        name=f"{traffic.name} (1 in {compression}, {compression}x faster)",
    )


def expected_requests(traffic: TunerTraffic, duration_s: float) -> float:
    """Requests the traffic sends in [0, duration_s)."""
    if isinstance(traffic, OpenTraffic):
        n = traffic.shape.expected_count(0.0, duration_s)
    else:
        n = float(np.searchsorted(traffic.trace.times_s, duration_s, side="left"))
    return n if traffic.max_requests is None else min(n, float(traffic.max_requests))


def size_workload(traffic: TunerTraffic) -> Workload:
    """Request sizes like the traffic's: its workload, or a trace's rows drawn with replacement."""
    if isinstance(traffic, OpenTraffic):
        return traffic.workload
    return DatasetWorkload(
        name=f"sizes of {traffic.name}",
        input_tokens=np.asarray(traffic.trace.input_tokens, dtype=np.int64),
        output_tokens=np.asarray(traffic.trace.output_tokens, dtype=np.int64),
    )


def mean_sizes(traffic: TunerTraffic, *, samples: int = 20_000) -> tuple[float, float]:
    """Mean input and output tokens (an open loop's workload sampled with a fixed seed)."""
    if isinstance(traffic, TraceTraffic):
        return float(np.mean(traffic.trace.input_tokens)), float(np.mean(traffic.trace.output_tokens))
    sizes = traffic.workload.sample(np.random.default_rng(0), samples)
    return float(np.mean(sizes.input_tokens)), float(np.mean(sizes.output_tokens))


def _number(row: dict[str, str], key: str, where: str) -> float:
    raw = (row.get(key) or "").strip()
    if not raw:
        return math.nan
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{where}: '{key}' must be a number (got {raw!r})") from None


def read_load_run(lines: Iterable[str], *, source: str) -> Trace:
    """A ``jetscale load`` ``requests.csv`` as a trace (see the module docstring)."""
    reader = csv.DictReader(list(lines))
    needed = {"scheduled_s", "sent_s", "input_tokens", "max_tokens", "output_tokens"}
    missing = sorted(needed - set(reader.fieldnames or ()))
    if missing:
        raise ConfigError(
            f"{source}: must be the requests.csv of a jetscale load run (missing columns {', '.join(missing)})"
        )
    times: list[float] = []
    inputs: list[int] = []
    outputs: list[int] = []
    for number, row in enumerate(reader, start=2):
        where = f"{source}:{number}"
        t = _number(row, "scheduled_s", where)
        if math.isnan(t):
            t = _number(row, "sent_s", where)
        n_in, n_out, n_max = (_number(row, k, where) for k in ("input_tokens", "output_tokens", "max_tokens"))
        if math.isnan(t) or math.isnan(n_in) or n_in < 1:
            raise ConfigError(f"{where}: needs a send time and input_tokens >= 1")
        out = n_out if not math.isnan(n_out) and n_out >= 1 else n_max
        if math.isnan(out) or out < 1:
            raise ConfigError(f"{where}: needs output_tokens or max_tokens >= 1")
        times.append(t)
        inputs.append(int(n_in))
        outputs.append(int(out))
    if not times:
        raise ConfigError(f"{source}: the load run has no requests")
    order = np.argsort(np.asarray(times), kind="stable")
    t_arr = np.asarray(times)[order]
    return Trace(
        times_s=t_arr - t_arr[0],
        input_tokens=np.asarray(inputs, dtype=np.int64)[order],
        output_tokens=np.asarray(outputs, dtype=np.int64)[order],
    )
