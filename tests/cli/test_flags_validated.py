"""Every flag of ``jetscale serve`` and ``jetscale up`` is checked before anything starts: a bad value, an
address that cannot be listened on, a ``--log-dir`` that cannot be made, or a manifest past the parser's
limits is one line naming the flag (or the file) and exit status 2, never a traceback.

In-process cases go through typer's ``CliRunner`` (the ``ConfigError`` is what ``jetscale.cli.main``
prints); the cases about the one line and the exit status run the real command as a process.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import typer
from typer.testing import CliRunner

from jetscale.cli import serve as serve_cli
from jetscale.cli import up as up_cli
from jetscale.errors import ConfigError
from jetscale.fleet import ServeCommand
from jetscale.server.config import ListenError

ROOT = Path(__file__).resolve().parents[2]
HPA = str(ROOT / "examples" / "hpa" / "backlog.yaml")  # minReplicas 1, maxReplicas 16
LAUNCH = [sys.executable, "-c", "import sys; from jetscale.cli import main; main(sys.argv[1:])"]


def config_error(command: str, *args: str) -> str:
    """The message of the ``ConfigError`` that ``jetscale <command> <args>`` stops with."""
    root = typer.Typer()
    serve_cli.register(root)
    up_cli.register(root)
    result = CliRunner().invoke(root, [command, *args])
    assert isinstance(result.exception, ConfigError), (result.exception, result.output)
    return str(result.exception)


def run(*args: str, cwd: Path = ROOT, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LAUNCH, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout_s)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one ``error: ...`` line on stderr of a process that exited 2."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return errors[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


# --- jetscale up: every flag, before anything starts --------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(["--speed", "0"], "'--speed' must be a finite number > 0 (got 0)", id="speed zero"),
        pytest.param(["--speed", "-2"], "'--speed' must be a finite number > 0 (got -2)", id="speed negative"),
        pytest.param(["--speed", "nan"], "'--speed' must be a finite number > 0 (got nan)", id="speed nan"),
        pytest.param(["--speed", "inf"], "'--speed' must be a finite number > 0 (got inf)", id="speed inf"),
        pytest.param(["--port", "70000"], "'--port' must be in 0..65535 (got 70000)", id="port too large"),
        pytest.param(["--port", "-1"], "'--port' must be in 0..65535 (got -1)", id="port negative"),
        pytest.param(["--sync-period-s", "0"], "'--sync-period-s' must be a finite number > 0 (got 0)", id="sync 0"),
        pytest.param(["--sync-period-s", "inf"], "'--sync-period-s' must be a finite number > 0 (got inf)",
                     id="sync inf"),
        pytest.param(["--scrape-interval-s", "-1"], "'--scrape-interval-s' must be a finite number > 0 (got -1)",
                     id="scrape negative"),
        pytest.param(["--scrape-interval-s", "nan"], "'--scrape-interval-s' must be a finite number > 0 (got nan)",
                     id="scrape nan"),
        pytest.param(["--replicas", "0"], "'--replicas' must be within the HPA's 1..16 (got 0)", id="replicas 0"),
        pytest.param(["--replicas", "17"], "'--replicas' must be within the HPA's 1..16 (got 17)", id="replicas 17"),
        pytest.param(["--batch-size", "0"], "'--batch-size' must be an integer >= 1 (got 0)", id="batch 0"),
        pytest.param(["--batch-size", "5000"], "'decode_slots' must fit in HBM", id="batch over HBM"),
        pytest.param(["--model-load-s", "-1"], "'--model-load-s' must be a finite number >= 0 (got -1)",
                     id="load negative"),
        pytest.param(["--model-load-s", "inf"], "'--model-load-s' must be a finite number >= 0 (got inf)",
                     id="load inf"),
        pytest.param(["--duration", "nan"], "'--duration' must be a finite number of seconds > 0 (got nan)",
                     id="duration nan"),
        pytest.param(["--duration", "0"], "'--duration' must be a finite number of seconds > 0 (got 0)",
                     id="duration 0"),
        pytest.param(["--prefill-backlog-limit", "0"], "'--prefill-backlog-limit' must be an integer >= 1 (got 0)",
                     id="backlog 0"),
        pytest.param(["--max-queue-wait", "0s"],
                     "'--max-queue-wait' must be a duration > 0 such as 2s, 500ms or 1m (got '0s')", id="wait 0"),
        pytest.param(["--max-queue-wait", "soon"],
                     "'--max-queue-wait' must be a duration > 0 such as 2s, 500ms or 1m (got 'soon')", id="wait text"),
        pytest.param(["--router", "random"], "'--router' must be one of round-robin, least-outstanding",
                     id="router"),
        pytest.param(["--preset", "tpu/nothing"], "'preset' must be one of", id="preset"),
    ],
)  # fmt: skip
def test_up_refuses_a_bad_flag_naming_it(flags: list[str], message: str) -> None:
    assert message in config_error("up", "--hpa", HPA, *flags)


def test_up_speed_0_is_one_line_and_exit_2_not_a_traceback() -> None:
    line = one_error_line(run("up", "--hpa", HPA, "--speed", "0"))
    assert line == "error: '--speed' must be a finite number > 0 (got 0)"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(lambda tmp: tmp / "file" / "logs", "is a file", id="under a regular file"),
        pytest.param(lambda tmp: tmp / "file", "is a file", id="a regular file"),
        pytest.param(lambda _tmp: Path("/proc/jetscale-no-such-dir"), "", id="under /proc"),
    ],
)
def test_up_refuses_a_log_dir_it_cannot_create(tmp_path: Path, make: object, reason: str) -> None:
    (tmp_path / "file").write_text("not a folder")
    log_dir = make(tmp_path)  # type: ignore[operator]
    message = config_error("up", "--hpa", HPA, "--log-dir", str(log_dir))
    assert message.startswith(f"'--log-dir' must be a folder that can be created and written to (got '{log_dir}': ")
    assert reason in message


def test_up_log_dir_is_created_and_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = up_cli.log_folder(Path("logs/run-1"))
    assert folder == tmp_path / "logs" / "run-1" and folder.is_absolute() and folder.is_dir()


def test_up_on_a_port_in_use_is_one_line_naming_the_flag(taken_port: int) -> None:
    line = one_error_line(run("up", "--hpa", HPA, "--port", str(taken_port), "--model-load-s", "0"))
    assert line == (
        f"error: '--port' must be a port free to listen on at 127.0.0.1 (got {taken_port}: address already in use)"
    )


def test_up_with_prometheus_and_a_relative_log_dir_runs(tmp_path: Path) -> None:
    """Prometheus runs in LOG_DIR/prometheus: every path it is given must be absolute."""
    assert shutil.which("prometheus") is not None, "the Makefile installs Debian's prometheus"
    proc = run("up", "--hpa", HPA, "--prometheus", "--log-dir", "logs", "--port", "0", "--speed", "10",
               "--model-load-s", "1", "--batch-size", "8", "--sync-period-s", "5", "--scrape-interval-s", "5",
               "--duration", "0.5", cwd=tmp_path, timeout_s=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"logs in {tmp_path / 'logs'}" in proc.stdout
    assert (tmp_path / "logs" / "prometheus" / "prometheus.yml").is_file()
    assert (tmp_path / "logs" / "jetstream-server-0.log").is_file()


# --- up hands the admission flags to every replica ------------------------------------------------------
def test_serve_command_passes_admission_flags_and_exact_numbers() -> None:
    command = ServeCommand(speed=1.2345678, model_load_s=0.1, prefill_backlog_limit=7, max_queue_wait_s=1e-7)
    argv = command.argv("jetstream-0")
    flags = argv[argv.index("serve") + 1 :]
    pairs = dict(zip(flags[::2], flags[1::2], strict=True))
    assert pairs["--speed"] == "1.2345678" and pairs["--model-load-s"] == "0.1"
    assert pairs["--prefill-backlog-limit"] == "7" and pairs["--max-queue-wait"] == "0.0000001"
    assert serve_cli.parse_max_queue_wait(pairs["--max-queue-wait"]) == 1e-7
    assert command.overrides() == {"model_load_s": 0.1, "prefill_backlog_limit": 7, "max_queue_wait_s": 1e-7}
    assert "--max-queue-wait" not in ServeCommand().argv("jetstream-0")


# --- jetscale serve ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(["--grace-period-s", "-1"], "'grace_period_s' must be a finite number >= 0 (got -1.0)",
                     id="grace negative"),
        pytest.param(["--grace-period-s", "inf"], "'grace_period_s' must be a finite number >= 0 (got inf)",
                     id="grace inf"),
        pytest.param(["--speed", "nan"], "'speed' must be > 0 (got nan)", id="speed nan"),
        pytest.param(["--model-load-s", "inf"], "'model_load_s' must be >= 0 (got inf)", id="load inf"),
        pytest.param(["--prefill-backlog-limit", "0"], "'prefill_backlog_limit' must be an integer >= 1 (got 0)",
                     id="backlog 0"),
        pytest.param(["--max-queue-wait", "0"],
                     "'--max-queue-wait' must be a duration > 0 such as 2s, 500ms or 1m (got '0')", id="wait 0"),
        pytest.param(["--max-queue-wait", "-1s"],
                     "'--max-queue-wait' must be a duration > 0 such as 2s, 500ms or 1m (got '-1s')", id="wait -1s"),
        pytest.param(["--host", ""], "'host' must be a non-empty host name or address", id="host empty"),
        pytest.param(["--server-id", ""], "'server_id' must be a non-empty string", id="server id empty"),
        pytest.param(["--port", "9100", "--grpc-port", "9100"], "'grpc_port' must be different from port 9100",
                     id="same ports"),
    ],
)  # fmt: skip
def test_serve_refuses_a_bad_flag(flags: list[str], message: str) -> None:
    assert message in config_error("serve", *flags)


def test_serve_max_queue_wait_sets_the_replicas_admission_by_time() -> None:
    _, replica = serve_cli.build_server(preset="v5e-8/llama2-7b", port=0, grpc_port=None,
                                        max_queue_wait_s=serve_cli.parse_max_queue_wait("1m30s"))  # fmt: skip
    assert replica.max_queue_wait_s == 90.0
    assert serve_cli.parse_max_queue_wait(None) is None


async def test_serve_max_queue_wait_sheds_with_429_and_retry_after() -> None:
    # at speed 0.01 one prefill takes a wall second or more: every request behind the first waits longer than 1 ms
    proc = await asyncio.create_subprocess_exec(
        *LAUNCH, "serve", "--port", "0", "--grpc-port", "-1", "--model-load-s", "0", "--speed", "0.01",
        "--max-queue-wait", "1ms", "--grace-period-s", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
        base = "http://" + line.split("http=")[1].split()[0]
        body = {"max_tokens": 4, "text_content": {"text": "a prompt " * 100}}
        async with aiohttp.ClientSession() as http:

            async def post() -> tuple[int, str | None]:
                async with http.post(f"{base}/v1/generate", json=body) as response:
                    await response.read()
                    return response.status, response.headers.get("Retry-After")

            tasks = [asyncio.ensure_future(post()) for _ in range(8)]
            done, _ = await asyncio.wait(tasks, timeout=30, return_when=asyncio.FIRST_COMPLETED)
            answers = [task.result() for task in done]
            for task in tasks:
                task.cancel()
        shed = [retry for status, retry in answers if status == 429]
        assert shed and all(retry is not None and int(retry) >= 0 for retry in shed), answers
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def test_serve_help_documents_admission() -> None:
    root = typer.Typer()
    serve_cli.register(root)
    result = CliRunner().invoke(root, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--max-queue-wait" in result.output and "--prefill-backlog-limit" in result.output
    assert "Retry-After" in result.output


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        pytest.param("not..a..host", "not a valid host name", id="not a host name"),
        pytest.param("no-such-host.invalid", "", id="unresolvable"),
        pytest.param("192.0.2.1", "cannot assign requested address", id="not an address of this machine"),
    ],
)
def test_serve_on_a_host_it_cannot_listen_on_is_one_line_naming_the_flag(host: str, reason: str) -> None:
    line = one_error_line(run("serve", "--host", host, "--port", "0", "--grpc-port", "-1"))
    assert line.startswith(f"error: '--host' must be an address this machine can listen on (got {host!r}: ")
    assert reason in line


@pytest.mark.parametrize("flag", ["--port", "--grpc-port"])
def test_serve_on_a_port_in_use_is_one_line_naming_the_flag(taken_port: int, flag: str) -> None:
    other = ["--grpc-port", "-1"] if flag == "--port" else ["--port", "0"]
    line = one_error_line(run("serve", flag, str(taken_port), *other))
    assert line.startswith(f"error: '{flag}' must be a port free to listen on at 127.0.0.1 (got {taken_port}: ")


def test_listen_error_names_the_field_at_fault() -> None:
    error = ListenError(host="127.0.0.1", port=80, field="port", reason="permission denied")
    assert str(error) == "cannot listen on 127.0.0.1:80: permission denied"
    assert str(error.flag_error("--port")) == (
        "'--port' must be a port free to listen on at 127.0.0.1 (got 80: permission denied)"
    )


# --- YAML past the parser's limits: one line naming the file ----------------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["hpa", "explain"], id="hpa explain"),
        pytest.param(["up", "--hpa"], id="up"),
        pytest.param(["simulate", "--hpa"], id="simulate"),
    ],
)
def test_a_manifest_nested_5000_deep_is_one_line_naming_the_file(tmp_path: Path, command: list[str]) -> None:
    manifest = tmp_path / "deep.yaml"
    manifest.write_text("spec: " + "[" * 5000 + "]" * 5000 + "\n")
    line = one_error_line(run(*command, str(manifest)))
    assert line.startswith(f"error: {manifest}: line 1, column ")
    assert "must be nested at most 100 levels deep" in line


def test_a_tune_bundle_nested_5000_deep_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    from jetscale.tune.bundle import load_bundle

    bundle = tmp_path / "bundle.yaml"
    bundle.write_text("kind: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=f"^{bundle}: line 1, column .*must be nested at most 100 levels deep"):
        load_bundle(bundle)
