"""The fleet with real processes: it scales up under load and back down after the (sped-up) window with
no failed request, a killed replica is restarted and counted missing meanwhile, a draining replica
finishes its requests."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from conftest import FakeCommand, hpa, wait_until
from rich.console import Console

from jetscale.fleet import Fleet, FleetConfig, ReplicaState, ReplicaTiming
from jetscale.fleet.demo import DemoPlan, run_demo
from jetscale.hpa.types import ConditionStatus, PodMetrics, PodPhase

TEST_HPA = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: live-test}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: jetstream}
  minReplicas: 1
  maxReplicas: 4
  metrics:
    - type: Pods
      pods:
        metric: {name: jetstream_prefill_backlog_size}
        target: {type: AverageValue, averageValue: 5}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 30
"""


async def test_scales_up_under_load_and_down_after_the_window_with_no_failed_request(tmp_path: Path) -> None:
    manifest = tmp_path / "hpa.yaml"
    manifest.write_text(TEST_HPA)
    plan = DemoPlan(
        hpa_path=manifest,
        batch_size=8,
        input_tokens=(32, 64),
        output_tokens=(896, 1024),  # long answers: few requests per second for a given load
        speed=20.0,
        model_load_s=20.0,
        load=((0.0, 0.3), (20.0, 0.3), (20.0, 3.0), (50.0, 3.0), (50.0, 0.2), (250.0, 0.2)),
        stream=False,
    )  # a 30 s burst, then a trickle; 250 model seconds: 12.5 wall seconds of load
    result = await run_demo(plan, tmp_path / "demo", console=Console(quiet=True), live=False)
    events = result.timeline.events
    ups = [e for e in events if e.to_replicas > e.from_replicas]
    downs = [e for e in events if e.to_replicas < e.from_replicas]
    assert ups, events
    assert downs and downs[0].t_s > ups[-1].t_s + 30, events  # not before the 30 s window has passed
    assert result.timeline.samples[-1].replicas_ready + result.timeline.samples[-1].replicas_starting == 1
    assert result.load is not None
    summary = result.load.summary
    assert summary.sent > 100 and (summary.ok, summary.failed, summary.unfinished) == (summary.sent, 0, 0)
    assert result.failed_requests == 0
    assert max(s.prefill_backlog for s in result.timeline.samples) > 5
    page = result.report.read_text()
    assert result.report.name == "report.html" and "data:image/png;base64," in page
    assert "above target" in page and "All metrics below target" in page


async def test_a_killed_replica_is_restarted_and_counted_missing_meanwhile(tmp_path: Path) -> None:
    command = FakeCommand(tmp_path / "values.json", ready_after_s=1.0)
    command.set({"*": 5.0})  # every replica on target: the count holds at 2
    config = FleetConfig(
        hpa=hpa(min_replicas=2, max_replicas=4), command=command, speed=20.0, port=0, log_dir=tmp_path / "logs",
        timing=ReplicaTiming(restart_backoff_s=10.0), ready_timeout_wall_s=30,
    )  # fmt: skip
    async with Fleet(config) as fleet:
        old_pid = fleet.replicas.kill("fake-1")
        assert old_pid is not None

        def missing_seen() -> bool:
            for record in fleet.controller.records:
                pod = next((p for p in record.observation.pods if p.name == "fake-1"), None)
                (reading,) = record.observation.readings
                if (pod is not None and (pod.phase, pod.ready) == (PodPhase.RUNNING, ConditionStatus.FALSE)
                        and isinstance(reading, PodMetrics) and "fake-1" not in reading.values):  # fmt: skip
                    return True
            return False

        await wait_until(missing_seen, 15, "a sync that counts fake-1 as a running, unready pod without a metric")
        assert "fake-1" not in fleet.router.backends

        def restarted_and_ready() -> bool:
            return any(v.name == "fake-1" and v.state is ReplicaState.READY and v.restarts == 1 for v in fleet.views())

        await wait_until(restarted_and_ready, 15, "fake-1 restarted and ready")
        (restarted,) = [v for v in fleet.views() if v.name == "fake-1"]
        assert restarted.pid != old_pid and "fake-1" in fleet.router.backends
        records = list(fleet.controller.records)
    assert all(r.decision.desired_replicas == 2 for r in records)
    assert any("1 without a metric" in line for r in records for p in r.decision.proposals
               for line in getattr(p, "explanation", ()))  # fmt: skip


async def test_scale_down_under_traffic_fails_no_request(tmp_path: Path) -> None:
    command = FakeCommand(tmp_path / "values.json")
    command.set({"*": 5.0})  # on target: hold at 3 while the clients start
    config = FleetConfig(hpa=hpa(min_replicas=1, max_replicas=3), command=command, speed=20.0, port=0,
                         initial_replicas=3, log_dir=tmp_path / "logs")  # fmt: skip
    statuses: list[int] = []
    async with Fleet(config) as fleet, aiohttp.ClientSession() as http:
        stop = asyncio.Event()

        async def client() -> None:
            while not stop.is_set():
                async with http.post(f"{fleet.url}/v1/completions", json={"prompt": "x"}) as response:
                    await response.read()
                    statuses.append(response.status)

        clients = [asyncio.create_task(client()) for _ in range(6)]
        await wait_until(lambda: len(statuses) >= 30, 10, "traffic through all three replicas")
        command.set({"*": 0.0})  # now the HPA scales down to 1, replicas drain under traffic
        await wait_until(lambda: len(fleet.views()) == 1, 20, "the scale-down from 3 to 1 to finish")
        before = len(statuses)
        await wait_until(lambda: len(statuses) >= before + 10, 10, "traffic on the last replica")
        stop.set()
        await asyncio.gather(*clients)
    downs = [e for e in fleet.controller.timeline.events if e.to_replicas < e.from_replicas]
    assert downs and downs[-1].to_replicas == 1
    assert set(statuses) == {200}
    assert fleet.router.totals().failed == 0
