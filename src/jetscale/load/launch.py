"""Running a load test from the CLI process: check, start the generator process, analyse, report.

``run_load`` is what ``jetscale load`` calls with a validated ``LoadConfig``:

1. build the plan here too (this reads the workload, shape and trace files, so a bad file is a
   ``ConfigError`` before anything starts), check the gRPC stubs, refuse non-loopback targets unless
   ``--allow-remote`` (names are resolved), and connect once to the target (unreachable: ``ConfigError``);
2. write ``OUT/config.json`` and run ``python -m jetscale.load.runner`` on it, in its own process
   because locust patches its process with gevent; its output (live progress) goes to our terminal;
3. read the raw records it wrote and write the summary, CSVs and report (``jetscale.load.report``).

Ctrl-C: the generator runs in its own session, so the signal reaches this process only; the first is
passed on (the generator stops sending, waits for nothing, writes what it has, and ``run.json`` says
``"ended": "interrupted"``); the reports are then written as usual from the partial records. A second
Ctrl-C kills the generator and exits at once (status 130).

This process never imports locust or gevent.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jetscale.errors import ConfigError, ServingError
from jetscale.load.config import LoadConfig, Mode, build_plan, is_loopback_literal
from jetscale.load.protocol import Api
from jetscale.load.records import Records
from jetscale.load.runner import ERROR_FILE, RAW_RECORDS, RUN_INFO
from jetscale.load.stats import Summary, summarize

__all__ = ["LoadResult", "analyse", "check_target", "read_lines", "run_load"]

_CONNECT_TIMEOUT_S = 3.0


def read_lines(path: str) -> list[str]:
    """The lines of a workload, shape or trace file; a missing or unreadable file is a ``ConfigError``."""
    try:
        return Path(path).read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"cannot read {path!r}: not UTF-8 text") from None


def check_target(config: LoadConfig) -> None:
    """Refuse targets off loopback (unless allowed) and targets that do not accept a TCP connection."""
    host, port = config.target.host, config.target.port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(
            f"'--target' {config.target.url} is unreachable: cannot resolve {host!r} ({exc.strerror})"
        ) from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if not config.allow_remote and not all(is_loopback_literal(a.split("%")[0]) for a in addresses):
        raise ConfigError(
            f"'--target' {host} resolves to {', '.join(addresses)}, not loopback; pass '--allow-remote' to load it"
        )
    errors: list[str] = []
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(_CONNECT_TIMEOUT_S)
            try:
                sock.connect(address)
                return
            except OSError as exc:
                errors.append(exc.strerror or type(exc).__name__)
    raise ConfigError(f"'--target' {config.target.url} is unreachable: {errors[0] if errors else 'no address'}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadResult:
    summary: Summary
    out_dir: Path
    info: dict[str, object]

    @property
    def interrupted(self) -> bool:
        """Stopped by Ctrl-C: the summary covers the requests sent until then."""
        return self.info.get("ended") == "interrupted"


def analyse(config: LoadConfig, out: Path) -> tuple[Summary, Records, dict[str, object]]:
    """The summary of a finished run from the raw files its generator wrote in ``out``."""
    try:
        with np.load(out / RAW_RECORDS) as data:
            columns = {name: data[name] for name in data.files}
        info = json.loads((out / RUN_INFO).read_text())
    except (OSError, ValueError) as exc:
        raise ServingError(f"the load generator left no readable results in {out}: {exc}") from None
    records = Records.from_columns(columns)
    summary = summarize(
        records,
        elapsed_s=float(info["elapsed_s"]),
        interval_s=config.interval_s,
        mode=config.mode.value,
        planned_s=columns["planned_s"] if config.mode is not Mode.CLOSED else None,
        slos=config.slos,
        cpu_saturated=bool(info.get("cpu_saturated", False)),
    )
    return summary, records, info


EXIT_INTERRUPTED = 130


def _generator(config_path: Path) -> int:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jetscale.load.runner", str(config_path)], env=env, start_new_session=True
    )
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)  # it stops sending and writes what it has

    def now(signum: int, frame: object) -> None:  # a second Ctrl-C: stop everything at once
        proc.kill()
        os.write(2, b"\njetscale load: interrupted again: exiting now\n")
        os._exit(EXIT_INTERRUPTED)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, now)  # until run_load returns (it restores the handler)
    return proc.wait()


def run_load(config: LoadConfig) -> LoadResult:
    """Check, run and analyse one load test; the report files are written to ``config.out_dir``."""
    from jetscale.load.report import write_outputs

    build_plan(config, read_lines)
    if config.api is Api.JETSTREAM_GRPC:
        from jetscale.load.grpc_client import check_stubs

        check_stubs()
    check_target(config)
    out = Path(config.out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"'--out' {str(out)!r} cannot be created: {exc.strerror or exc}") from None
    for stale in (RAW_RECORDS, RUN_INFO, ERROR_FILE):
        (out / stale).unlink(missing_ok=True)
    config_path = out / "config.json"
    config_path.write_text(config.to_json())
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        status = _generator(config_path)
        error_path = out / ERROR_FILE
        if error_path.exists():
            error = json.loads(error_path.read_text())
            raise (ConfigError if error.get("kind") == "config" else ServingError)(str(error.get("message")))
        if status != 0:
            raise ServingError(f"the load generator exited with status {status}")
        summary, records, info = analyse(config, out)
        write_outputs(config, summary, records, info, out)
    finally:
        if main_thread and previous is not None:
            signal.signal(signal.SIGINT, previous)
    return LoadResult(summary=summary, out_dir=out, info=info)
