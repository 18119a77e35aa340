"""The load generator process: ``python -m jetscale.load.runner OUT/config.json``.

``jetscale load`` validates its flags, then starts this module in a fresh Python process, because
locust monkey-patches the whole process with gevent on import; no other jetscale process imports
locust. This process imports locust first, builds the plan from the config (the same seeded plan the
CLI validated), runs it with locust users until the run's bound, drains the requests still running
for at most ``--drain``, and writes the raw results for the CLI to analyse:

- ``records.npz``: one row per request sent (``jetscale.load.records.COLUMNS``) and ``planned_s``;
- ``run.json``: elapsed time, CPU use, locust's own request counts, how the run ended;
- ``error.json`` (exit status 3) when it could not run: ``{"kind": "config"|"serving", "message": ...}``.

It shows live progress while it runs (a rich table on a terminal, a line every 10 s otherwise).
"""

from __future__ import annotations

import json
import logging
import math
import resource
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["ERROR_FILE", "RAW_RECORDS", "RUN_INFO", "main"]

RAW_RECORDS = "records.npz"
RUN_INFO = "run.json"
ERROR_FILE = "error.json"
_PLAIN_PROGRESS_S = 10.0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m jetscale.load.runner OUT/config.json", file=sys.stderr)
        return 2
    import locust  # noqa: F401  - first: gevent patches the process before any socket or thread exists

    from jetscale.errors import ConfigError, JetscaleError
    from jetscale.load.config import LoadConfig

    config = LoadConfig.from_json(Path(args[0]).read_text())
    out = Path(config.out_dir)
    try:
        _run(config, out)
    except JetscaleError as exc:
        kind = "config" if isinstance(exc, ConfigError) else "serving"
        (out / ERROR_FILE).write_text(json.dumps({"kind": kind, "message": str(exc)}))
        return 3
    except Exception as exc:
        (out / ERROR_FILE).write_text(json.dumps({"kind": "serving", "message": f"the load generator failed: {exc!r}"}))
        raise
    return 0


FALLBACK_MODEL = "jetscale"  # what a server that lists no model is sent (a JetStream server takes any name)


def served_model(url: str, *, attempts: int = 20, wait_s: float = 0.5) -> str:
    """The first model ``url`` lists at ``/v1/models``, as OpenAI clients (guidellm, vLLM's benchmarks) ask
    it; a server that is not ready yet (503) is asked again, up to ``attempts`` times. ``FALLBACK_MODEL``
    when it lists none or has no such route."""
    import json
    import time
    import urllib.error
    import urllib.request

    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/v1/models", timeout=2.0) as response:
                data = json.loads(response.read())
            models = data.get("data") if isinstance(data, dict) else None
            if isinstance(models, list) and models and isinstance(models[0], dict):
                return str(models[0].get("id") or FALLBACK_MODEL)
            return FALLBACK_MODEL
        except urllib.error.HTTPError as exc:
            if exc.code not in (502, 503):
                return FALLBACK_MODEL
        except (OSError, ValueError):
            pass
        time.sleep(wait_s)
    return FALLBACK_MODEL


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed * 2 + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        top = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))


def _run(config: Any, out: Path) -> None:
    import signal

    import gevent
    import gevent.event
    import numpy as np
    from locust.env import Environment

    from jetscale.load.config import Mode, build_plan
    from jetscale.load.launch import read_lines
    from jetscale.load.protocol import Api
    from jetscale.load.users import Context, make_user_class

    logging.getLogger().setLevel(logging.ERROR)  # locust's warnings: the summary reports CPU saturation itself
    if config.api in (Api.OPENAI, Api.OPENAI_CHAT) and not config.model:
        import dataclasses

        config = dataclasses.replace(config, model=served_model(config.target.url))
    _raise_fd_limit(config.max_in_flight if config.mode is not Mode.CLOSED else config.users)
    plan = build_plan(config, read_lines)
    env = Environment(host=config.target.url)
    ctx = Context(config, plan, env)
    stub = channel = None
    if config.api is Api.JETSTREAM_GRPC:
        from jetscale.load.grpc_client import make_stub

        stub, channel = make_stub(config.target.url)
    env.user_classes = [make_user_class(ctx, stub)]
    runner = env.create_local_runner()
    n_users = config.users if config.mode is Mode.CLOSED else 1
    progress = None if config.quiet else gevent.spawn(_progress, ctx)
    cpu0 = time.process_time()
    ctx.t0 = time.perf_counter()
    runner.start(n_users, spawn_rate=max(n_users, 1))
    ended = "completed"
    # Ctrl-C as a flag the hub sets: a KeyboardInterrupt raised inside whichever request greenlet happens to
    # run would end that greenlet with a printed traceback instead of stopping the run
    interrupted = gevent.event.Event()
    on_sigint = gevent.signal_handler(signal.SIGINT, interrupted.set)
    try:
        deadline = config.duration_s if config.duration_s is not None else math.inf
        while (not ctx.sending_done and not interrupted.is_set()
               and not (config.mode is Mode.CLOSED and ctx.now() >= deadline)):  # fmt: skip
            gevent.sleep(0.02)
        ctx.stopping = True
        sending_s = ctx.now()
        drain_end = time.perf_counter() + config.drain_s
        while ctx.in_flight > 0 and time.perf_counter() < drain_end and not interrupted.is_set():
            gevent.sleep(0.01)
        if interrupted.is_set():
            ended = "interrupted"
        elif ctx.in_flight:
            ended = "drain timeout"
    except KeyboardInterrupt:
        ctx.stopping = True
        sending_s = ctx.now()
        ended = "interrupted"
    finally:
        on_sigint.cancel()
    elapsed = ctx.now()
    cpu_s = time.process_time() - cpu0
    ctx.pool.kill(block=True)
    runner.quit()
    if progress is not None:
        progress.kill(block=True)
    if channel is not None:
        channel.close()
    records = ctx.records.snapshot()
    arrays: dict[str, Any] = {"planned_s": plan.times_s, **records.columns()}
    np.savez(out / RAW_RECORDS, **arrays)
    totals = env.stats.total
    info = {
        "mode": config.mode.value,
        "elapsed_s": elapsed,
        "sending_s": sending_s,
        "ended": ended,
        "cpu_s": cpu_s,
        "cpu_share": cpu_s / elapsed if elapsed > 0 else 0.0,
        "cpu_saturated": bool(runner.cpu_warning_emitted or (elapsed > 1 and cpu_s / elapsed > 0.9)),
        "in_flight_cap_waits": ctx.cap_waits,
        "locust_requests": totals.num_requests,
        "locust_failures": totals.num_failures,
        "planned": len(plan.times_s) if config.mode is not Mode.CLOSED else len(records),
        "shape": plan.shape.describe() if plan.shape is not None else None,
        "workload": plan.workload.describe(),
    }
    (out / RUN_INFO).write_text(json.dumps(info, indent=2))


def _progress(ctx: Any) -> None:
    import gevent
    import numpy as np
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    console = Console()
    config = ctx.config
    live = Live(console=console, auto_refresh=False, transient=False) if console.is_terminal else None
    last_rows, last_t, last_print = 0, 0.0, 0.0
    if live is not None:
        live.start()
    try:
        while True:
            gevent.sleep(1.0)
            now = ctx.now()
            rows = len(ctx.records)
            rate = (rows - last_rows) / max(now - last_t, 1e-9)
            ttft = np.array(ctx.tick) if ctx.tick else None
            ctx.tick = []
            # slices copy the live columns, which must stay resizable while other greenlets append
            sent = np.asarray(ctx.records.column("sent_s")[last_rows:rows], dtype=float)
            sched = np.asarray(ctx.records.column("scheduled_s")[last_rows:rows], dtype=float)
            late = sent - sched
            late = late[np.isfinite(late)]
            last_rows, last_t = rows, now
            bound = f"/{config.duration_s:g}s" if config.duration_s else ""
            cells = {
                "t": f"{now:.0f}s{bound}",
                "sent": f"{rows}",
                "sent/s": f"{rate:.1f}",
                "ok": f"{ctx.ok}",
                "errors": f"{ctx.failed}",
                "in flight": f"{ctx.in_flight}",
                "ttft p50/p95": (
                    f"{np.percentile(ttft, 50) * 1000:.0f}/{np.percentile(ttft, 95) * 1000:.0f} ms"
                    if ttft is not None
                    else "-"
                ),
                "late p99": f"{np.percentile(late, 99) * 1000:.1f} ms" if len(late) else "-",
            }
            if live is not None:
                table = Table(title=f"jetscale load -> {config.target.url} ({config.mode.value} loop)")
                for key in cells:
                    table.add_column(key, justify="right")
                table.add_row(*cells.values())
                live.update(table, refresh=True)
            elif now - last_print >= _PLAIN_PROGRESS_S:
                last_print = now
                print("  ".join(f"{k} {v}" for k, v in cells.items()), flush=True)
    finally:
        if live is not None:
            live.stop()


if __name__ == "__main__":
    sys.exit(main())
