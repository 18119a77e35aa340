"""``jetscale up`` as a process: Ctrl-C, SIGTERM, even SIGKILL leave no replica or Prometheus behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ["-c", "import sys; from jetscale.cli import main; main(sys.argv[1:])"]


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.parametrize(
    ("sig", "exit_code"),
    [
        pytest.param(signal.SIGINT, 0, id="ctrl-c"),
        pytest.param(signal.SIGTERM, 0, id="sigterm"),
        pytest.param(signal.SIGKILL, -signal.SIGKILL, id="sigkill"),
    ],
)
def test_stopping_up_leaves_no_process_behind(sig: signal.Signals, exit_code: int, tmp_path: Path) -> None:
    argv = [sys.executable, *LAUNCH, "up", "--hpa", str(ROOT / "examples/hpa/backlog.yaml"), "--speed", "10",
            "--model-load-s", "2", "--batch-size", "8", "--replicas", "2", "--port", "0", "--prometheus",
            "--log-dir", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("router on") or not line:
                break
        assert lines[-1].startswith("router on"), "".join(lines)
        children = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert len(children) >= 3 and "prometheus" in names and names.count(" serve ") == 2, names
        proc.send_signal(sig)
        assert proc.wait(timeout=40) == exit_code
        pids = [c.pid for c in children]
        deadline = time.monotonic() + 10
        while _alive(pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _alive(pids) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
