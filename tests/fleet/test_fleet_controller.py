"""The pure parts of the fleet's HPA loop: replicas as pods, the observation, which replicas a scale-down
removes, the timeline row, and the clock."""

from __future__ import annotations

import math

import pytest

from jetscale.errors import ConfigError
from jetscale.fleet.clock import FleetClock
from jetscale.fleet.controller import metric_pods, observe, pod_for, sample_for, scrape_targets
from jetscale.fleet.replicas import ReplicaState, ReplicaView, ServeCommand, removal_order
from jetscale.fleet.router import RouterWindow
from jetscale.hpa.types import ConditionStatus, PodMetrics, PodPhase


def view(name: str, state: ReplicaState, *, created: float = 0.0, ready: float | None = None,
         restarts: int = 0, url: str | None = "http://127.0.0.1:1") -> ReplicaView:  # fmt: skip
    return ReplicaView(name=name, state=state, url=url, pid=1, restarts=restarts, created_s=created, ready_s=ready)


@pytest.mark.parametrize(
    ("state", "phase", "ready", "deleting"),
    [
        pytest.param(ReplicaState.STARTING, PodPhase.PENDING, ConditionStatus.FALSE, False, id="starting-is-pending"),
        pytest.param(ReplicaState.READY, PodPhase.RUNNING, ConditionStatus.TRUE, False, id="ready-is-running-ready"),
        pytest.param(ReplicaState.RESTARTING, PodPhase.RUNNING, ConditionStatus.FALSE, False, id="restarting-unready"),
        pytest.param(ReplicaState.DRAINING, PodPhase.RUNNING, ConditionStatus.FALSE, True, id="draining-is-deleted"),
    ],
)
def test_replicas_are_pods_as_kubernetes_reports_them(
    state: ReplicaState, phase: PodPhase, ready: ConditionStatus, deleting: bool
) -> None:
    pod = pod_for(view("r", state, created=5.0, ready=9.0))
    assert pod is not None
    assert (pod.phase, pod.ready, pod.deleting, pod.start_time_s) == (phase, ready, deleting, 5.0)


def test_a_stopped_replica_is_no_pod() -> None:
    assert pod_for(view("r", ReplicaState.STOPPED)) is None


FLEET = [
    view("a", ReplicaState.READY, ready=10.0),
    view("b", ReplicaState.STARTING),
    view("c", ReplicaState.RESTARTING, url=None),
    view("d", ReplicaState.DRAINING),
    view("e", ReplicaState.RESTARTING),
]


def test_observation_counts_the_scale_and_keeps_every_pod() -> None:
    readings = (PodMetrics(values={}),)
    obs = observe(FLEET, 4, readings)
    assert obs.spec_replicas == 4
    assert obs.status_replicas == 4  # the draining one is terminating
    assert [p.name for p in obs.pods] == ["a", "b", "c", "d", "e"]
    assert obs.readings == readings


def test_metrics_are_read_for_running_pods_only() -> None:
    assert metric_pods(FLEET) == ["a", "c", "e"]
    assert [t.pod for t in scrape_targets(FLEET)] == ["a", "e"]  # "c" has no address while its process is down


@pytest.mark.parametrize(
    ("replicas", "first"),
    [
        pytest.param([view("a", ReplicaState.READY, ready=1), view("b", ReplicaState.STARTING)], "b",
                     id="pending-before-running"),
        pytest.param([view("a", ReplicaState.READY, ready=1), view("b", ReplicaState.RESTARTING)], "b",
                     id="unready-before-ready"),
        pytest.param([view("a", ReplicaState.READY, ready=50), view("b", ReplicaState.READY, ready=10)], "a",
                     id="ready-for-less-time-first"),
        pytest.param([view("a", ReplicaState.READY, ready=10, restarts=0),
                      view("b", ReplicaState.READY, ready=10, restarts=2)], "b", id="more-restarts-first"),
        pytest.param([view("a", ReplicaState.STARTING, created=3), view("b", ReplicaState.STARTING, created=1)], "a",
                     id="newer-first"),
        pytest.param([view("a", ReplicaState.DRAINING), view("b", ReplicaState.READY, ready=1)], "b",
                     id="draining-is-no-candidate"),
    ],
)  # fmt: skip
def test_removal_order_is_the_replicaset_ranking(replicas: list[ReplicaView], first: str) -> None:
    order = removal_order(replicas)
    assert order[0].name == first
    assert all(r.state is not ReplicaState.DRAINING for r in order)


def test_sample_is_in_model_time() -> None:
    window = RouterWindow(wall_s=2.0, arrivals=40, ok=38, failed=1, client_errors=1, retries=3,
                          e2e_s=(0.1, 0.2, 0.3), ttfb_s=())  # fmt: skip
    replicas = [view("a", ReplicaState.READY), view("b", ReplicaState.STARTING), view("c", ReplicaState.RESTARTING),
                view("d", ReplicaState.DRAINING)]  # fmt: skip
    sample = sample_for(30.0, desired=3, replicas=replicas, signals={"prefill_backlog": 2.5}, window=window, speed=10)
    assert (sample.replicas_ready, sample.replicas_starting, sample.replicas_draining) == (1, 2, 1)
    assert sample.request_rate_rps == pytest.approx(40 / 20)  # 2 wall seconds are 20 model seconds
    assert sample.e2e_p50_s == pytest.approx(2.0)  # 0.2 wall seconds x speed 10
    assert math.isnan(sample.ttft_p50_s) and math.isnan(sample.slots_used)
    assert sample.prefill_backlog == 2.5


def test_clock_runs_at_speed() -> None:
    now = [100.0]
    clock = FleetClock(4.0, now=lambda: now[0])
    assert clock.model_s() == 0.0
    clock.start()
    now[0] = 102.5
    assert clock.model_s() == pytest.approx(10.0)
    assert clock.to_wall_s(15.0) == pytest.approx(3.75)


@pytest.mark.parametrize("speed", [0.0, -1.0, math.inf, math.nan])
def test_clock_refuses_bad_speed(speed: float) -> None:
    with pytest.raises(ConfigError, match="'speed' must be > 0"):
        FleetClock(speed)


def test_serve_command_starts_jetscale_serve_on_a_free_port() -> None:
    argv = ServeCommand(preset="v5e-4/llama2-7b", speed=10, batch_size=8, model_load_s=20).argv("jetstream-3")
    flags = argv[argv.index("serve") + 1 :]
    pairs = dict(zip(flags[::2], flags[1::2], strict=True))
    assert pairs == {
        "--preset": "v5e-4/llama2-7b", "--port": "0", "--grpc-port": "-1", "--speed": "10", "--seed": "0",
        "--server-id": "jetstream-3", "--grace-period-s": "30", "--batch-size": "8", "--model-load-s": "20",
    }  # fmt: skip
