"""A manifest must scale a replica on metrics its server exports: JetStream's names for JetStream, vLLM's
for vLLM; ``simulate`` and ``up`` refuse the mix in one line before anything runs. The fleet's timeline
reads vLLM's queue where JetStream's backlog is missing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from jetscale.cli import main
from jetscale.engine.api import EngineSnapshot
from jetscale.engine.config import ServerKind
from jetscale.errors import ConfigError
from jetscale.fleet.scrape import PodScrape, Series, fleet_signals
from jetscale.hpa.spec import parse_hpa
from jetscale.sim.signals import check_exported, signal_value

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hpa"


def _exit(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("preset", "manifest", "message"),
    [
        ("v5e-8/llama2-7b", "vllm-queue.yaml", "vllm:num_requests_waiting is vllm's"),
        ("vllm-h100/llama3.1-8b", "backlog.yaml", "jetstream_prefill_backlog_size is jetstream's"),
    ],
    ids=["vllm-metric-on-jetstream", "jetstream-metric-on-vllm"],
)
@pytest.mark.parametrize("command", ["simulate", "up"])
def test_a_manifest_of_the_other_server_is_refused(
    command: str, preset: str, manifest: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(EXAMPLES / manifest)
    args = [command, "--preset", preset, "--hpa", path]
    args += ["--duration", "60", "--rate", "1"] if command == "simulate" else ["--port", "0"]
    code, err = _exit(args, capsys)
    assert code == 2 and message in err and manifest in err
    assert len(err.strip().splitlines()) == 1


def test_the_system_metrics_go_with_either_server() -> None:
    hbm = parse_hpa((EXAMPLES / "hbm.yaml").read_text(encoding="utf-8"))
    check_exported(hbm, ServerKind.VLLM)
    check_exported(hbm, ServerKind.JETSTREAM)
    with pytest.raises(ConfigError, match=r"'spec.metrics\[0\]' must be a metric this vllm replica exports"):
        check_exported(parse_hpa((EXAMPLES / "slots.yaml").read_text(encoding="utf-8")), ServerKind.VLLM)


def test_vllms_signals_read_its_snapshot() -> None:
    snapshot = EngineSnapshot(
        prefill_backlog=7, transfer_backlog=0, generate_backlog=0, slots_used=40, decode_slots=256,
        hbm_used_bytes=1, hbm_total_bytes=2, duty_cycle=1.0, kv_cache_usage=0.25,
    )  # fmt: skip
    values = [signal_value(n, snapshot) for n in ("vllm:num_requests_waiting", "vllm:num_requests_running")]
    assert values == [7.0, 40.0]
    assert signal_value("vllm:kv_cache_usage_perc", snapshot) == signal_value("vllm:gpu_cache_usage_perc", snapshot)
    assert signal_value("vllm:kv_cache_usage_perc", snapshot) == 0.25


def test_the_fleet_timeline_reads_vllms_queue_when_jetstreams_backlog_is_missing() -> None:
    def scrape(name: str, value: float) -> PodScrape:
        return PodScrape(t_s=0.0, series={name: (Series(labels=(), value=value),)}, error=None)

    signals = fleet_signals(
        {"a": scrape("vllm:num_requests_waiting", 4.0), "b": scrape("vllm:num_requests_waiting", 2.0)}, ["a", "b"]
    )
    assert signals["prefill_backlog"] == 3.0 and math.isnan(signals["slots_used"])
    both = fleet_signals({"a": scrape("jetstream_prefill_backlog_size", 9.0)}, ["a"])
    assert both["prefill_backlog"] == 9.0
