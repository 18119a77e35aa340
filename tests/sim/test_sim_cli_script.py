"""``jetscale simulate`` as a script sees it: a real process whose stdout is a pipe, ``--json``, ``--check``
and Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = [sys.executable, "-c", "import sys; from jetscale.cli import main; main(sys.argv[1:])"]
SHORT = ["--rate", "3", "--duration", "180", "--seed", "1", "--workload", "fixed:input=100,output=100",
         "--oracle-window", "60s"]  # fmt: skip
LONG_NAME = "backlog-target-5-per-replica-scale-down-after-five-minutes"
HEADERS = ("run", "replica-h", "cost", "/ oracle", "SLOs met", "attainment", "TTFT p99", "E2E p99", "refused",
           "up/down")  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "80", "PYTHONUNBUFFERED": "1"}  # 80: what rich assumes for a pipe


def _jetscale(args: list[str], *, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LAUNCH, *args], capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=timeout_s)


def test_piped_output_keeps_full_run_names_and_headers(tmp_path: Path) -> None:
    long = tmp_path / f"{LONG_NAME}.yaml"
    shutil.copy(ROOT / "examples/hpa/backlog.yaml", long)
    folder = tmp_path / "out" / "a-folder-with-a-long-name-that-must-not-wrap-in-the-report-line"
    args = ["simulate", "--compare", str(long), str(ROOT / "examples/hpa/slots.yaml"), *SHORT, "--out", str(folder)]
    # `jetscale simulate ... | cat`: stdout is a pipe to another process
    producer = subprocess.Popen(
        [*LAUNCH, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT, env=_env()
    )
    assert producer.stdout is not None
    cat = subprocess.run(["cat"], stdin=producer.stdout, capture_output=True, text=True, timeout=120)
    producer.stdout.close()
    assert producer.wait(timeout=30) == 0
    out = cat.stdout
    row = next(line for line in out.splitlines() if LONG_NAME in line)  # the whole name, on one line
    assert "…" not in out
    header = next(line for line in out.splitlines() if "replica-h" in line)
    for name in HEADERS:
        assert name in header, (name, header)
    assert len(row) > 80  # wider than rich's default for a pipe: nothing was squeezed into 80 columns
    report = next(line for line in out.splitlines() if line.startswith("report: "))
    assert report.endswith("a-folder-with-a-long-name-that-must-not-wrap-in-the-report-line/compare.html")


def test_json_is_the_only_thing_on_stdout(tmp_path: Path) -> None:
    done = _jetscale(["simulate", "--hpa", str(ROOT / "examples/hpa/backlog.yaml"), *SHORT, "--json",
                      "--out", str(tmp_path)])  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)  # the whole of stdout is one document
    assert doc["command"] == "simulate" and doc["partial"] is False and doc["slos_met"] is True
    (run,) = doc["runs"]
    assert run["name"] == "backlog" and run["counts"]["arrived"] == run["counts"]["done"] > 0
    assert run == json.loads((tmp_path / "summary.json").read_text())
    assert doc["report"] == str(tmp_path / "report.html")


def test_check_exits_3_when_an_slo_is_missed(tmp_path: Path) -> None:
    base = ["simulate", "--hpa", str(ROOT / "examples/hpa/backlog.yaml"), *SHORT, "--no-oracle", "--quiet"]
    missed = _jetscale([*base, "--slo", "ttft_p50=1ms", "--check", "--out", str(tmp_path / "a")])
    assert missed.returncode == 3, missed.stderr
    assert "SLO missed (backlog: ttft_p50<=0.001s): exit 3" in " ".join(missed.stdout.split())
    without_check = _jetscale([*base, "--slo", "ttft_p50=1ms", "--out", str(tmp_path / "b")])
    assert without_check.returncode == 0
    met = _jetscale([*base, "--check", "--out", str(tmp_path / "c")])
    assert met.returncode == 0


def _wait_for(proc: subprocess.Popen[str], text: str, timeout_s: float = 60) -> list[str]:
    """Lines of the process's stderr up to the first that contains ``text``."""
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


def test_ctrl_c_writes_partial_results_and_exits_130(tmp_path: Path) -> None:
    args = ["simulate", "--hpa", str(ROOT / "examples/hpa/backlog.yaml"), "--rate", "20", "--shape", "diurnal",
            "--duration", "168h", "--out", str(tmp_path)]  # fmt: skip  # a week: minutes of work
    proc = subprocess.Popen([*LAUNCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=_env())  # fmt: skip
    try:
        _wait_for(proc, "simulate backlog: 604800 s of simulated time")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    doc = json.loads((tmp_path / "partial.json").read_text())
    assert doc["partial"] is True and doc["command"] == "simulate"
    (run,) = doc["runs"]
    assert run["partial"] is True and run["name"] == "backlog"
    assert 0 <= run["duration_s"] < 604800
    counts = run["counts"]
    assert counts["arrived"] == counts["done"] + counts["rejected"] + counts["in_flight"]
    assert "interrupted: 0 of 1 run(s) finished; backlog stopped at" in " ".join(out.split())
    assert not (tmp_path / "summary.json").exists()  # a partial run is not reported as a finished one
