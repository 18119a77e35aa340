"""Ctrl-C twice: while a command writes its partial results, a second SIGINT exits at once with 130."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from jetscale.cli.interrupt import EXIT_INTERRUPTED, write_partial

SECOND = """
import os, signal, time
from jetscale.cli.interrupt import second_interrupt_exits
with second_interrupt_exits():
    os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C, while the partial results are being written
    time.sleep(30)
print("not reached")
"""


def test_a_second_interrupt_exits_at_once_with_130() -> None:
    done = subprocess.run([sys.executable, "-c", SECOND], capture_output=True, text=True, timeout=20)
    assert done.returncode == EXIT_INTERRUPTED == 130
    assert "not reached" not in done.stdout
    assert "interrupted again: exiting now" in done.stderr


def test_partial_results_are_marked_partial(tmp_path: Path) -> None:
    path = write_partial(tmp_path / "out", {"command": "x", "ratio": float("nan"), "done": (1, 2)})
    assert path == tmp_path / "out" / "partial.json"
    assert json.loads(path.read_text()) == {"partial": True, "command": "x", "ratio": None, "done": [1, 2]}
