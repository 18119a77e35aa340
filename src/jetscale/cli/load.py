"""``jetscale load``: drive an inference server with open-loop, closed-loop or replayed traffic.

The flags are taken as typed and validated by ``jetscale.load.config.parse_options``, so that every bad
value is one line naming the flag (exit status 2). The run itself happens in a separate generator
process (``jetscale.load.runner``, locust under gevent); this command prints the summary and writes the
reports. See docs/load.md.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

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
    model: Annotated[str, typer.Option("--model", help="OpenAI APIs: the model name to send.")] = "jetscale",
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="OpenAI APIs: stream the response.")] = True,
    ignore_eos: Annotated[
        bool, typer.Option("--ignore-eos/--no-ignore-eos", help="OpenAI APIs: send vLLM's ignore_eos.")
    ] = False,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a target that is not on loopback.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No live progress.")] = False,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Write report.html with plots.")] = True,
) -> None:
    """Send inference load to a JetStream (HTTP or gRPC) or OpenAI-compatible server and report on it.

    Example: jetscale load --target http://127.0.0.1:9000 --rate 20 --shape diurnal --duration 300 --out DIR
    """
    from jetscale.load.config import parse_options
    from jetscale.load.launch import run_load
    from jetscale.load.report import render_summary

    config = parse_options(
        target=target, api=api, out_dir=out, rate=rate, shape=shape, users=users, think_time=think_time,
        think=think, ramp_up=ramp_up, trace=trace, trace_speed=trace_speed, workload=workload, duration=duration,
        max_requests=max_requests, slo=slo, seed=seed, interval=interval, timeout=timeout, drain=drain,
        max_in_flight=max_in_flight, model=model, stream=stream, ignore_eos=ignore_eos,
        allow_remote=allow_remote, quiet=quiet, html=html,
    )  # fmt: skip
    result = run_load(config)
    console = Console(highlight=False)
    console.print(render_summary(config, result.summary, result.info))
    console.print(
        f"reports in {result.out_dir}/ (summary.json, requests.csv, timeseries.csv"
        f"{', report.html' if config.html else ''})"
    )


def register(app: typer.Typer) -> None:
    """Add ``load`` to the ``jetscale`` app."""
    app.command("load", help=f"Send inference load and report latency, throughput and SLOs. e.g. {_EXAMPLE}")(
        load_command
    )
