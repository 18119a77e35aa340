"""The fleet's Deployment: replica processes like pods, with readiness, draining and restarts.

A replica is one ``jetscale serve`` process (or any command that behaves like it: prints
``... http=HOST:PORT ...`` once listening, answers ``GET /healthz/ready`` with 200 once it can serve,
drains on SIGTERM). Its life, in Kubernetes words:

``STARTING`` (a Pending pod: process up, model loading, no traffic, no metrics) -> the first readiness
probe that answers 200 -> ``READY`` (a Running, Ready pod: the router sends it traffic, its metrics
count) -> on scale-down ``DRAINING`` (a terminating pod: out of the router first, then SIGTERM, so it
finishes its in-flight requests and exits) -> ``STOPPED``. A process that dies on its own is
``RESTARTING`` (Running, not Ready: out of the router, a pod without metrics) until its new process,
started after a back-off of 10 model seconds doubling to 300 (CrashLoopBackOff's), is ready again.

Probes, back-off and timeouts are model seconds, waited for in wall seconds on the fleet's clock.
``removal_order`` is the ReplicaSet controller's choice of which pods a scale-down deletes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import IO, Protocol

import aiohttp

from jetscale.fleet import procs
from jetscale.fleet.clock import FleetClock

__all__ = [
    "ReplicaCommand",
    "ReplicaSet",
    "ReplicaState",
    "ReplicaTiming",
    "ReplicaView",
    "ServeCommand",
    "removal_order",
]

_LISTENING = re.compile(r"\bhttp=(?P<host>\S+):(?P<port>\d+)\b")
_LAUNCH = "import sys; from jetscale.cli import main; main(sys.argv[1:])"


def _number(value: float) -> str:
    """``value`` as a flag: short (``10``, ``0.5``) yet exact, so the replica runs at the fleet's speed."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def _seconds(value: float) -> str:
    """Seconds as a duration flag (``parse_duration_s`` takes no exponent): ``0.25``, ``0.0000001``, exact."""
    return format(Decimal(repr(float(value))), "f")


class ReplicaState(StrEnum):
    STARTING = "starting"  # Pending: loading the model
    READY = "ready"  # Running and Ready: in the router
    RESTARTING = "restarting"  # Running, not Ready: its process died and is being restarted
    DRAINING = "draining"  # terminating: out of the router, finishing in-flight requests
    STOPPED = "stopped"


class ReplicaCommand(Protocol):
    """How to start one replica named ``name`` (its metrics' ``id``, the pod name)."""

    def argv(self, name: str) -> list[str]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeCommand:
    """``jetscale serve`` on a free loopback port, without gRPC, as replica ``name``.

    The replica's shape is the preset with ``overrides()`` applied: ``jetscale up`` resolves the same
    overrides once itself, so that a bad one is refused before any replica starts."""

    preset: str = "v5e-8/llama2-7b"
    replica_file: Path | None = None  # a replica YAML or profile.yaml, in place of the preset (made absolute)
    speed: float = 1.0
    batch_size: int | None = None
    model_load_s: float | None = None  # model seconds; None: the preset's
    prefill_backlog_limit: int | None = None  # None: the preset's
    max_queue_wait_s: float | None = None  # model seconds; None: no admission by time
    seed: int = 0
    grace_period_s: float = 30.0  # wall seconds a draining replica may take
    python: str = sys.executable

    def overrides(self) -> dict[str, object]:
        """The ``ReplicaConfig`` fields these flags set (``resolve_preset(preset, **overrides())``)."""
        fields = {
            "decode_slots": self.batch_size,
            "model_load_s": self.model_load_s,
            "prefill_backlog_limit": self.prefill_backlog_limit,
            "max_queue_wait_s": self.max_queue_wait_s,
        }
        return {key: value for key, value in fields.items() if value is not None}

    def argv(self, name: str) -> list[str]:
        shape = ["--replica", str(self.replica_file.resolve())] if self.replica_file else ["--preset", self.preset]
        argv = [self.python, "-c", _LAUNCH, "serve", *shape, "--port", "0", "--grpc-port", "-1"]
        argv += ["--speed", _number(self.speed), "--seed", str(self.seed), "--server-id", name]
        argv += ["--grace-period-s", _number(self.grace_period_s)]
        if self.batch_size is not None:
            argv += ["--batch-size", str(self.batch_size)]
        if self.model_load_s is not None:
            argv += ["--model-load-s", _number(self.model_load_s)]
        if self.prefill_backlog_limit is not None:
            argv += ["--prefill-backlog-limit", str(self.prefill_backlog_limit)]
        if self.max_queue_wait_s is not None:
            argv += ["--max-queue-wait", _seconds(self.max_queue_wait_s)]
        return argv


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaTiming:
    """Probe and restart timing in model seconds; limits on start and drain in wall seconds."""

    probe_period_s: float = 1.0
    restart_backoff_s: float = 10.0
    max_restart_backoff_s: float = 300.0
    listen_timeout_wall_s: float = 60.0  # from spawn to the "serving ... http=" line
    drain_timeout_wall_s: float = 35.0  # SIGTERM to SIGKILL


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaView:
    """One replica as the controller and the view see it; times are model seconds."""

    name: str
    state: ReplicaState
    url: str | None
    pid: int | None
    restarts: int
    created_s: float
    ready_s: float | None  # when it last became ready


_DELETE_FIRST = {ReplicaState.STARTING: 0, ReplicaState.RESTARTING: 1, ReplicaState.READY: 2}


def removal_order(replicas: Sequence[ReplicaView]) -> list[ReplicaView]:
    """The replicas a scale-down removes first, as the ReplicaSet controller ranks pods: pending before
    running, not ready before ready, ready for less time before longer, more restarts first, newer first.
    Replicas already draining or stopped are not candidates."""
    candidates = [r for r in replicas if r.state in _DELETE_FIRST]
    return sorted(
        candidates,
        key=lambda r: (_DELETE_FIRST[r.state], -(r.ready_s or 0.0), -r.restarts, -r.created_s, r.name),
    )


class _Replica:
    __slots__ = ("crashes", "created_s", "name", "pid", "proc", "ready_s", "restarts", "state", "stop", "task", "url")

    def __init__(self, name: str, created_s: float) -> None:
        self.name = name
        self.created_s = created_s
        self.state = ReplicaState.STARTING
        self.url: str | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.pid: int | None = None
        self.restarts = 0
        self.crashes = 0  # since it was last ready: the back-off exponent
        self.ready_s: float | None = None
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def view(self) -> ReplicaView:
        return ReplicaView(
            name=self.name,
            state=self.state,
            url=self.url,
            pid=self.pid,
            restarts=self.restarts,
            created_s=self.created_s,
            ready_s=self.ready_s,
        )


Listener = Callable[[str, str | None], None]  # (name, url when ready / None when it leaves service)


class ReplicaSet:
    """The replica processes of one Deployment. Inert until ``start()``; ``scale(n)`` sets the count."""

    def __init__(
        self,
        command: ReplicaCommand,
        *,
        clock: FleetClock,
        prefix: str = "jetstream",
        listener: Listener = lambda _name, _url: None,
        log_dir: Path | None = None,
        timing: ReplicaTiming = ReplicaTiming(),
    ) -> None:
        self._command = command
        self._clock = clock
        self._prefix = prefix
        self._listener = listener
        self._log_dir = log_dir.absolute() if log_dir is not None else None  # messages name where to look
        self._timing = timing
        self._replicas: dict[str, _Replica] = {}
        self._serial = 0
        self._desired = 0
        self._drains: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None

    @property
    def desired(self) -> int:
        """The count last asked for (the Deployment's ``spec.replicas``)."""
        return self._desired

    def views(self) -> tuple[ReplicaView, ...]:
        return tuple(r.view() for r in self._replicas.values())

    def ready_urls(self) -> dict[str, str]:
        return {r.name: r.url for r in self._replicas.values() if r.state is ReplicaState.READY and r.url}

    async def start(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0))
        if self._log_dir is not None:
            self._log_dir.mkdir(parents=True, exist_ok=True)

    async def scale(self, replicas: int) -> None:
        """Start replicas or drain the ones ``removal_order`` picks, so that ``replicas`` remain."""
        self._desired = replicas
        live = [r for r in self._replicas.values() if not r.stop.is_set()]
        for _ in range(replicas - len(live)):
            self._add()
        if len(live) > replicas:
            by_name = {r.name: r for r in live}
            for view in removal_order([r.view() for r in live])[: len(live) - replicas]:
                task = asyncio.create_task(self._drain(by_name[view.name]), name=f"drain-{view.name}")
                self._drains.add(task)
                task.add_done_callback(self._drains.discard)

    async def wait_ready(self, count: int, timeout_wall_s: float) -> bool:
        """Wait until at least ``count`` replicas are ready; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_wall_s
        while sum(1 for r in self._replicas.values() if r.state is ReplicaState.READY) < count:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def stop(self) -> None:
        """Drain every replica at once and wait for all of them to exit."""
        self._desired = 0
        for replica in list(self._replicas.values()):
            if not replica.stop.is_set():
                task = asyncio.create_task(self._drain(replica))
                self._drains.add(task)
                task.add_done_callback(self._drains.discard)
        while self._drains:
            await asyncio.gather(*list(self._drains), return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None

    def kill(self, name: str) -> int | None:
        """SIGKILL replica ``name``'s process, as a crash would end it; returns its pid (tests, chaos)."""
        replica = self._replicas[name]
        if replica.proc is None or replica.proc.returncode is not None:
            return None
        procs.signal_group(replica.proc, signal.SIGKILL)
        return replica.pid

    # ---- one replica --------------------------------------------------------------------------------
    def _add(self) -> None:
        name = f"{self._prefix}-{self._serial}"
        self._serial += 1
        replica = _Replica(name, self._clock.model_s())
        self._replicas[name] = replica
        replica.task = asyncio.create_task(self._supervise(replica), name=f"replica-{name}")

    async def _drain(self, replica: _Replica) -> None:
        replica.stop.set()
        if replica.state is ReplicaState.READY:
            self._listener(replica.name, None)  # out of the router before SIGTERM
        replica.state = ReplicaState.DRAINING
        if replica.task is not None:
            await asyncio.gather(replica.task, return_exceptions=True)
        replica.state = ReplicaState.STOPPED
        self._replicas.pop(replica.name, None)

    def _wall(self, model_s: float) -> float:
        return self._clock.to_wall_s(model_s)

    async def _supervise(self, replica: _Replica) -> None:
        log = self._open_log(replica.name)
        try:
            while not replica.stop.is_set():
                proc = await procs.spawn(self._command.argv(replica.name), stderr=log or asyncio.subprocess.DEVNULL)
                replica.proc, replica.pid = proc, proc.pid
                await self._serve(replica, proc, log)
                if replica.stop.is_set():
                    break
                await procs.wait(proc)
                if replica.state is ReplicaState.READY:
                    self._listener(replica.name, None)
                replica.state = ReplicaState.RESTARTING
                replica.url = None
                replica.restarts += 1
                replica.crashes += 1
                backoff = min(
                    self._timing.restart_backoff_s * 2 ** (replica.crashes - 1), self._timing.max_restart_backoff_s
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(replica.stop.wait(), self._wall(backoff))
        finally:
            if replica.proc is not None and replica.proc.returncode is None:
                await procs.terminate(replica.proc, self._timing.drain_timeout_wall_s)
            elif replica.proc is not None:
                await procs.wait(replica.proc)
            if log is not None:
                log.close()

    async def _serve(self, replica: _Replica, proc: asyncio.subprocess.Process, log: IO[bytes] | None) -> None:
        """From spawn to exit (or to the stop request): find the port, probe readiness, then wait."""
        exited = asyncio.ensure_future(proc.wait())
        stopped = asyncio.ensure_future(replica.stop.wait())
        copier: asyncio.Task[None] | None = None
        try:
            assert proc.stdout is not None
            line = asyncio.ensure_future(proc.stdout.readline())
            done, _ = await asyncio.wait(
                {line, exited, stopped}, timeout=self._timing.listen_timeout_wall_s, return_when=asyncio.FIRST_COMPLETED
            )
            if line not in done:
                line.cancel()
                if not done:  # never said where it listens: treat as a crash
                    procs.signal_group(proc, signal.SIGKILL)
                    await exited
                return
            match = _LISTENING.search(line.result().decode(errors="replace"))
            copier = asyncio.create_task(_copy(proc.stdout, log))
            if match is None:
                procs.signal_group(proc, signal.SIGKILL)
                await exited
                return
            replica.url = f"http://{match['host']}:{match['port']}"
            while not (exited.done() or stopped.done()):
                if await self._probe(replica.url) and not replica.stop.is_set():
                    replica.state = ReplicaState.READY
                    replica.ready_s = self._clock.model_s()
                    replica.crashes = 0
                    self._listener(replica.name, replica.url)
                    break
                probe_wall_s = self._wall(self._timing.probe_period_s)
                await asyncio.wait({exited, stopped}, timeout=probe_wall_s, return_when=asyncio.FIRST_COMPLETED)
            await asyncio.wait({exited, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not exited.done():
                exited.cancel()
            if copier is not None:
                copier.cancel()

    async def _probe(self, url: str) -> bool:
        assert self._http is not None
        try:
            async with self._http.get(f"{url}/healthz/ready") as response:
                await response.read()
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    def _open_log(self, name: str) -> IO[bytes] | None:
        if self._log_dir is None:
            return None
        return (self._log_dir / f"{name}.log").open("ab")


async def _copy(stream: asyncio.StreamReader, log: IO[bytes] | None) -> None:
    """Keep reading the child's stdout so that it never blocks on a full pipe."""
    while chunk := await stream.read(65536):
        if log is not None:
            log.write(chunk)
            log.flush()
