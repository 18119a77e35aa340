"""`jetscale load` end to end, in subprocesses (locust patches its process with gevent, so never here).

Two servers on loopback: a tiny aiohttp server defined in this file (run as a script: a prefill delay,
streamed tokens, a 503 every Nth request, and a /stats count of what it received), and `jetscale serve`
itself, whose Prometheus metrics the client's counts and latencies are checked against.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
_CLI = [sys.executable, "-c", "from jetscale.cli import main; main()"]


def _load(*flags: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_CLI, "load", *flags], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def _summary(out: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return doc


def _get(url: str) -> str:
    from urllib.request import urlopen

    with urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the tiny server ----------------------------------------------------------------------------------------
def _tiny_server(port: int, delay_s: float, fail_every: int) -> None:
    import asyncio

    from aiohttp import web

    seen = {"requests": 0, "failed": 0}

    async def generate(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen["requests"] += 1
        if fail_every and seen["requests"] % fail_every == 0:
            seen["failed"] += 1
            return web.json_response({"error": "overloaded"}, status=503)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await asyncio.sleep(delay_s)  # "prefill"
        for _ in range(int(body["max_tokens"])):
            chunk = {"streamContent": {"samples": [{"text": " ba", "tokenIds": [5]}]}}
            await response.write(json.dumps(chunk, indent=2).encode())
            await asyncio.sleep(0.001)
        await response.write(b'{"streamContent": {"samples": [{}]}}')
        await response.write_eof()
        return response

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(seen)

    app = web.Application()
    app.router.add_post("/v1/generate", generate)
    app.router.add_get("/stats", stats)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _wait_for_port(port: int, proc: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def _start_tiny(delay_s: float, fail_every: int) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "serve", str(port), str(delay_s), str(fail_every)], cwd=ROOT)
    try:
        _wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def tiny() -> Iterator[str]:
    yield from _start_tiny(0.05, 7)  # 50 ms to the first token; every 7th request gets a 503


@pytest.fixture
def slow() -> Iterator[str]:
    yield from _start_tiny(1.5, 0)  # 1.5 s to the first token


def test_open_loop_against_a_tiny_server(tiny: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = _load(
        "--target", tiny, "--rate", "40", "--duration", "2s", "--workload", "fixed:input=8,output=4",
        "--interval", "0.5s", "--slo", "ttft_p95=10s", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = _summary(out)
    s, run = doc["summary"], doc["run"]
    seen = json.loads(_get(f"{tiny}/stats"))
    assert s["sent"] == seen["requests"] == run["locust_requests"] == run["planned"]
    assert s["failed"] == seen["failed"] == s["errors"].get("http 503", 0) == run["locust_failures"]
    assert s["ok"] == s["sent"] - s["failed"] - s["unfinished"]
    assert s["ttft"]["p50_s"] >= 0.05  # the server waits 50 ms before its first token
    assert s["output_tps"] * s["elapsed_s"] == pytest.approx(4 * s["ok"])
    assert s["slos"][0]["met"] is True
    lines = (out / "requests.csv").read_text().splitlines()
    assert len(lines) == s["sent"] + 1 and lines[0].startswith("scheduled_s,sent_s,lateness_s,ttft_s")
    assert (out / "timeseries.csv").read_text().startswith("start_s,width_s,scheduled_rps")
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    assert {p.name for p in (out / "plots").iterdir()} == {"latency.png", "throughput.png", "errors.png"}


def test_closed_loop_stops_at_its_request_cap(tiny: str, tmp_path: Path) -> None:
    done = _load(
        "--target", tiny, "--users", "3", "--think-time", "10ms", "--max-requests", "20",
        "--workload", "fixed:input=8,output=2", "--out", str(tmp_path), "--quiet", "--no-html",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    s = _summary(tmp_path)["summary"]
    assert s["sent"] == 20 == json.loads(_get(f"{tiny}/stats"))["requests"]
    assert s["generator"]["mode"] == "closed"
    assert "closed loop" in done.stdout


@pytest.mark.parametrize(
    ("flags", "outcome"),
    [
        pytest.param(["--timeout", "0.3s"], "timeout", id="timeout"),
        pytest.param(["--drain", "0s"], "unfinished", id="cut-off-at-the-end"),
    ],
)
def test_slow_responses_end_as_timeouts_or_unfinished(
    slow: str, tmp_path: Path, flags: list[str], outcome: str
) -> None:
    done = _load(
        "--target", slow, "--rate", "10", "--duration", "0.5s", "--workload", "fixed:input=8,output=2",
        "--out", str(tmp_path), "--quiet", "--no-html", *flags,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    s = _summary(tmp_path)["summary"]
    assert s["sent"] > 0 and s["ok"] == 0
    assert s["errors"] == {outcome: s["sent"]}
    assert (s["unfinished"] == s["sent"]) is (outcome == "unfinished")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(["--rate", "2", "--duration", "1s"], "is unreachable", id="unreachable"),
        pytest.param(["--rate", "lots", "--duration", "1s"], "'--rate' must be a number", id="bad-rate"),
        pytest.param(["--users", "2"], "every run needs a bound", id="unbounded"),
    ],
)
def test_bad_flags_and_unreachable_targets_give_one_clear_line(flags: list[str], message: str) -> None:
    done = _load("--target", f"http://127.0.0.1:{_free_port()}", "--quiet", *flags)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


# --- against `jetscale serve` ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def serve() -> Iterator[dict[str, str]]:
    cmd = [*_CLI, "serve", "--port", "0", "--grpc-port", "0", "--model-load-s", "0", "--speed", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        assert "http" in fields and "grpc" in fields, line
        yield {"http": f"http://{fields['http']}", "grpc": fields["grpc"]}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def _metrics(base: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(_get(f"{base}/metrics")):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def _delta(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


def test_client_and_server_agree_on_counts_tokens_and_latency(serve: dict[str, str], tmp_path: Path) -> None:
    before = _metrics(serve["http"])
    done = _load(
        "--target", serve["http"], "--rate", "20", "--duration", "3s",
        "--workload", "uniform:input=16..64,output=8..24",
        "--interval", "1s", "--out", str(tmp_path), "--quiet", "--no-html", "--seed", "3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    after = _metrics(serve["http"])
    doc = _summary(tmp_path)
    s = doc["summary"]
    assert s["ok"] == s["sent"] > 0 and s["failed"] == s["unfinished"] == 0
    assert _delta(before, after, "jetstream_request_success_count_total") == s["ok"]
    columns = (tmp_path / "requests.csv").read_text().splitlines()
    header = columns[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in columns[1:]]
    assert _delta(before, after, "jetstream_request_input_length_sum") == sum(int(r["input_tokens"]) for r in rows)
    assert _delta(before, after, "jetstream_request_output_length_sum") == sum(int(r["output_tokens"]) for r in rows)
    # Latency: the server's arrival-to-completion time is queue + TTFT (from prefill start) + time per request
    # (from the first token); the client adds HTTP and scheduling on top. Tolerance: 10% + 50 ms of the mean.
    server_s = (
        sum(
            _delta(before, after, f"jetstream_{name}_sum")
            for name in ("queue_duration", "time_to_first_token", "time_per_request")
        )
        / s["ok"]
    )
    assert abs(s["e2e"]["mean_s"] - server_s) <= 0.1 * server_s + 0.05
    # Open loop: everything planned was sent, interval by interval close to the schedule.
    assert s["sent"] == doc["run"]["planned"]
    scheduled = sum(iv["scheduled_rps"] * iv["width_s"] for iv in s["intervals"])
    off = sum(abs(iv["sent_rps"] - iv["scheduled_rps"]) * iv["width_s"] for iv in s["intervals"])
    assert off <= 0.08 * scheduled


@pytest.mark.parametrize(
    ("api", "extra"),
    [
        pytest.param("jetstream-grpc", [], id="grpc"),
        pytest.param("openai-chat", [], id="openai-chat-stream"),
        pytest.param("openai", ["--no-stream"], id="openai-json"),
    ],
)
def test_every_api_reaches_jetscale_serve(serve: dict[str, str], tmp_path: Path, api: str, extra: list[str]) -> None:
    target = serve["grpc"] if api == "jetstream-grpc" else serve["http"]
    before = _metrics(serve["http"])
    done = _load(
        "--target", target, "--api", api, "--users", "2", "--max-requests", "6",
        "--workload", "fixed:input=24,output=5", "--out", str(tmp_path), "--quiet", "--no-html", *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    after = _metrics(serve["http"])
    s = _summary(tmp_path)["summary"]
    assert s["ok"] == 6 == _delta(before, after, "jetstream_request_success_count_total")
    assert s["output_tps"] * s["elapsed_s"] == pytest.approx(
        _delta(before, after, "jetstream_request_output_length_sum")
    )
    assert (s["ttft"]["count"] == 0) is ("--no-stream" in extra)  # a JSON response has no first token to time


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    _tiny_server(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
