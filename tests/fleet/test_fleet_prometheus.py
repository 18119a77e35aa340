"""The --prometheus metrics path: its config and queries, the same readings and decisions as the direct
scrape for the same scripted metric values, and an outage that holds the HPA instead of scaling down."""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import pytest
from conftest import FakeCommand, hpa, wait_until

from jetscale.fleet import Fleet, FleetConfig
from jetscale.fleet.controller import SyncRecord, scrape_targets
from jetscale.fleet.prometheus import pods_query, prometheus_config, signal_query, targets_document
from jetscale.fleet.scrape import DirectScrape, ScrapeTarget
from jetscale.hpa.controller import HorizontalController
from jetscale.hpa.types import MetricSourceType, MetricSpec, MetricTarget, MetricTargetType, PodMetrics

SPEED = 20.0  # a 15 s sync takes 0.75 wall seconds


def test_config_scrapes_the_file_sd_targets_at_the_sped_up_interval() -> None:
    config = prometheus_config(scrape_interval_wall_s=0.75)
    assert config["global"] == {"scrape_interval": "750ms", "scrape_timeout": "750ms", "evaluation_interval": "750ms"}
    (job,) = config["scrape_configs"]
    assert job["file_sd_configs"][0]["files"] == ["targets.json"]
    assert prometheus_config(scrape_interval_wall_s=15.0)["global"]["scrape_timeout"] == "10000ms"


def test_targets_carry_pod_and_namespace_labels() -> None:
    doc = targets_document([ScrapeTarget(pod="jetstream-0", url="http://127.0.0.1:4100")], "serving")
    assert doc == [{"targets": ["127.0.0.1:4100"], "labels": {"namespace": "serving", "pod": "jetstream-0"}}]


@pytest.mark.parametrize(
    ("name", "selector", "query"),
    [
        pytest.param("jetstream_prefill_backlog_size", None,
                     'sum(jetstream_prefill_backlog_size{namespace="default",pod=~"a-0|b\\\\.1"}) by (pod)',
                     id="a-count-sums-per-pod"),
        pytest.param("jetstream_slots_used_percentage", (("model", 'x"y'),),
                     'avg(jetstream_slots_used_percentage{namespace="default",pod=~"a-0|b\\\\.1",model="x\\"y"}) '
                     "by (pod)", id="a-percentage-averages-with-selector"),
    ],
)  # fmt: skip
def test_pods_query_is_the_adapter_metrics_query(name: str, selector: tuple[tuple[str, str], ...] | None,
                                                 query: str) -> None:  # fmt: skip
    target = MetricTarget(type=MetricTargetType.AVERAGE_VALUE, average_value_milli=1)
    metric = MetricSpec(type=MetricSourceType.PODS, name=name, target=target, selector=selector)
    assert pods_query(metric, "default", ["a-0", "b.1"]) == query


def test_signal_query_averages_pods() -> None:
    assert signal_query("jetstream_prefill_backlog_size", "ns", ["p"]) == (
        'avg(sum(jetstream_prefill_backlog_size{namespace="ns",pod=~"p"}) by (pod))'
    )


def _config(command: FakeCommand, tmp_path: Path, *, prometheus: bool, replicas: int, **spec: int) -> FleetConfig:
    return FleetConfig(
        hpa=hpa(**spec), command=command, speed=SPEED, port=0, prometheus=prometheus, initial_replicas=replicas,
        log_dir=tmp_path / ("prom" if prometheus else "direct"), ready_timeout_wall_s=30,
    )  # fmt: skip


async def test_prometheus_reads_and_decides_as_the_direct_scrape(tmp_path: Path) -> None:
    command = FakeCommand(tmp_path / "values.json")
    command.set({"fake-0": 3.0, "fake-1": 7.5, "fake-2": 12.2507, "*": 0.0})
    first: dict[bool, SyncRecord] = {}
    for prometheus in (False, True):
        async with Fleet(_config(command, tmp_path, prometheus=prometheus, replicas=3, max_replicas=8)) as fleet:
            await wait_until(lambda f=fleet: bool(f.controller.records), 10, "a first sync")  # type: ignore[misc]
            record = fleet.controller.records[0]
            first[prometheus] = record
            if prometheus:  # the same replicas, read directly, at the same moment
                direct = DirectScrape(clock=fleet.clock, names=["jetstream_prefill_backlog_size"])
                await direct.start()
                try:
                    direct.set_targets(scrape_targets(fleet.views()))
                    await direct.scrape_once()
                    pods = ["fake-0", "fake-1", "fake-2"]
                    side_by_side = (await direct.readings(fleet.config.hpa.metrics, pods),
                                    await fleet.source.readings(fleet.config.hpa.metrics, pods))  # fmt: skip
                finally:
                    await direct.stop()
    values: dict[bool, dict[str, int]] = {}
    for prometheus, record in first.items():
        (reading,) = record.observation.readings
        assert isinstance(reading, PodMetrics)
        values[prometheus] = {pod: m.value_milli for pod, m in reading.values.items()}
    assert values[False] == values[True] == {"fake-0": 3000, "fake-1": 7500, "fake-2": 12250}
    decisions = {p: (r.decision.desired_replicas, r.decision.reason) for p, r in first.items()}
    assert decisions[False] == decisions[True] == (5, "pods metric jetstream_prefill_backlog_size above target")
    direct_reading, prometheus_reading = (r[0] for r in side_by_side)
    assert isinstance(direct_reading, PodMetrics) and isinstance(prometheus_reading, PodMetrics)
    assert {p: m.value_milli for p, m in direct_reading.values.items()} == {
        p: m.value_milli for p, m in prometheus_reading.values.items()
    }
    record = first[True]  # and one HPA on either reading decides the same
    decide = [
        HorizontalController(hpa(max_replicas=8)).step(
            dataclasses.replace(record.observation, readings=(reading,)), record.t_s
        )
        for reading in (direct_reading, prometheus_reading)
    ]
    same = [dataclasses.replace(d, proposals=tuple(dataclasses.replace(p, timestamp_s=0.0) for p in d.proposals))
            for d in decide]  # fmt: skip
    assert same[0] == same[1]  # all but the sample times, which are the scrape times
    assert same[0].desired_replicas == 5


async def test_a_prometheus_outage_holds_the_count_and_scaling_resumes_after(tmp_path: Path) -> None:
    command = FakeCommand(tmp_path / "values.json")
    command.set({"*": 5.0})  # on target: hold at 3
    config = _config(command, tmp_path, prometheus=True, replicas=3, min_replicas=1, max_replicas=5)
    async with Fleet(config) as fleet:
        records = fleet.controller.records
        await wait_until(lambda: len(records) >= 1, 10, "a first sync")
        assert records[0].decision.desired_replicas == 3
        assert fleet.prometheus is not None and fleet.prometheus.pid is not None
        pid = fleet.prometheus.pid
        os.kill(pid, signal.SIGSTOP)  # Prometheus hangs: every query times out
        try:
            command.set({"*": 0.0})  # the replicas now want a scale-down, but nobody can see it
            seen = len(records)
            await wait_until(lambda: len(records) >= seen + 4, 20, "four syncs during the outage")
            outage = records[seen + 1 :]
        finally:
            os.kill(pid, signal.SIGCONT)
        await wait_until(lambda: fleet.replicas.desired == 1, 20, "the scale-down once metrics return")
    for record in outage:
        active = next(c for c in record.decision.conditions if c.type == "ScalingActive")
        assert (record.decision.desired_replicas, record.decision.rescale) == (3, False)
        assert (active.status, active.reason) == ("False", "FailedGetPodsMetric")
        assert "prometheus" in (record.decision.error or "")
    down = [e for e in fleet.controller.timeline.events if e.to_replicas < e.from_replicas]
    assert down and down[0].t_s > outage[-1].t_s
