"""The live view drawn from a hand-made snapshot, the one-line log form, and the load shape conversion."""

from __future__ import annotations

import math

import pytest
from rich.console import Console

from jetscale.fleet.controller import SyncRecord, observe
from jetscale.fleet.loadgen import shape_csv
from jetscale.fleet.replicas import ReplicaState, ReplicaView
from jetscale.fleet.router import RouterTotals
from jetscale.fleet.view import FleetSnapshot, render
from jetscale.hpa.controller import HorizontalController
from jetscale.hpa.spec import parse_hpa
from jetscale.hpa.types import PodMetric, PodMetrics
from jetscale.report.timeline import Sample

SPEC = parse_hpa(
    """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: view-test}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: jet}
  minReplicas: 1
  maxReplicas: 6
  metrics:
    - type: Pods
      pods:
        metric: {name: jetstream_prefill_backlog_size}
        target: {type: AverageValue, averageValue: 5}
"""
)


def _snapshot(*, with_sync: bool) -> FleetSnapshot:
    replicas = (
        ReplicaView(name="jet-0", state=ReplicaState.READY, url="http://127.0.0.1:4100", pid=10, restarts=1,
                    created_s=0.0, ready_s=30.0),
        ReplicaView(name="jet-1", state=ReplicaState.STARTING, url=None, pid=11, restarts=0, created_s=50.0,
                    ready_s=None),
    )  # fmt: skip
    last = None
    if with_sync:
        reading = PodMetrics(values={"jet-0": PodMetric(value_milli=12500)})
        observation = observe(replicas, 2, (reading,))
        last = SyncRecord(t_s=60.0, observation=observation, decision=HorizontalController(SPEC).step(observation, 60))
    sample = Sample(t_s=60.0, replicas_desired=2, replicas_ready=1, request_rate_rps=3.25, e2e_p50_s=4.2,
                    e2e_p95_s=0.35, prefill_backlog=12.5)  # fmt: skip
    return FleetSnapshot(
        t_s=61.0, speed=10.0, router_url="http://127.0.0.1:8000", policy="round-robin",
        metrics_source="direct scrape, every 15 s", spec=SPEC, desired=2, replicas=replicas,
        outstanding={"jet-0": 3}, last=last, sample=sample,
        totals=RouterTotals(arrivals=100, ok=97, failed=2, client_errors=1, retries=4, in_flight=3),
    )  # fmt: skip


def _text(snapshot: FleetSnapshot) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(render(snapshot))
    return console.export_text()


def test_view_shows_replicas_metrics_decision_and_traffic() -> None:
    text = _text(_snapshot(with_sync=True))
    for expected in (
        "router http://127.0.0.1:8000 (round-robin)  speed 10x  t=61 s",
        "replicas: 2 (1 starting, 1 ready), desired 2",
        "jet-0", "127.0.0.1:4100", "jet-1",
        "jetstream_prefill_backlog_size", "12500m", "5 avg",
        "last decision at t=60 s: 2 -> 3  [pods metric jetstream_prefill_backlog_size above target]",
        "ScalingActive=True/ValidMetricFound",
        "3.2",  # request rate
        "4.20 s", "350 ms",  # e2e percentiles
    ):  # fmt: skip
        assert expected in text, expected


def test_view_before_the_first_sync() -> None:
    text = _text(_snapshot(with_sync=False))
    assert "no sync yet" in text
    assert "unavailable" not in text


@pytest.mark.parametrize(
    ("speed", "rows"),
    [
        pytest.param(10.0, ["t,rps", "0,5", "6,5", "6,20", "10,0"], id="speed-10"),
        pytest.param(1.0, ["t,rps", "0,0.5", "60,0.5", "60,2", "100,0"], id="speed-1"),
    ],
)
def test_shape_csv_turns_model_time_into_wall_time(speed: float, rows: list[str]) -> None:
    knots = [(0.0, 0.5), (60.0, 0.5), (60.0, 2.0), (100.0, 0.0)]
    assert shape_csv(knots, speed).splitlines() == rows
    assert not any(math.isnan(float(r.split(",")[1])) for r in rows[1:])
