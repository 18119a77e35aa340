"""``jetscale up`` stopped by Ctrl-C says what the fleet did and writes it to ``LOG_DIR/partial.json``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = [sys.executable, "-c", "import sys; from jetscale.cli import main; main(sys.argv[1:])"]


def test_ctrl_c_writes_what_the_fleet_did(tmp_path: Path) -> None:
    argv = [*LAUNCH, "up", "--hpa", str(ROOT / "examples/hpa/backlog.yaml"), "--speed", "10", "--model-load-s", "2",
            "--batch-size", "8", "--replicas", "1", "--port", "0", "--log-dir", str(tmp_path)]  # fmt: skip
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
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, out  # Ctrl-C is how `up` ends
    doc = json.loads((tmp_path / "partial.json").read_text())
    assert doc["partial"] is True and doc["command"] == "up" and doc["ended"] == "signal"
    assert doc["requests"]["arrivals"] == 0 and isinstance(doc["scaling_events"], list)
    assert f"what the fleet did: {tmp_path / 'partial.json'}" in out
