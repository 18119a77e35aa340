"""Ctrl-C in the long commands (``simulate``, ``tune``, ``load``, ``up``).

The first SIGINT stops the work (Python's ``KeyboardInterrupt``); the command then prints what was done
and writes what it has to ``OUT/partial.json``, a JSON document with ``"partial": true``, and exits with
``EXIT_INTERRUPTED`` (130, the shell's 128 + SIGINT). While it writes, a second SIGINT exits at once,
with the same status and no more output (``second_interrupt_exits``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from jetscale.report.jsondoc import dumps

__all__ = ["EXIT_INTERRUPTED", "PARTIAL_FILE", "exit_now", "second_interrupt_exits", "write_partial"]

EXIT_INTERRUPTED = 130
PARTIAL_FILE = "partial.json"


def exit_now(signum: int, frame: object) -> None:
    """Exit at once, status 130 (a signal handler: no cleanup, no more output)."""
    os.write(2, b"\njetscale: interrupted again: exiting now\n")
    os._exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def second_interrupt_exits() -> Iterator[None]:
    """For the block (the partial results being written): SIGINT exits the process at once, status 130."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def write_partial(out_dir: Path, document: Mapping[str, object]) -> Path:
    """Write ``OUT/partial.json``: ``{"partial": true, ...document}``; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PARTIAL_FILE
    path.write_text(dumps({"partial": True, **document}), encoding="utf-8")
    return path
