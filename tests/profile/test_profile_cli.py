"""``jetscale profile`` from the outside: bad flags and unreachable servers are one line (exit 2); a
server that starts failing mid-profile stops it, and what was measured is kept and fitted.

The failing server is a fake (a few lines of aiohttp in a thread, on 127.0.0.1): JetStream's HTTP stream
with a prefill of 2 ms + 2 µs per prompt token and a 1 ms step, answering 500 after its first requests.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from jetscale.cli import main

Run = Callable[[list[str]], tuple[int, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def invoke(args: list[str]) -> tuple[int, str]:
        try:
            main(args)
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return invoke


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--api", "grpc"], "'--api' must be one of jetstream-http, jetstream-grpc, openai (got 'grpc')", id="api"
        ),
        pytest.param(["--target", "127.0.0.1:9"], "'--target' must be an http:// or https:// URL", id="scheme"),
        pytest.param(["--server-speed", "0"], "'--server-speed' must be a number > 0 (got 0.0)", id="speed"),
        pytest.param(["--max-concurrency", "0"], "'--max-concurrency' must be an integer >= 1 (got 0)", id="ceiling"),
        pytest.param(["--budget", "soon"], "--budget", id="budget"),
        pytest.param(["--api", "jetstream-grpc"], "'--target' for jetstream-grpc must be host:port", id="grpc-url"),
        pytest.param(["--metrics", "9100"], "'--metrics' must be an http:// or https:// URL", id="metrics"),
        pytest.param(["--replica", "nowhere.yaml"], "'--preset' and '--replica' must not both be given", id="both"),
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path, run: Run) -> None:
    base = ["profile", "--target", "http://127.0.0.1:9", "--preset", "v5e-8/llama2-7b", "--out", str(tmp_path)]
    code, output = run([*base, *args])
    assert code == 2, output
    assert message in output and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1


def test_no_chip_and_model_is_refused_naming_both_flags(tmp_path: Path, run: Run) -> None:
    code, output = run(["profile", "--target", "http://127.0.0.1:9", "--out", str(tmp_path)])
    assert code == 2 and "'--preset' or '--replica' must name the chip and model" in output


def test_an_unreachable_server_is_one_line_naming_the_url(tmp_path: Path, run: Run) -> None:
    code, output = run(["profile", "--target", "http://127.0.0.1:9", "--preset", "v5e-8/llama2-7b",
                         "--out", str(tmp_path), "--quiet"])  # fmt: skip
    assert code == 2, output
    assert "'--target' must be a server that answers (got 'http://127.0.0.1:9'" in output
    assert "Traceback" not in output


class _FailingServer:
    """A JetStream HTTP fake that answers ``healthy`` requests, then 500 to every one after."""

    def __init__(self, healthy: int) -> None:
        self.healthy = healthy
        self.seen = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen += 1
        if self.seen > self.healthy:
            return web.json_response({"error": {"message": "the accelerator fell over"}}, status=500)
        prompt = len(body["token_content"]["token_ids"])
        response = web.StreamResponse()
        await response.prepare(request)
        await asyncio.sleep(0.002 + 2e-6 * prompt)
        for k in range(body["max_tokens"]):
            if k:
                await asyncio.sleep(0.001)
            await response.write(json.dumps({"streamContent": {"samples": [{"tokenIds": [7]}]}}).encode())
        await response.write_eof()
        return response

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/generate", self._generate)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> _FailingServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def failing_server() -> Iterator[_FailingServer]:
    with _FailingServer(healthy=2 + 14 * 5 + 3) as server:  # warm-up, every prefill point, three decode waves
        yield server


def test_a_server_that_fails_midway_stops_the_profile_and_keeps_what_was_measured(
    failing_server: _FailingServer, tmp_path: Path, run: Run
) -> None:
    out = tmp_path / "prof"
    code, output = run(["profile", "--target", f"http://127.0.0.1:{failing_server.port}", "--preset",
                         "v5e-8/llama2-7b", "--out", str(out), "--quiet", "--max-concurrency", "8"])  # fmt: skip
    assert code == 0, output
    assert "stopped early: 3 requests failed in a row, the last: HTTP 500" in output
    points = json.loads((out / "points.json").read_text())
    assert len(points["prefill"]) == 14 and 1 <= len(points["decode"]) <= 3
    assert points["stopped"].startswith("3 requests failed in a row")
    profile = (out / "profile.yaml").read_text()
    assert "timing:" in profile and "stopped: '3 requests failed in a row" in profile
    assert (out / "report.html").is_file()
