"""The fleet's child processes (replicas, Prometheus, the load generator), and how none is ever left behind.

Every child starts in a process group of its own (``start_new_session``), so that a signal reaches the
child and anything it started, and a Ctrl-C at the terminal reaches only the fleet, which then stops its
children in order (router first, then replicas drain). Three nets catch what an orderly stop misses:

1. ``terminate`` sends SIGTERM to the group, waits, then SIGKILLs the group;
2. an ``atexit`` hook SIGKILLs the group of every child still registered when the interpreter exits;
3. on Linux each child asks the kernel for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``), which
   covers a fleet that is itself SIGKILLed. The request is made between fork and exec, before any Python
   of the child runs, and a child whose parent is already gone exits at once.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

__all__ = ["live_pids", "signal_group", "spawn", "terminate"]

_PR_SET_PDEATHSIG = 1
_LIVE: dict[int, int] = {}  # pid -> process group id, of children not yet reaped


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6", use_errno=True)
    except OSError:
        return None
    fn: Callable[..., int] = libc.prctl
    return fn


_PRCTL = _prctl()  # looked up here, in the parent: the child between fork and exec only calls it


def _die_with_parent(parent: int) -> Callable[[], None]:
    def setup() -> None:
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return setup


def live_pids() -> tuple[int, ...]:
    """The children spawned here and not yet reaped."""
    return tuple(_LIVE)


async def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout: int | IO[bytes] | None = asyncio.subprocess.PIPE,
    stderr: int | IO[bytes] | None = asyncio.subprocess.DEVNULL,
) -> asyncio.subprocess.Process:
    """Start ``argv`` in its own process group, killed by the kernel if this process dies."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=_die_with_parent(os.getpid()),
    )
    _LIVE[proc.pid] = proc.pid  # start_new_session: the child leads a group with its own pid
    return proc


def signal_group(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    """Send ``sig`` to the child's process group (nothing if it is gone)."""
    if proc.returncode is not None and proc.pid not in _LIVE:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


async def wait(proc: asyncio.subprocess.Process) -> int:
    """Wait for the child to exit; forget it afterwards and kill whatever else its group still holds."""
    code = await proc.wait()
    _forget(proc.pid)
    return code


def _forget(pid: int) -> None:
    group = _LIVE.pop(pid, None)
    if group is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


async def terminate(proc: asyncio.subprocess.Process, grace_s: float) -> int:
    """SIGTERM the child's group, wait up to ``grace_s`` wall seconds, then SIGKILL it. Returns the exit code."""
    if proc.returncode is None:
        signal_group(proc, signal.SIGTERM)
        try:
            return await asyncio.wait_for(wait(proc), timeout=grace_s)
        except TimeoutError:
            signal_group(proc, signal.SIGKILL)
    return await wait(proc)


@atexit.register
def _kill_all() -> None:
    for pid in list(_LIVE):
        _forget(pid)
