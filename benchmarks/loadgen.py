"""How much load can `jetscale load` send from one core, beside a plain locust FastHttpUser?

A trivial server (asyncio, raw HTTP/1.1 keep-alive, one 1-token JetStream response per request, no delay)
runs pinned to one core; each load generator runs pinned to the other core, one after the other:

1. plain locust: ``FastHttpUser`` POSTing ``/v1/generate`` with no wait (closed loop), N users;
2. ``jetscale load --users N`` (closed loop, same N): locust underneath, plus streaming TTFT, token
   counts, one record per request;
3. ``jetscale load --rate R`` (open loop): the highest R, found by a sweep, at which the generator kept
   up (its own verdict: at most 1% of requests sent >10 ms late, none unsent) and every request succeeded.

Other processes on the machine steal time from both, so each closed-loop measurement is repeated
``--rounds`` times, alternating, and the best round of each is kept (interference only ever lowers a
rate); both count requests sent after a one-second warm-up. Prints one table.
Goal: jetscale's closed-loop rate >= 0.8 x plain locust's.
Usage: ``.venv/bin/python benchmarks/loadgen.py [--seconds 8] [--users 32]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BODY = b'{"streamContent": {"samples": [{"text": " ba", "tokenIds": [5]}]}}{"streamContent": {"samples": [{}]}}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


class _Trivial(asyncio.Protocol):
    """Answers every complete request on a keep-alive connection with the same response."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                length = int(head[at + 15 :].split(b"\r\n", 1)[0])
            end = head_end + 4 + length
            if len(self.buf) < end:
                return
            self.buf = self.buf[end:]
            self.transport.write(RESPONSE)  # type: ignore[attr-defined]


def serve(port: int) -> None:
    os.sched_setaffinity(0, {1})
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(_Trivial, "127.0.0.1", port, backlog=1024))
    try:
        loop.run_forever()
    finally:
        server.close()


def plain_locust(port: int, users: int, seconds: float) -> None:
    """One run of plain locust; prints requests/s as JSON."""
    os.sched_setaffinity(0, {0})
    import gevent
    from locust import FastHttpUser, task
    from locust.env import Environment

    class Plain(FastHttpUser):
        host = f"http://127.0.0.1:{port}"

        @task
        def generate(self) -> None:
            self.client.post("/v1/generate", json={"max_tokens": 1, "text_content": {"text": "the and for are"}})

    env = Environment(user_classes=[Plain])
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=users)
    gevent.sleep(1.0)  # warm-up: connections open
    start_n, start = env.stats.total.num_requests, time.perf_counter()
    gevent.sleep(seconds)
    n, elapsed = env.stats.total.num_requests - start_n, time.perf_counter() - start
    runner.quit()
    print(json.dumps({"rps": n / elapsed, "failures": env.stats.total.num_failures}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pinned() -> None:
    os.sched_setaffinity(0, {0})


def jetscale(port: int, flags: list[str], out: Path) -> dict[str, object]:
    cmd = [
        sys.executable,
        "-c",
        "from jetscale.cli import main; main()",
        "load",
        "--target",
        f"http://127.0.0.1:{port}",
    ]
    cmd += ["--quiet", "--no-html"]
    cmd += ["--workload", "fixed:input=4,output=1", "--interval", "1s", "--drain", "5s", "--out", str(out), *flags]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, preexec_fn=_pinned, cwd=ROOT)
    doc = json.loads((out / "summary.json").read_text())
    run, summary = doc["run"], doc["summary"]
    import numpy as np

    with np.load(out / "records.npz") as records:
        sent_s = records["sent_s"]
    warm = (sent_s >= 1.0) & (sent_s < run["sending_s"])
    return {
        "sent_rps": float(np.count_nonzero(warm)) / max(run["sending_s"] - 1.0, 1e-9),
        "ok_rps": summary["ok"] / summary["elapsed_s"],
        "kept_up": summary["generator"]["kept_up"],
        "late_p99_ms": (summary["generator"]["lateness"]["p99_s"] or 0.0) * 1000,
        "cpu": run["cpu_share"],
        "errors": summary["failed"] + summary["unfinished"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("_role", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._role[:1] == ["_serve"]:
        serve(int(args._role[1]))
        return
    if args._role[:1] == ["_plain"]:
        plain_locust(int(args._role[1]), args.users, args.seconds)
        return
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("needs 2 cores: one for the server, one for the load generator")
    port = _free_port()
    server = subprocess.Popen([sys.executable, __file__, "_serve", str(port)])
    try:
        time.sleep(1.0)
        rows: list[tuple[str, str, str, str]] = []
        plain_runs: list[float] = []
        closed_runs: list[dict[str, object]] = []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.rounds):
                plain_cmd = [sys.executable, __file__, "--users", str(args.users), "--seconds", str(args.seconds)]
                done = subprocess.run([*plain_cmd, "_plain", str(port)], check=True, capture_output=True, text=True)
                plain_runs.append(float(json.loads(done.stdout)["rps"]))
                closed_runs.append(
                    jetscale(port, ["--users", str(args.users), "--duration", f"{args.seconds}s"], Path(tmp))
                )
                print(
                    f"  round: plain {plain_runs[-1]:.0f}/s, jetscale {float(closed_runs[-1]['sent_rps']):.0f}/s",
                    file=sys.stderr,
                )
            plain = {"rps": max(plain_runs)}
            closed = max(closed_runs, key=lambda r: float(r["sent_rps"]))
            rows.append(
                (
                    f"plain locust FastHttpUser, {args.users} users",
                    f"{plain['rps']:.0f}",
                    "1.00",
                    f"best of {args.rounds}",
                )
            )
            ratio = float(closed["sent_rps"]) / plain["rps"]
            rows.append(
                (
                    f"jetscale load --users {args.users}",
                    f"{float(closed['sent_rps']):.0f}",
                    f"{ratio:.2f}",
                    f"best of {args.rounds}, cpu {float(closed['cpu']):.0%}",
                )
            )
            best: dict[str, object] | None = None
            best_rate = 0
            rate = max(250, int(plain["rps"] * 0.1) // 250 * 250)
            while rate <= plain["rps"] * 1.5:
                result = jetscale(port, ["--rate", str(rate), "--duration", f"{args.seconds}s"], Path(tmp))
                ok = bool(result["kept_up"]) and result["errors"] == 0
                print(
                    f"  open loop {rate} rps: sent {float(result['sent_rps']):.0f}/s, kept up {result['kept_up']}, "
                    f"late p99 {float(result['late_p99_ms']):.1f} ms, cpu {float(result['cpu']):.0%}",
                    file=sys.stderr,
                )
                if not ok:
                    break
                best, best_rate = result, rate
                rate += max(250, int(plain["rps"] * 0.1) // 250 * 250)
            if best is not None:
                rows.append(
                    (
                        "jetscale load --rate R (open loop, kept up)",
                        f"{best_rate}",
                        f"{best_rate / plain['rps']:.2f}",
                        f"late p99 {float(best['late_p99_ms']):.1f} ms, cpu {float(best['cpu']):.0%}",
                    )
                )
    finally:
        server.terminate()
        server.wait()
    width = max(len(r[0]) for r in rows)
    print(f"{'generator (one core; trivial server on the other)':<{width}}  req/s   vs plain  notes")
    for name, rps, ratio_text, notes in rows:
        print(f"{name:<{width}}  {rps:>6}  {ratio_text:>8}  {notes}")


if __name__ == "__main__":
    main()
