"""``jetscale tune`` as a process: Ctrl-C leaves ``OUT/partial.json`` and exit status 130; ``--json``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jetscale.cli import main

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = [sys.executable, "-c", "import sys; from jetscale.cli import main; main(sys.argv[1:])"]
TINY = ["--workload", "fixed:input=100,output=100", "--batch-size", "1", "--startup",
        "provision=0s,pull=5s,load=10s,ready=0s", "--seeds", "1", "--oracle-window", "60s"]  # fmt: skip


def _wait_for(proc: subprocess.Popen[str], text: str, timeout_s: float = 90) -> list[str]:
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if text in line or not line:
            break
    assert text in lines[-1], "".join(lines)
    return lines


@pytest.mark.parametrize("jobs", ["1", "2"], ids=["in-process", "worker-pool"])
def test_ctrl_c_during_tune_leaves_partial_json_and_exits_130(jobs: str, tmp_path: Path) -> None:
    # a week of traffic with a coarse pass of small runs: the search goes on for minutes
    args = ["tune", *TINY, "--jobs", jobs, "--rate", "20", "--shape", "diurnal", "--duration", "168h",
            "--coarse-requests", "20000", "--signals", "backlog,slots", "--out", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*LAUNCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=env)  # fmt: skip
    try:
        _wait_for(proc, "jetscale tune: search")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    doc = json.loads((tmp_path / "partial.json").read_text())
    assert doc["partial"] is True and doc["command"] == "tune"
    assert doc["stage"].startswith("search") and doc["required_attainment"] == 0.99
    assert len(doc["candidates"]) <= doc["simulations"]
    if doc["candidates"]:
        assert doc["best_so_far"] in doc["candidates"]
    text = " ".join(out.split())
    assert f"interrupted during {doc['stage']}" in text and "partial results in" in text
    assert "Traceback" not in err
    assert not (tmp_path / "hpa.yaml").exists()  # nothing is recommended from an unfinished search


def test_tune_json_is_one_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["tune", *TINY, "--jobs", "1", "--quiet", "--rate", "6", "--shape", "step:at=150s,base=0.3",
            "--duration", "420", "--signals", "backlog", "--slo", "e2e_p99=3s", "--attainment", "0.8",
            "--max-replicas", "4", "--json", "--out", str(tmp_path)]  # fmt: skip
    try:
        main(args)
    except SystemExit as exit_:
        assert exit_.code in (0, None)
    doc = json.loads(capsys.readouterr().out)
    assert doc["command"] == "tune" and doc["partial"] is False and doc["met"] is True
    assert doc["files"]["hpa"] == str(tmp_path / "hpa.yaml")
    assert doc["winner"] == json.loads((tmp_path / "tune.json").read_text())["winner"]
    assert doc["oracle_feasible"] in (True, False)


def test_attainment_must_be_a_fraction(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    try:
        main(["tune", "--attainment", "99", "--out", str(tmp_path)])
    except SystemExit as exit_:
        assert exit_.code == 2
    assert "'--attainment' must be a fraction in (0, 1] such as 0.99 (got '99')" in capsys.readouterr().err
