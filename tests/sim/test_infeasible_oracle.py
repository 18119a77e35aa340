"""``simulate``: no cost ratio against an oracle that could not meet the SLO (its cost is no lower bound)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jetscale.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hpa"


def test_simulate_gives_no_ratio_against_an_infeasible_oracle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["simulate", "--hpa", str(EXAMPLES / "backlog.yaml"), "--rate", "3", "--duration", "120", "--quiet",
            "--workload", "fixed:input=100,output=100", "--oracle-window", "60s", "--oracle-max", "2",
            "--slo", "ttft_p50=1ms"]  # fmt: skip  # no fleet serves a first token in 1 ms
    with pytest.raises(SystemExit):
        main([*args, "--out", str(tmp_path / "a")])
    text = " ".join(capsys.readouterr().out.split())
    assert "(infeasible: some windows miss the SLO at its maximum)" in text
    assert "- (no ratio against an infeasible oracle; raise --oracle-max)" in text
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["oracle_feasible"] is False and summary["cost_ratio"] is None
    with pytest.raises(SystemExit):
        main([*args, "--out", str(tmp_path / "b"), "--compare", str(EXAMPLES / "slots.yaml")])
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith("│ backlog") or line.startswith("│ slots")]
    assert len(rows) == 2 and all("x │" not in row for row in rows)  # the "/ oracle" column shows "-"
    assert ">-</td>" in (tmp_path / "b" / "compare.html").read_text()
