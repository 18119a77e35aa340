"""From /metrics text to the HPA's readings: parsing, milli-units, missing pods, selectors, aggregation."""

from __future__ import annotations

import math

import pytest

from jetscale.fleet.scrape import PodScrape, Series, fleet_signals, parse_exposition, readings_from_scrapes, to_milli
from jetscale.hpa.types import (
    ExternalMetric,
    MetricSourceType,
    MetricSpec,
    MetricTarget,
    MetricTargetType,
    MetricUnavailable,
    PodMetrics,
)

EXPOSITION = """# HELP jetstream_prefill_backlog_size Size of prefill queue
# TYPE jetstream_prefill_backlog_size gauge
jetstream_prefill_backlog_size{id="a"} 7.0
jetstream_slots_used_percentage{id="a",idx="0"} 0.25
jetstream_slots_used_percentage{id="a",idx="1"} 0.75
jetstream_time_per_request_bucket{id="a",le="+Inf"} 3.0
odd_label{path="C:\\\\dir",quote="say \\"hi\\"",nl="a\\nb"} 1
bare_metric 2.5e3
not_a_number{id="a"} NaN
"""


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("jetstream_prefill_backlog_size", [((("id", "a"),), 7.0)], id="one-series"),
        pytest.param(
            "jetstream_slots_used_percentage",
            [((("id", "a"), ("idx", "0")), 0.25), ((("id", "a"), ("idx", "1")), 0.75)],
            id="two-series",
        ),
        pytest.param("bare_metric", [((), 2500.0)], id="no-labels-exponent"),
        pytest.param(
            "odd_label", [((("path", "C:\\dir"), ("quote", 'say "hi"'), ("nl", "a\nb")), 1.0)], id="escaped-labels"
        ),
        pytest.param("jetstream_time_per_request", [], id="histogram-name-is-not-its-buckets"),
    ],
)
def test_parse_exposition_keeps_only_the_wanted_names(name: str, expected: list[tuple[tuple, float]]) -> None:
    found = parse_exposition(EXPOSITION, [name])
    assert [(s.labels, s.value) for s in found.get(name, ())] == expected
    assert set(found) <= {name}


def test_parse_exposition_reads_nan() -> None:
    (series,) = parse_exposition(EXPOSITION, ["not_a_number"])["not_a_number"]
    assert math.isnan(series.value)


@pytest.mark.parametrize(
    ("value", "milli"),
    [
        pytest.param(7.5, 7500, id="exact"),
        pytest.param(0.1234, 123, id="truncated"),
        pytest.param(12.9999, 12999, id="truncated-not-rounded"),
        pytest.param(-0.0019, -1, id="negative-toward-zero"),
        pytest.param(math.nan, 0, id="nan-is-zero"),
        pytest.param(math.inf, 2**63 - 1, id="inf-saturates"),
    ],
)
def test_to_milli_truncates_like_the_adapter(value: float, milli: int) -> None:
    assert to_milli(value) == milli


def _pods(name: str, selector: tuple[tuple[str, str], ...] | None = None) -> MetricSpec:
    target = MetricTarget(type=MetricTargetType.AVERAGE_VALUE, average_value_milli=5000)
    return MetricSpec(type=MetricSourceType.PODS, name=name, target=target, selector=selector)


def _scrape(t_s: float, **series: list[tuple[dict[str, str], float]]) -> PodScrape:
    return PodScrape(
        t_s=t_s,
        series={name: tuple(Series(tuple(labels.items()), v) for labels, v in rows) for name, rows in series.items()},
    )


BACKLOG = "jetstream_prefill_backlog_size"
SLOTS = "jetstream_slots_used_percentage"
SCRAPES: dict[str, PodScrape | None] = {
    "p0": _scrape(30.0, jetstream_prefill_backlog_size=[({"id": "p0"}, 4.0)],
                  jetstream_slots_used_percentage=[({"idx": "0"}, 0.2), ({"idx": "1"}, 0.6)]),
    "p1": _scrape(31.0, jetstream_prefill_backlog_size=[({"id": "p1", "model": "x"}, 9.5)],
                  jetstream_slots_used_percentage=[({"idx": "0"}, 1.0)]),
    "p2": PodScrape(t_s=32.0, series={}, error="ClientConnectorError: refused"),  # its last scrape failed
    "p3": None,  # never scraped
}  # fmt: skip


@pytest.mark.parametrize(
    ("metric", "values_milli"),
    [
        pytest.param(_pods(BACKLOG), {"p0": 4000, "p1": 9500}, id="failed-and-unscraped-pods-are-missing"),
        pytest.param(_pods(BACKLOG, (("model", "x"),)), {"p1": 9500}, id="metric-selector"),
        pytest.param(_pods(SLOTS), {"p0": 400, "p1": 1000}, id="a-percentage-averages-per-pod"),
        pytest.param(_pods("absent_metric"), {}, id="no-series-no-values"),
    ],
)
def test_pods_readings(metric: MetricSpec, values_milli: dict[str, int]) -> None:
    (reading,) = readings_from_scrapes([metric], SCRAPES, ["p0", "p1", "p2", "p3"])
    assert isinstance(reading, PodMetrics)
    assert {pod: m.value_milli for pod, m in reading.values.items()} == values_milli
    assert all(m.timestamp_s == SCRAPES[pod].t_s for pod, m in reading.values.items())  # type: ignore[union-attr]


def test_a_count_sums_its_series_per_pod() -> None:
    scrapes = {"p0": _scrape(1.0, jetstream_prefill_backlog_size=[({"idx": "0"}, 2.0), ({"idx": "1"}, 3.0)])}
    (reading,) = readings_from_scrapes([_pods(BACKLOG)], scrapes, ["p0"])
    assert isinstance(reading, PodMetrics)
    assert reading.values["p0"].value_milli == 5000


def test_only_the_asked_pods_count() -> None:
    (reading,) = readings_from_scrapes([_pods(BACKLOG)], SCRAPES, ["p1"])
    assert isinstance(reading, PodMetrics)
    assert set(reading.values) == {"p1"}


def test_external_metric_is_every_series_of_the_fleet() -> None:
    target = MetricTarget(type=MetricTargetType.VALUE, value_milli=1000)
    metric = MetricSpec(type=MetricSourceType.EXTERNAL, name=SLOTS, target=target)
    (reading,) = readings_from_scrapes([metric], SCRAPES, ["p0", "p1", "p2"])
    assert isinstance(reading, ExternalMetric)
    assert sorted(reading.values_milli) == [200, 600, 1000]
    assert reading.timestamp_s == 31.0


@pytest.mark.parametrize("source", [MetricSourceType.RESOURCE, MetricSourceType.OBJECT])
def test_metrics_the_fleet_does_not_serve_are_unavailable(source: MetricSourceType) -> None:
    target = MetricTarget(type=MetricTargetType.UTILIZATION, average_utilization=50)
    (reading,) = readings_from_scrapes([MetricSpec(type=source, name="cpu", target=target)], SCRAPES, ["p0"])
    assert isinstance(reading, MetricUnavailable)
    assert source.value in reading.error


def test_fleet_signals_average_the_pods_with_a_good_scrape() -> None:
    signals = fleet_signals(SCRAPES, ["p0", "p1", "p2", "p3"])
    assert signals["prefill_backlog"] == pytest.approx((4.0 + 9.5) / 2)
    assert signals["slots_used"] == pytest.approx((0.4 + 1.0) / 2)
    assert math.isnan(signals["hbm_usage"])
