"""``jetscale demo`` and ``jetscale up`` as commands: wiring, the demo's plan and summary, bad flags.

The demo itself runs for two minutes; tests/fleet/test_fleet_live.py runs the same ``run_demo`` on a
short plan and checks that the fleet scales up and back down with no failed request.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from jetscale.cli import demo as demo_cli
from jetscale.cli import main
from jetscale.cli import up as up_cli
from jetscale.cli.hpa import load_hpa_file
from jetscale.errors import ConfigError
from jetscale.fleet.demo import DEMO_LOAD, DemoPlan, demo_summary
from jetscale.report.timeline import Sample, ScalingEvent, Timeline


def test_demo_and_up_are_commands_of_the_app() -> None:
    local = typer.Typer()
    demo_cli.register(local)
    up_cli.register(local)
    local.command("noop")(lambda: None)
    result = CliRunner().invoke(local, ["demo", "--help"])
    assert result.exit_code == 0 and "--prometheus" in result.output
    result = CliRunner().invoke(local, ["up", "--help"])
    assert result.exit_code == 0 and "--hpa" in result.output and "least-outstanding" in result.output


def test_the_default_plan_ramps_holds_spikes_and_falls_within_three_minutes() -> None:
    plan = DemoPlan()
    loads = [load for _, load in DEMO_LOAD]
    peak = loads.index(max(loads))
    assert loads[0] < loads[peak - 1] < loads[peak] and loads[-1] < loads[0]  # ramp, plateau, spike, fall
    assert plan.duration_s / plan.speed + 30 < 180  # load, plus start-up and the report, fit in 3 minutes
    spec = load_hpa_file(plan.hpa_path)
    assert spec.behavior is not None and spec.behavior.scale_down.stabilization_window_s == 300
    assert plan.duration_s - DEMO_LOAD[-3][0] > 300  # the quiet tail outlasts the scale-down window


def test_the_vllm_plan_scales_vllm_replicas_on_vllms_queue() -> None:
    plan = DemoPlan.vllm(seed=3)
    spec = load_hpa_file(plan.hpa_path)
    assert [m.name for m in spec.metrics] == ["vllm:num_requests_waiting"] and plan.seed == 3
    assert plan.preset.startswith("vllm-") and plan.load == DemoPlan().load
    assert 0 < plan.replica_rps() < 100


def test_a_bad_kind_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--kind", "tgi"])
    assert exit_.value.code == 2 and "'--kind' must be jetstream or vllm (got 'tgi')" in capsys.readouterr().err


def test_rates_follow_the_modeled_capacity_of_one_replica() -> None:
    plan = DemoPlan(load=((0.0, 1.0), (10.0, 2.0)))
    per_replica = plan.replica_rps()
    assert 0 < per_replica < 100
    assert plan.rate_knots() == [(0.0, per_replica), (10.0, 2 * per_replica)]
    assert plan.workload == "uniform:input=64..192,output=768..1024"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"speed": 0.0}, "'speed' must be > 0", id="speed"),
        pytest.param({"load": ((5.0, 1.0), (10.0, 1.0))}, "'load' must start at t=0", id="load-start"),
        pytest.param({"load": ((0.0, 1.0),)}, "'load' must start at t=0", id="load-one-knot"),
    ],
)
def test_bad_plans_name_the_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DemoPlan(**fields)  # type: ignore[arg-type]


def test_summary_counts_scaling_and_replica_seconds() -> None:
    plan = DemoPlan()
    spec = load_hpa_file(plan.hpa_path)
    samples = [Sample(t_s=float(t), replicas_desired=r, replicas_ready=r) for t, r in ((0, 1), (100, 3), (200, 1))]
    events = [ScalingEvent(t_s=50, from_replicas=1, to_replicas=3, reason="up"),
              ScalingEvent(t_s=150, from_replicas=3, to_replicas=1, reason="down")]  # fmt: skip
    summary = demo_summary(plan, spec, Timeline(samples=samples, events=events), None, router_failed=0)
    assert summary["scaling"] == "1 scale-ups, 1 scale-downs, peak 3 replicas"
    assert summary["replica-seconds"] == "400 (vs 600 if 3 ran throughout: 67%)"
    assert summary["time"] == "200 model s at speed 10x (20 wall s)"
    assert summary["router failures"] == 0
    assert "sent / ok / failed" not in summary  # no load result: stopped early


def test_up_refuses_a_bad_router_policy_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["up", "--hpa", "examples/hpa/backlog.yaml", "--router", "random"])
    assert exit_info.value.code == 2
    assert "'--router' must be one of round-robin, least-outstanding (got 'random')" in capsys.readouterr().err


def test_up_refuses_a_missing_manifest_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["up", "--hpa", str(tmp_path / "nope.yaml"), "--duration", "1"])
    assert exit_info.value.code == 2
    assert "no such file" in capsys.readouterr().err
