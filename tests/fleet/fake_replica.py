"""A stand-in replica whose metrics a test scripts: ``python fake_replica.py NAME VALUES.json READY_AFTER_S``.

It behaves like ``jetscale serve`` where the fleet looks: prints ``serving fake as NAME: http=HOST:PORT``
once listening, answers ``/healthz/ready`` with 200 after ``READY_AFTER_S`` wall seconds (503 before),
serves ``/metrics`` with ``jetstream_prefill_backlog_size`` read from the JSON file at every scrape
(``{"NAME": value, "*": default}``), answers ``POST /v1/completions`` after a short delay (requests in
flight finish on SIGTERM, new ones get 503, as a draining server does), and exits 0 once drained.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

from aiohttp import web


def main() -> None:
    name, values_path, ready_after = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
    started = time.monotonic()
    state = {"draining": False, "in_flight": 0}

    def value() -> float:
        try:
            values = json.loads(values_path.read_text())
        except (OSError, ValueError):
            values = {}
        return float(values.get(name, values.get("*", 0.0)))

    async def ready(_: web.Request) -> web.Response:
        ok = time.monotonic() - started >= ready_after and not state["draining"]
        return web.json_response({"ready": ok}, status=200 if ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        text = (
            "# TYPE jetstream_prefill_backlog_size gauge\n"
            f'jetstream_prefill_backlog_size{{id="{name}"}} {value()!r}\n'
            "# TYPE jetstream_slots_used_percentage gauge\n"
            f'jetstream_slots_used_percentage{{id="{name}",idx="0"}} 0.5\n'
        )
        return web.Response(text=text, content_type="text/plain")

    async def complete(request: web.Request) -> web.Response:
        if state["draining"]:
            return web.json_response({"error": {"message": "draining"}}, status=503)
        await request.read()
        state["in_flight"] += 1
        try:
            await asyncio.sleep(0.05)
            return web.json_response({"replica": name})
        finally:
            state["in_flight"] -= 1

    async def run() -> None:
        app = web.Application()
        app.router.add_get("/healthz/ready", ready)
        app.router.add_get("/metrics", metrics)
        app.router.add_post("/v1/completions", complete)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(f"serving fake as {name}: http=127.0.0.1:{port} grpc=off", flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        state["draining"] = True
        while state["in_flight"]:
            await asyncio.sleep(0.01)
        await runner.cleanup()

    asyncio.run(run())


if __name__ == "__main__":
    main()
