"""``jetscale load``: drive an inference server with open-loop, closed-loop or replayed traffic.

The flags are taken as typed and validated by ``jetscale.load.config.parse_options``, so that every bad
value is one line naming the flag (exit status 2). The run itself happens in a separate generator
process (``jetscale.load.runner``, locust under gevent); this command prints the summary and writes the
reports.

Figures are wall-clock. Against a server whose time is compressed (``serve --speed 10``), pass
``--server-speed 10``: the summary then also gives them in the server's model time, labelled as such.
Ctrl-C stops the run: the reports cover the requests sent so far, ``OUT/partial.json`` says so
(``"partial": true``) and the exit status is 130; a second Ctrl-C exits at once. ``--json`` prints one
JSON document on stdout and nothing else. See docs/load.md.
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register"]

_EXAMPLE = (
    "jetscale load --target http://127.0.0.1:9000 --api jetstream-http --rate 20 --shape diurnal "
    "--duration 300 --workload sharegpt-like --slo ttft_p95=2s --out DIR"
)


def load_command(
    target: Annotated[str, typer.Option("--target", help="http://host:port (HTTP APIs) or host:port (gRPC).")],
    api: Annotated[str, typer.Option("--api", help="jetstream-http, jetstream-grpc, openai or openai-chat.")] = (
        "jetstream-http"
    ),
    rate: Annotated[str | None, typer.Option("--rate", metavar="RPS", help="Open loop: peak requests/s.")] = None,
    shape: Annotated[
        str | None,
        typer.Option(
            "--shape",
            metavar="SPEC",
            help="constant | step[:at=60s,base=0.25] | ramp[:base=0,end=300s] | spike[:at=,width=,base=] | "
            "diurnal[:period=300s,base=0.2] | csv:FILE (t,rps rows).",
        ),
    ] = None,
    users: Annotated[str | None, typer.Option("--users", metavar="N", help="Closed loop: concurrent users.")] = None,
    think_time: Annotated[
        str | None, typer.Option("--think-time", metavar="DURATION", help="Closed loop: pause between requests.")
    ] = None,
    think: Annotated[str, typer.Option("--think", help="Think time: fixed or exponential.")] = "fixed",
    ramp_up: Annotated[
        str | None, typer.Option("--ramp-up", metavar="DURATION", help="Closed loop: spread user starts.")
    ] = None,
    trace: Annotated[
        str | None, typer.Option("--trace", metavar="FILE", help="Replay a JSONL/CSV trace of (t, sizes).")
    ] = None,
    trace_speed: Annotated[
        str | None, typer.Option("--trace-speed", metavar="X", help="Replay X times faster.")
    ] = None,
    time_unit: Annotated[
        str, typer.Option("--time-unit", help="The trace's numeric times: auto (epoch ms detected), s or ms.")
    ] = "auto",
    workload: Annotated[
        str,
        typer.Option(
            "--workload",
            metavar="SPEC",
            help="sharegpt-like | openorca-like | fixed:input=N,output=M | uniform:input=A..B,output=C..D | "
            "lognormal:input_mean=,input_cv=,output_mean=,output_cv= | FILE.jsonl",
        ),
    ] = "sharegpt-like",
    duration: Annotated[str | None, typer.Option("--duration", metavar="DURATION", help="How long to send.")] = None,
    max_requests: Annotated[str | None, typer.Option("--max-requests", metavar="N", help="Send at most N.")] = None,
    slo: Annotated[
        str | None, typer.Option("--slo", metavar="SPEC", help="Targets such as ttft_p95=2s,e2e_p99=30s,tpot_p50=80ms.")
    ] = None,
    out: Annotated[str, typer.Option("--out", metavar="DIR", help="Where the reports go.")] = "load-report",
    seed: Annotated[str, typer.Option("--seed", help="Seed of arrivals, sizes and think times.")] = "0",
    interval: Annotated[str, typer.Option("--interval", metavar="DURATION", help="Time-series bucket.")] = "10s",
    timeout: Annotated[str, typer.Option("--timeout", metavar="DURATION", help="Per-request limit.")] = "300s",
    drain: Annotated[
        str, typer.Option("--drain", metavar="DURATION", help="How long to wait for requests still running.")
    ] = "30s",
    max_in_flight: Annotated[
        str, typer.Option("--max-in-flight", metavar="N", help="Open loop: most requests running at once.")
    ] = "4096",
    model: Annotated[
        str,
        typer.Option("--model", help="OpenAI APIs: the model name to send (default: the first at /v1/models)."),
    ] = "",
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="OpenAI APIs: stream the response.")] = True,
    ignore_eos: Annotated[
        bool, typer.Option("--ignore-eos/--no-ignore-eos", help="OpenAI APIs: send vLLM's ignore_eos.")
    ] = False,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a target that is not on loopback.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No live progress.")] = False,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Write report.html with plots.")] = True,
    server_speed: Annotated[
        float,
        typer.Option(
            "--server-speed",
            metavar="X",
            help="The server's time compression (serve/up --speed X): also report figures in its model time.",
        ),
    ] = 1.0,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document on stdout, nothing else.")] = False,
) -> None:
    """Send inference load to a JetStream (HTTP or gRPC) or OpenAI-compatible server and report on it.

    Example: jetscale load --target http://127.0.0.1:9000 --rate 20 --shape diurnal --duration 300 --out DIR
    """
    import json
    import math
    from dataclasses import asdict
    from pathlib import Path

    from jetscale.cli.interrupt import EXIT_INTERRUPTED, write_partial
    from jetscale.cli.output import make_console, print_json
    from jetscale.errors import ConfigError
    from jetscale.load.config import parse_options
    from jetscale.load.launch import run_load
    from jetscale.load.report import render_summary
    from jetscale.load.stats import in_model_time
    from jetscale.report.jsondoc import dumps

    config = parse_options(
        target=target, api=api, out_dir=out, rate=rate, shape=shape, users=users, think_time=think_time,
        think=think, ramp_up=ramp_up, trace=trace, trace_speed=trace_speed, time_unit=time_unit, workload=workload,
        duration=duration, max_requests=max_requests, slo=slo, seed=seed, interval=interval, timeout=timeout,
        drain=drain, max_in_flight=max_in_flight, model=model, stream=stream, ignore_eos=ignore_eos,
        allow_remote=allow_remote, quiet=quiet or json_out, html=html,
    )  # fmt: skip
    if not (math.isfinite(server_speed) and server_speed > 0):  # before the run, not after it
        raise ConfigError(f"'--server-speed' must be > 0 (got {server_speed:g})")
    result = run_load(config)
    model_s = in_model_time(result.summary, server_speed) if server_speed != 1 else None
    time_base = {"figures": "wall clock", "server_speed": server_speed, "model_time": model_s}
    summary_path = Path(result.out_dir) / "summary.json"
    saved = json.loads(summary_path.read_text(encoding="utf-8"))
    summary_path.write_text(dumps({**saved, "time_base": time_base}), encoding="utf-8")
    console = make_console(stderr=json_out)
    console.print(render_summary(config, result.summary, result.info))
    if model_s is not None:
        console.print(
            f"model time (server at --speed {server_speed:g}; the figures above are wall clock): "
            f"{model_s['request_rps']:.2f} req/s, {model_s['output_tps']:.0f} output tok/s, "
            f"TTFT p50/p95/p99 {_ms(model_s['ttft_p50_s'])}/{_ms(model_s['ttft_p95_s'])}/{_ms(model_s['ttft_p99_s'])}, "
            f"E2E p50/p95/p99 {_ms(model_s['e2e_p50_s'])}/{_ms(model_s['e2e_p95_s'])}/{_ms(model_s['e2e_p99_s'])}, "
            f"{model_s['elapsed_s']:.0f} model s",
            soft_wrap=True,
        )
    else:
        console.print(
            "figures are wall clock; against a server run with --speed X, pass --server-speed X for its model time"
        )
    console.print(
        f"reports in {result.out_dir}/ (summary.json, requests.csv, timeseries.csv"
        f"{', report.html' if config.html else ''})"
    )
    partial = None
    if result.interrupted:
        s = result.summary
        partial = write_partial(
            Path(result.out_dir),
            {"command": "load", "ended": "interrupted", "elapsed_s": s.elapsed_s, "sent": s.sent, "ok": s.ok,
             "failed": s.failed, "unfinished": s.unfinished, "reports": str(result.out_dir)},
        )  # fmt: skip
        console.print(
            f"interrupted after {s.elapsed_s:.1f} s: {s.sent} requests sent ({s.ok} ok); the reports cover them; "
            f"partial results in {partial}",
            soft_wrap=True,
        )
    if json_out:
        print_json(
            {
                "command": "load",
                "partial": result.interrupted,
                "out_dir": str(result.out_dir),
                "run": result.info,
                "summary": {**asdict(result.summary), "slos_met": result.summary.slos_met},
                "time_base": time_base,
            }
        )
    if partial is not None:
        raise typer.Exit(EXIT_INTERRUPTED)


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.0f}ms" if seconds == seconds else "-"


def register(app: typer.Typer) -> None:
    """Add ``load`` to the ``jetscale`` app."""
    app.command("load", help=f"Send inference load and report latency, throughput and SLOs. e.g. {_EXAMPLE}")(
        load_command
    )
