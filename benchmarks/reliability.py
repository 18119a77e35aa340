"""The reliability suite: what `jetscale serve` and `jetscale up` do when clients and processes misbehave.

Each scenario runs real processes on 127.0.0.1, bounded in time and request count, and counts outcomes:

* ``overload``: open-loop load at 10x the replica's modeled capacity for ``--overload-s`` (60 s) against
  ``jetscale serve --max-queue-wait 10s``; every request is answered 200 or shed (429/503 with
  Retry-After); no accepted request is lost; the accepted ones wait at most about the bound; the server's
  RSS comes back within 10% of what it was before the overload.
* ``abandon``: 200 HTTP requests (max_tokens 1024) whose clients hang up after 0.3 s and 200 gRPC streams
  cancelled by their clients, then a probe: answered within 2 s of an idle server's time, and
  ``jetscale_requests_cancelled_total`` counts all 400.
* ``fuzz-http``: hostile bodies and headers (JSON nested 100k deep, a 5,000-digit number, NaN, 100 KB
  headers, header lines with no colon, a request line that is not HTTP, wrong methods, bodies over the
  limit): 4xx each, never 5xx, no traceback in the server's log.
* ``fuzz-grpc``: bytes that are not a DecodeRequest and edge-case requests: INVALID_ARGUMENT (or a normal
  answer), never UNKNOWN/INTERNAL.
* ``schemathesis``: the server's own OpenAPI document (``/openapi.json``) checked by schemathesis
  (skipped with a note where schemathesis is not installed or the server has no document).
* ``fleet-kill``: a fleet of 3 replicas under load; one replica is killed with SIGKILL: only requests in
  flight on it may fail, the fleet restarts it.
* ``prometheus-kill``: the fleet reading metrics through Prometheus; Prometheus is SIGKILLed three times
  under load: no request fails, Prometheus is restarted each time.
* ``scale-down``: replicas drained by HPA scale-downs under load: no request fails.

Prints one table: test, sent, ok, shed, failed, 5xx, tracebacks, RSS before/after, verdict (and a note).
Exit status 1 when a verdict is FAIL. Run: ``python benchmarks/reliability.py [--only NAME,...]
[--overload-s 60]``. docs/reliability.md shows a run's table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import grpc
from rich.console import Console
from rich.table import Table

from jetscale.engine.presets import modeled_peak, resolve_preset
from jetscale.server.proto import jetstream_pb2 as pb
from jetscale.server.proto import jetstream_pb2_grpc as pb_grpc

LAUNCH = [sys.executable, "-c", "import sys; from jetscale.cli import main; main(sys.argv[1:])"]
PRESET = "v5e-8/llama2-7b"
PROMPT = "Tell me a very long story about the sea. " * 8
SHED = frozenset({429, 503})


@dataclass
class Row:
    """One scenario's counted outcomes."""

    test: str
    sent: int = 0
    ok: int = 0
    shed: int = 0
    failed: int = 0
    five_xx: int = 0
    tracebacks: int = 0
    rss_before_mib: float | None = None
    rss_after_mib: float | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: bool = False

    def count(self, status: int) -> None:
        """One answered request, by its HTTP status."""
        self.sent += 1
        if status == 200:
            self.ok += 1
        elif status in SHED:
            self.shed += 1
        else:
            self.failed += 1
        if status >= 500 and status not in SHED:
            self.five_xx += 1

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    @property
    def verdict(self) -> str:
        if self.skipped:
            return "SKIPPED"
        return "FAIL" if self.problems or self.five_xx or self.tracebacks else "PASS"


# --- processes ----------------------------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def tracebacks_in(*paths: Path) -> int:
    count = 0
    for path in paths:
        if path.is_file():
            count += path.read_text(encoding="utf-8", errors="replace").count("Traceback (most recent call last)")
    return count


@dataclass
class Served:
    """A ``jetscale serve`` process and where it listens."""

    proc: asyncio.subprocess.Process
    http_port: int
    grpc_port: int | None
    stderr: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@contextlib.asynccontextmanager
async def serve(work: Path, *args: str) -> AsyncIterator[Served]:
    """``jetscale serve`` on free ports (model load 0), stopped with SIGTERM at the end."""
    stderr = work / f"serve-{len(list(work.glob('serve-*.log')))}.log"
    argv = [*LAUNCH, "serve", "--preset", PRESET, "--port", "0", "--grpc-port", "0", "--model-load-s", "0", *args]
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=err)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        found = re.search(r"http=[\d.]+:(\d+) grpc=(?:[\d.]+:(\d+)|off)", line)
        if found is None:
            raise RuntimeError(f"jetscale serve did not start: {line!r}; see {stderr}")
        served = Served(proc, int(found[1]), int(found[2]) if found[2] else None, stderr)
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{served.base}/health") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.05)
        yield served
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def metric_sum(http: aiohttp.ClientSession, base: str, name: str) -> float:
    async with http.get(f"{base}/metrics") as response:
        text = await response.text()
    return sum(float(v) for v in re.findall(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", text, flags=re.M))


async def generate(http: aiohttp.ClientSession, base: str, text: str, max_tokens: int, timeout_s: float) -> int:
    body = {"max_tokens": max_tokens, "text_content": {"text": text}}
    async with http.post(f"{base}/v1/generate", json=body, headers={"Accept": "application/json"},
                         timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:  # fmt: skip
        await response.read()
        if response.status in SHED and "Retry-After" not in response.headers:
            return 599  # a shed answer without Retry-After: counted as a failure
        return response.status


# --- scenarios ----------------------------------------------------------------------------------------------


async def overload(work: Path, duration_s: float) -> Row:
    """10x the modeled capacity, open loop, for ``duration_s``; admission bounded to 10 s of queueing."""
    row = Row("overload 10x")
    batch, n_in, n_out, bound_s = 8, 96, 128, 10.0
    config = resolve_preset(PRESET, decode_slots=batch)
    capacity_rps = modeled_peak(config, input_tokens=n_in, output_tokens=n_out).output_tokens_s / n_out
    rate = 10 * capacity_rps
    text = " ".join(["sea"] * (n_in - 1))
    waits: list[float] = []
    flags = ["--batch-size", str(batch), "--max-queue-wait", f"{bound_s:g}s", "--grpc-port", "-1"]
    async with serve(work, *flags) as s, aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        for _ in range(3):  # warm up: the first requests import and allocate
            await generate(http, s.base, text, 4, 60)
        row.rss_before_mib = rss_mib(s.proc.pid)
        peak = row.rss_before_mib

        async def one() -> None:
            started = time.monotonic()
            try:
                status = await generate(http, s.base, text, n_out, duration_s + 120)
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            row.count(status)
            if status == 200:
                waits.append(time.monotonic() - started)

        tasks: list[asyncio.Task[None]] = []
        started = time.monotonic()
        limit = int(rate * duration_s)
        while len(tasks) < limit and time.monotonic() - started < duration_s:
            due = started + len(tasks) / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(one()))
            if len(tasks) % 50 == 0:
                peak = max(peak, rss_mib(s.proc.pid))
        await asyncio.gather(*tasks)
        await asyncio.sleep(2.0)
        row.rss_after_mib = rss_mib(s.proc.pid)
        shed_total = await metric_sum(http, s.base, "jetscale_requests_shed_total")
    row.tracebacks = tracebacks_in(s.stderr)
    service_s = n_out * config.roofline().decode_step_s(batch * (n_in + n_out // 2))
    longest = max(waits, default=0.0)
    row.notes.append(f"{rate:.1f} req/s vs capacity {capacity_rps:.2f}; longest accepted {longest:.1f} s; "
                     f"peak RSS {peak:.0f} MiB")  # fmt: skip
    row.check(row.shed > 0, "nothing was shed at 10x load")
    row.check(row.failed == 0, f"{row.failed} requests neither answered nor shed (accepted requests lost)")
    row.check(int(shed_total) == row.shed, f"the server counted {shed_total:g} shed, clients saw {row.shed}")
    row.check(longest <= bound_s + 3 * service_s + 5.0, f"an accepted request took {longest:.1f} s")
    row.check(row.rss_after_mib <= 1.10 * row.rss_before_mib,
              f"RSS {row.rss_before_mib:.0f} -> {row.rss_after_mib:.0f} MiB (over +10%)")  # fmt: skip
    return row


async def abandon(work: Path) -> Row:
    """200 hung-up HTTP requests and 200 cancelled gRPC streams, then a probe."""
    row = Row("abandon 200 HTTP + 200 gRPC")
    async with serve(work) as s, aiohttp.ClientSession() as http:
        assert s.grpc_port is not None
        row.rss_before_mib = rss_mib(s.proc.pid)
        started = time.monotonic()
        row.count(await generate(http, s.base, "ping", 4, 30))
        idle_s = time.monotonic() - started

        async def hang_up(k: int) -> None:
            row.sent += 1
            body = {"max_tokens": 1024, "text_content": {"text": f"{k} {PROMPT}"}}
            try:
                async with http.post(f"{s.base}/v1/generate", json=body,
                                     timeout=aiohttp.ClientTimeout(total=0.3)) as response:  # fmt: skip
                    await response.read()
                    row.failed += 1  # answered within 0.3 s: not abandoned
            except TimeoutError:
                pass

        await asyncio.gather(*(hang_up(k) for k in range(200)))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{s.grpc_port}") as channel:
            stub = pb_grpc.OrchestratorStub(channel)
            request = pb.DecodeRequest(max_tokens=1024, text_content=pb.DecodeRequest.TextContent(text=PROMPT))
            calls = [stub.Decode(request) for _ in range(200)]
            row.sent += len(calls)
            await asyncio.sleep(0.3)
            for call in calls:
                call.cancel()
            for call in calls:
                with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                    async for _ in call:
                        pass
        for _ in range(200):  # a hang-up is seen at the server's next write or step: wait for all of them
            async with http.get(f"{s.base}/healthz/ready") as response:
                if (await response.json())["in_flight"] == 0:
                    break
            await asyncio.sleep(0.05)
        started = time.monotonic()
        row.count(await generate(http, s.base, "ping", 4, 60))
        probe_s = time.monotonic() - started
        cancelled = await metric_sum(http, s.base, "jetscale_requests_cancelled_total")
        completed = await metric_sum(http, s.base, "jetstream_request_success_count_total")
        held = [await metric_sum(http, s.base, name) for name in HELD]
        row.rss_after_mib = rss_mib(s.proc.pid)
    row.tracebacks = tracebacks_in(s.stderr)
    unread = 400 - int(cancelled) - (int(completed) - 2)
    row.notes.append(f"probe {probe_s:.2f} s (idle {idle_s:.2f} s); cancelled {cancelled:g}; {unread} hung up "
                     "before the server had read them")  # fmt: skip
    row.check(probe_s <= idle_s + 2.0, f"the probe took {probe_s:.2f} s, idle {idle_s:.2f} s")
    row.check(completed == 2, f"{completed - 2:g} abandoned requests ran to the end")
    row.check(not any(held), f"still held after the hang-ups: {dict(zip(HELD, held, strict=True))}")
    return row


HELD = ("jetstream_prefill_backlog_size", "jetstream_slots_used_percentage", "jetstream_generate_backlog_size")


def _raw_exchange(port: int, data: bytes, timeout_s: float = 10.0) -> int:
    """Send ``data`` on a fresh connection; the status of the first answer (0: closed without one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        answer = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError, BrokenPipeError):
            sock.sendall(data)  # the server may answer and close before it has read everything
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while len(answer) < 64 and (chunk := sock.recv(4096)):
                answer += chunk
    found = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    return int(found[1]) if found else 0


def _post(path: str, body: bytes, *, headers: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{headers}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body  # fmt: skip


_DEEP = b"[" * 50_000 + b"]" * 50_000
HOSTILE: list[tuple[str, bytes]] = [
    ("JSON nested 100k deep", _post("/v1/generate", b"[" * 100_000 + b"]" * 100_000)),
    ("JSON nested 50k deep in a field", _post("/v1/completions", b'{"prompt": ' + _DEEP + b"}")),
    ("5,000-digit number", _post("/v1/generate", b'{"max_tokens": ' + b"9" * 5000 + b"}")),
    ("NaN", _post("/v1/completions", b'{"model": "m", "prompt": "x", "temperature": NaN}')),
    ("1e999", _post("/v1/completions", b'{"model": "m", "prompt": "x", "top_p": 1e999}')),
    ("not UTF-8", _post("/v1/generate", b"\xff\xfe\xfd")),
    ("body over the limit", _post("/v1/generate", b'{"x": "' + b"a" * (2 << 20) + b'"}')),
    ("100 KB header", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"),
    ("header without a colon", b"GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n"),
    ("not HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64)),
    ("bad request line", b"GARBAGE\r\n\r\n"),
    ("GET on a POST route", b"GET /v1/generate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    ("DELETE on /metrics", b"DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    ("chunked, then cut", b"POST /v1/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    ("Content-Length lies", b"POST /v1/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{}"),
    ("sidecar, max_tokens a list", _post("/generate", b'{"prompt": "x", "max_tokens": [1]}')),
    ("chat, messages an object", _post("/v1/chat/completions", b'{"model": "m", "messages": {"role": "user"}}')),
    ("unknown path", b"GET /v2/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
]  # fmt: skip


async def fuzz_http(work: Path) -> Row:
    row = Row("fuzz HTTP (bodies, headers)")
    async with serve(work, "--grpc-port", "-1") as s:
        row.rss_before_mib = rss_mib(s.proc.pid)
        statuses: Counter[int] = Counter()
        for _, data in HOSTILE:
            status = await asyncio.to_thread(_raw_exchange, s.http_port, data)
            statuses[status] += 1
            row.sent += 1
            row.five_xx += status >= 500  # 4xx and a closed connection are refusals, as they should be
            row.ok += status == 200
        async with aiohttp.ClientSession() as http:
            row.count(await generate(http, s.base, "still serving?", 4, 30))
        row.rss_after_mib = rss_mib(s.proc.pid)
    row.tracebacks = tracebacks_in(s.stderr)
    row.notes.append("statuses " + ", ".join(f"{k or 'closed'}x{v}" for k, v in sorted(statuses.items())))
    row.check(row.ok == 1, "the server stopped answering after the hostile inputs")
    return row


async def fuzz_grpc(work: Path) -> Row:
    row = Row("fuzz gRPC (bytes, edge cases)")
    garbage = [b"\xff" * 16, os.urandom(64), b"\x08" + b"\xff" * 11, b"\x1a\x05hello", b"\x12\x80\x80\x80\x80\x10"]
    edge = [
        pb.DecodeRequest(max_tokens=0, text_content=pb.DecodeRequest.TextContent(text="x")),
        pb.DecodeRequest(max_tokens=-5, text_content=pb.DecodeRequest.TextContent(text="x")),
        pb.DecodeRequest(max_tokens=2**31 - 1, text_content=pb.DecodeRequest.TextContent(text="x")),
        pb.DecodeRequest(max_tokens=4),
        pb.DecodeRequest(max_tokens=4, text_content=pb.DecodeRequest.TextContent(text="")),
        pb.DecodeRequest(max_tokens=4, token_content=pb.DecodeRequest.TokenContent(token_ids=[-1, 2**31 - 1])),
        pb.DecodeRequest(max_tokens=4, text_content=pb.DecodeRequest.TextContent(text="x" * 100_000)),
    ]
    codes: Counter[str] = Counter()
    async with serve(work) as s:
        assert s.grpc_port is not None
        row.rss_before_mib = rss_mib(s.proc.pid)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{s.grpc_port}") as channel:
            raw = channel.unary_stream("/jetstream_proto.Orchestrator/Decode",
                                       request_serializer=None, response_deserializer=None)  # fmt: skip
            typed = pb_grpc.OrchestratorStub(channel)
            calls: list[Callable[[], object]] = [lambda g=g: raw(g, timeout=30) for g in garbage]
            calls += [lambda e=e: typed.Decode(e, timeout=30) for e in edge]
            for make in calls:
                row.sent += 1
                try:
                    async for _ in make():  # type: ignore[attr-defined]
                        pass
                    row.ok += 1
                    codes["OK"] += 1
                except grpc.aio.AioRpcError as exc:
                    codes[exc.code().name] += 1
                    if exc.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE):
                        row.shed += 1
                    elif exc.code() in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
                        row.five_xx += 1
                    elif exc.code() is not grpc.StatusCode.INVALID_ARGUMENT:
                        row.failed += 1
        row.rss_after_mib = rss_mib(s.proc.pid)
    row.tracebacks = tracebacks_in(s.stderr)
    row.notes.append("codes " + ", ".join(f"{k}x{v}" for k, v in sorted(codes.items())))
    return row


async def schemathesis_run(work: Path) -> Row:
    row = Row("schemathesis /openapi.json")
    binary = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    if not Path(binary).exists():
        row.skipped = True
        row.notes.append("schemathesis is not installed (pip install -e '.[dev]')")
        return row
    async with serve(work, "--grpc-port", "-1", "--speed", "100") as s:
        async with aiohttp.ClientSession() as http, http.get(f"{s.base}/openapi.json") as response:
            if response.status != 200:
                row.skipped = True
                row.notes.append(f"/openapi.json answered {response.status}")
                return row
        row.rss_before_mib = rss_mib(s.proc.pid)
        proc = await asyncio.create_subprocess_exec(
            binary, "run", f"{s.base}/openapi.json", "--checks", "not_a_server_error", "--max-examples", "30",
            "--seed", "1", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 600)
        row.rss_after_mib = rss_mib(s.proc.pid)
    text = out.decode(errors="replace")
    (work / "schemathesis.log").write_text(text, encoding="utf-8")
    calls = re.search(r"(\d+) generated", text) or re.search(r"(\d+) test cases", text)
    row.sent = int(calls[1]) if calls else 0
    row.five_xx = len(re.findall(r"Server error", text))
    row.tracebacks = tracebacks_in(s.stderr)
    row.check(proc.returncode == 0, f"schemathesis exited {proc.returncode}; see {work / 'schemathesis.log'}")
    row.ok = row.sent - row.five_xx if proc.returncode == 0 else 0
    return row


FLEET_HPA = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: chaos}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: jetstream}}
  minReplicas: {min}
  maxReplicas: {max}
  metrics:
    - type: Pods
      pods:
        metric: {{name: jetstream_prefill_backlog_size}}
        target: {{type: AverageValue, averageValue: {target}}}
  behavior:
    scaleDown: {{stabilizationWindowSeconds: 0}}
"""


async def _fleet_under_load(
    work: Path,
    name: str,
    *,
    hpa: str,
    replicas: int,
    prometheus: bool,
    chaos: Callable[[object, Row], Awaitable[None]],
    stream: bool,
) -> Row:
    """A fleet of real replicas (speed 10, batch 8) under a closed loop of 12 clients while ``chaos`` runs."""
    from jetscale.fleet import Fleet, FleetConfig, ServeCommand
    from jetscale.hpa.spec import load_manifest, parse_hpa

    row = Row(name)
    logs = work / name.split()[0]
    speed = 10.0
    config = FleetConfig(
        hpa=parse_hpa(load_manifest(hpa)), command=ServeCommand(preset=PRESET, speed=speed, batch_size=8,
                                                                model_load_s=20.0),
        speed=speed, port=0, prometheus=prometheus, initial_replicas=replicas, log_dir=logs,
        ready_timeout_wall_s=60.0,
    )  # fmt: skip
    async with Fleet(config) as fleet, aiohttp.ClientSession() as http:
        stop = asyncio.Event()

        async def client(k: int) -> None:
            while not stop.is_set() and row.sent < 5000:
                body = {"model": "m", "prompt": f"{k} tell me about the sea", "max_tokens": 96, "stream": stream}
                try:
                    async with http.post(f"{fleet.url}/v1/completions", json=body,
                                         timeout=aiohttp.ClientTimeout(total=120)) as response:  # fmt: skip
                        await response.read()
                        row.count(response.status)
                except (aiohttp.ClientError, TimeoutError):
                    row.sent += 1
                    row.failed += 1

        clients = [asyncio.create_task(client(k)) for k in range(12)]
        await asyncio.sleep(3.0)
        await chaos(fleet, row)
        stop.set()
        await asyncio.gather(*clients)
        totals = fleet.router.totals()
        row.notes.append(f"router: {totals.ok} ok, {totals.failed} failed, {totals.retries} retried")
    row.tracebacks = tracebacks_in(*logs.rglob("*.log"))
    return row


async def fleet_kill(work: Path) -> Row:
    async def chaos(fleet: object, row: Row) -> None:
        name = fleet.views()[0].name  # type: ignore[attr-defined]
        in_flight_before = row.sent
        pid = fleet.replicas.kill(name)  # type: ignore[attr-defined]
        row.check(pid is not None, f"{name} could not be killed")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            views = {v.name: v for v in fleet.views()}  # type: ignore[attr-defined]
            if name in views and views[name].restarts >= 1 and str(views[name].state) == "ready":
                break
            await asyncio.sleep(0.2)
        else:
            row.problems.append(f"{name} was not restarted within 60 s")
        await asyncio.sleep(3.0)
        row.notes.append(f"killed {name} after {in_flight_before} requests")

    row = await _fleet_under_load(work, "fleet-kill -9 a replica", hpa=FLEET_HPA.format(min=3, max=3, target=1000),
                                  replicas=3, prometheus=False, chaos=chaos, stream=True)  # fmt: skip
    row.check(row.failed <= 8, f"{row.failed} failed: more than the streams in flight on the killed replica (8 slots)")
    row.five_xx = 0 if row.failed <= 8 else row.five_xx  # a cut stream on a killed replica is allowed to fail
    return row


async def prometheus_kill(work: Path) -> Row:
    async def chaos(fleet: object, row: Row) -> None:
        server = fleet.prometheus  # type: ignore[attr-defined]
        for k in range(3):
            deadline = time.monotonic() + 60
            while server.pid is None and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            row.check(server.pid is not None, f"prometheus not running before kill {k + 1}")
            if server.pid is not None:
                os.kill(server.pid, signal.SIGKILL)
            await asyncio.sleep(2.0)
        deadline = time.monotonic() + 60
        while server.pid is None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        row.check(server.pid is not None and server.restarts >= 3, f"prometheus restarts: {server.restarts}")
        row.notes.append(f"prometheus restarted {server.restarts} times")

    if shutil.which("prometheus") is None:
        return Row("prometheus-kill x3", skipped=True, notes=["no prometheus binary"])
    row = await _fleet_under_load(work, "prometheus-kill x3", hpa=FLEET_HPA.format(min=2, max=2, target=1000),
                                  replicas=2, prometheus=True, chaos=chaos, stream=False)  # fmt: skip
    row.check(row.failed == 0, f"{row.failed} requests failed")
    return row


async def scale_down(work: Path) -> Row:
    async def chaos(fleet: object, row: Row) -> None:
        deadline = time.monotonic() + 60
        while len(fleet.views()) > 1 and time.monotonic() < deadline:  # type: ignore[attr-defined]
            await asyncio.sleep(0.2)
        row.check(len(fleet.views()) == 1, "the fleet did not scale down to 1")  # type: ignore[attr-defined]
        await asyncio.sleep(2.0)
        downs = [e for e in fleet.controller.timeline.events if e.to_replicas < e.from_replicas]  # type: ignore[attr-defined]
        row.notes.append(f"{len(downs)} scale-downs, {' '.join(f'{e.from_replicas}->{e.to_replicas}' for e in downs)}")

    row = await _fleet_under_load(work, "scale-down 4 -> 1 under load", hpa=FLEET_HPA.format(min=1, max=4, target=1000),
                                  replicas=4, prometheus=False, chaos=chaos, stream=True)  # fmt: skip
    row.check(row.failed == 0, f"{row.failed} requests failed")
    return row


SCENARIOS: dict[str, Callable[[Path, argparse.Namespace], Awaitable[Row]]] = {
    "overload": lambda work, args: overload(work, args.overload_s),
    "abandon": lambda work, _: abandon(work),
    "fuzz-http": lambda work, _: fuzz_http(work),
    "fuzz-grpc": lambda work, _: fuzz_grpc(work),
    "schemathesis": lambda work, _: schemathesis_run(work),
    "fleet-kill": lambda work, _: fleet_kill(work),
    "prometheus-kill": lambda work, _: prometheus_kill(work),
    "scale-down": lambda work, _: scale_down(work),
}


def table(rows: list[Row]) -> Table:
    out = Table(title="jetscale reliability", show_lines=False)
    for name in ("test", "sent", "ok", "shed", "failed", "5xx", "tracebacks", "RSS before/after MiB", "verdict",
                 "note"):  # fmt: skip
        out.add_column(name, justify="right" if name not in ("test", "verdict", "note") else "left")

    def mib(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    for row in rows:
        notes = "; ".join(row.notes + row.problems)
        out.add_row(row.test, str(row.sent), str(row.ok), str(row.shed), str(row.failed), str(row.five_xx),
                    str(row.tracebacks), f"{mib(row.rss_before_mib)} / {mib(row.rss_after_mib)}", row.verdict,
                    notes)  # fmt: skip
    return out


async def main(args: argparse.Namespace) -> int:
    console = Console(width=max(160, Console().width))
    names = list(SCENARIOS) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        console.print(f"'--only' must name scenarios among {', '.join(SCENARIOS)} (got {', '.join(unknown)})")
        return 2
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="jetscale-reliability-") as tmp:
        for index, name in enumerate(names):
            work = Path(tmp) / f"{index}-{name}"
            work.mkdir()
            console.print(f"[dim]running {name} ...[/dim]")
            started = time.monotonic()
            try:
                row = await SCENARIOS[name](work, args)
            except Exception as exc:  # a scenario that breaks is a FAIL row, and the others still run
                row = Row(name, problems=[f"{type(exc).__name__}: {exc}"])
            row.notes.append(f"{time.monotonic() - started:.0f} s")
            rows.append(row)
            if args.json:
                print(json.dumps({"test": row.test, "verdict": row.verdict, "problems": row.problems}), file=sys.stderr)
    console.print(table(rows))
    if args.markdown:
        print(markdown(rows))
    return 1 if any(r.verdict == "FAIL" for r in rows) else 0


def markdown(rows: list[Row]) -> str:
    """The table as docs/reliability.md shows it."""

    def mib(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    lines = ["| test | sent | ok | shed | failed | 5xx | tracebacks | RSS before/after MiB | verdict | note |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r.test} | {r.sent} | {r.ok} | {r.shed} | {r.failed} | {r.five_xx} | {r.tracebacks} | "
                     f"{mib(r.rss_before_mib)} / {mib(r.rss_after_mib)} | {r.verdict} | "
                     f"{'; '.join(r.notes + r.problems)} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help=f"comma-separated among {', '.join(SCENARIOS)}")
    parser.add_argument("--overload-s", type=float, default=60.0, help="how long the 10x overload lasts")
    parser.add_argument("--json", action="store_true", help="also one JSON line per scenario on stderr")
    parser.add_argument("--markdown", action="store_true", help="also the table in Markdown, on stdout")
    sys.exit(asyncio.run(main(parser.parse_args())))
