"""``jetscale simulate`` end to end on short runs: the files it writes, the comparison, and flag errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from jetscale.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hpa"
SHORT = ["--rate", "3", "--shape", "step:at=60s,base=0.3", "--duration", "180", "--seed", "1", "--quiet",
         "--workload", "fixed:input=100,output=100", "--oracle-window", "60s"]  # fmt: skip


def _run(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_one_run_writes_its_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = _run(["simulate", "--hpa", str(EXAMPLES / "backlog.yaml"), *SHORT, "--records", "--out", str(out)])
    assert code == 0
    for name in ("report.html", "timeline.csv", "timeline.png", "summary.json", "latency_per_minute.csv",
                 "metrics.csv", "hpa_syncs.csv", "replicas.csv", "oracle.csv", "requests.csv"):  # fmt: skip
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    counts = summary["counts"]
    with (out / "requests.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert counts["arrived"] == len(rows) + counts["in_flight"]
    assert counts["arrived"] == counts["done"] + counts["rejected"] + counts["in_flight"]
    assert summary["cost"]["chip_hours"] == pytest.approx(8 * summary["cost"]["replica_hours"])
    assert summary["cost_ratio"] == pytest.approx(summary["cost"]["replica_hours"] / summary["oracle"]["replica_hours"])
    with (out / "hpa_syncs.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 12  # one sync every 15 s over 180 s
    printed = capsys.readouterr().out
    assert "cost / oracle" in printed and "SLO ttft_p95<=2s" in printed


def test_compare_runs_each_manifest_on_the_same_requests(tmp_path: Path) -> None:
    manifests = [str(EXAMPLES / "backlog.yaml"), str(EXAMPLES / "slots.yaml")]
    code = _run(["simulate", "--compare", *manifests, *SHORT, "--no-oracle", "--out", str(tmp_path)])
    assert code == 0
    assert {p.name for p in tmp_path.iterdir()} >= {"compare.html", "compare.json", "compare.png", "backlog", "slots"}
    runs = json.loads((tmp_path / "compare.json").read_text())
    assert [r["name"] for r in runs] == ["backlog", "slots"]
    assert runs[0]["counts"]["arrived"] == runs[1]["counts"]["arrived"] > 0
    assert (tmp_path / "slots" / "report.html").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "1", "--duration", "60"], "give a manifest"),
        ([str(EXAMPLES / "backlog.yaml"), str(EXAMPLES / "slots.yaml"), "--rate", "1", "--duration", "60"],
         "'--compare' is needed"),
        (["--hpa", str(EXAMPLES / "backlog.yaml"), "--duration", "60"], "give exactly one traffic mode"),
        (["--hpa", str(EXAMPLES / "backlog.yaml"), "--rate", "1"], "'--duration' must be given"),
        (["--hpa", str(EXAMPLES / "backlog.yaml"), "--rate", "1", "--duration", "60", "--router", "random"],
         "'--router' must be one of"),
        (["--hpa", str(EXAMPLES / "backlog.yaml"), "--rate", "1", "--duration", "60", "--startup", "boot=1s"],
         "'--startup' must be key=DELAY"),
        (["--hpa", str(EXAMPLES / "backlog.yaml"), "--rate", "0", "--duration", "60"], "'--rate' must be > 0"),
    ],
    ids=["no-manifest", "two-without-compare", "no-traffic", "no-duration", "bad-router", "bad-startup", "zero-rate"],
)  # fmt: skip
def test_bad_flags_exit_2_with_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["simulate", *args, "--quiet"]) == 2
    assert message in capsys.readouterr().err
