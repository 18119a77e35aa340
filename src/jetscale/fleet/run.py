"""Running a fleet in the foreground: the live view, and stopping on Ctrl-C, SIGTERM, a duration or a task.

``run_fleet`` is shared by ``jetscale up`` and ``jetscale demo``. On a terminal it redraws the live view
(``jetscale.fleet.view``) a few times a second; otherwise it prints one line per HPA sync. SIGINT and
SIGTERM only set an event (``stop_on_signals``, installed before the fleet starts): the caller then
stops the fleet in order (``Fleet.stop``), and the children's own nets (``jetscale.fleet.procs``) catch
anything left.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.live import Live

from jetscale.fleet.fleet import Fleet
from jetscale.fleet.view import render, snapshot

__all__ = ["Ended", "run_fleet", "stop_on_signals", "sync_line"]

_REDRAW_S = 0.25


class Ended(StrEnum):
    DURATION = "duration"
    SIGNAL = "signal"
    TASK = "task"  # the awaited work (the demo's load) finished


def sync_line(fleet: Fleet) -> str:
    """One line about the last sync, for logs and pipes."""
    record = fleet.controller.last
    if record is None:
        return "no sync yet"
    d = record.decision
    values = []
    for metric, result in zip(fleet.config.hpa.metrics, d.proposals, strict=False):
        usage = getattr(result, "usage_milli", None)
        values.append(f"{metric.name}={usage / 1000:g}" if usage is not None else f"{metric.name}=unavailable")
    states = [v.state for v in fleet.views()]
    ready = sum(1 for s in states if s == "ready")
    change = f"{d.current_replicas}->{d.desired_replicas}" if d.rescale else f"={d.current_replicas}"
    return f"t={record.t_s:7.1f}s replicas {ready} ready/{len(states)} {change} [{d.reason}] " + " ".join(values)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """An event that SIGINT or SIGTERM sets, for as long as the block runs (the running loop's handlers)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in signals:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)


async def run_fleet(
    fleet: Fleet,
    *,
    console: Console,
    stop: asyncio.Event,
    duration_wall_s: float | None = None,
    until: asyncio.Future[Any] | None = None,
    live: bool | None = None,
) -> Ended:
    """Show the fleet until ``stop`` is set (``stop_on_signals``), ``duration_wall_s`` has passed or the
    caller's task ``until`` is done; says which ended it. ``until`` is left to the caller."""
    waiters: dict[asyncio.Future[Any], Ended] = {asyncio.ensure_future(stop.wait()): Ended.SIGNAL}
    if duration_wall_s is not None:
        waiters[asyncio.ensure_future(asyncio.sleep(duration_wall_s))] = Ended.DURATION
    if until is not None:
        waiters[until] = Ended.TASK
    use_live = console.is_terminal if live is None else live
    drawer = asyncio.create_task(_draw(fleet, console) if use_live else _log(fleet, console))
    try:
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        ended = next(why for future, why in waiters.items() if future in done)
    finally:
        drawer.cancel()
        await asyncio.gather(drawer, return_exceptions=True)
        for future, why in waiters.items():
            if why is not Ended.TASK:
                future.cancel()
    return ended


async def _draw(fleet: Fleet, console: Console) -> None:
    with Live(render(snapshot(fleet)), console=console, auto_refresh=False, transient=False) as live:
        try:
            while True:
                await asyncio.sleep(_REDRAW_S)
                live.update(render(snapshot(fleet)), refresh=True)
        finally:
            live.update(render(snapshot(fleet)), refresh=True)


async def _log(fleet: Fleet, console: Console) -> None:
    seen = 0
    while True:
        await asyncio.sleep(_REDRAW_S)
        count = len(fleet.controller.records)
        if count != seen:
            seen = count
            console.print(sync_line(fleet), highlight=False, soft_wrap=True, markup=False)
