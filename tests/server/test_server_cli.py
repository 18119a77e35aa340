"""``jetscale serve`` as a process: SIGTERM drains in-flight requests and exits 0; bad flags exit 2."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
import typer
from server_fakes import split_json
from typer.testing import CliRunner

from jetscale.cli import serve as serve_cli
from jetscale.errors import ConfigError

LAUNCH = ["-c", "import sys; from jetscale.cli import main; main(sys.argv[1:])"]


async def start_serve(*flags: str) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *LAUNCH, "serve", "--port", "0", "--grpc-port", "0", *flags,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode()
    assert line.startswith("serving v5e-8/llama2-7b as sigterm-test: http=127.0.0.1:"), line
    port = int(line.split("http=127.0.0.1:")[1].split()[0])
    return proc, port


async def test_sigterm_lets_the_request_in_flight_finish_and_exits_0() -> None:
    proc, port = await start_serve("--speed", "10", "--model-load-s", "2", "--server-id", "sigterm-test")
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):  # ready after 2 / 10 = 0.2 wall seconds
                async with http.get(f"{base}/healthz/ready") as resp:
                    if resp.status == 200:
                        break
                await asyncio.sleep(0.02)
            else:
                pytest.fail("the server never became ready")
            body = {"max_tokens": 1000, "text_content": {"text": "a long story please"}}
            async with http.post(f"{base}/v1/generate", json=body) as streaming:
                assert streaming.status == 200
                first = await streaming.content.readany()  # the first token is out: the request is in flight
                assert b"tokenIds" in first
                proc.send_signal(signal.SIGTERM)
                for _ in range(100):
                    async with http.get(f"{base}/healthz/ready") as resp:
                        state = (resp.status, (await resp.json())["state"])
                    if state != (200, "ready"):
                        break
                    await asyncio.sleep(0.005)
                assert state == (503, "draining")
                async with http.post(f"{base}/v1/generate", json=body) as refused:
                    assert refused.status == 503
                rest = first + await streaming.content.read()
        messages = [message["streamContent"]["samples"][0] for message in split_json(rest.decode())]  # type: ignore[index]
        assert messages[-1] == {}  # JetStream's final empty sample: the response is complete
        assert sum(len(sample.get("tokenIds", [])) for sample in messages) == 1000
        assert await asyncio.wait_for(proc.wait(), timeout=20) == 0
        assert proc.stderr is not None
        log = (await proc.stderr.read()).decode()
        assert "draining: 1 request(s) in flight" in log and "stopped" in log
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(["--speed", "0"], "'speed' must be > 0 (got 0.0)", id="speed zero"),
        pytest.param(["--preset", "tpu/nothing"], "'preset' must be one of", id="unknown preset"),
        pytest.param(["--batch-size", "0"], "'decode_slots' must be an integer >= 1 (got 0)", id="batch zero"),
        pytest.param(["--batch-size", "5000"], "'decode_slots' must fit in HBM", id="batch too large for HBM"),
        pytest.param(["--port", "70000"], "'port' must be in 0..65535 (got 70000)", id="port out of range"),
        pytest.param(["--grpc-port", "-5"], "'grpc_port' must be -1 (off) or in 0..65535 (got -5)", id="grpc port"),
        pytest.param(["--model-load-s", "-1"], "'model_load_s' must be >= 0", id="negative model load"),
        pytest.param(
            ["--kind", "vllm"],
            "'--kind' must be the replica's kind, jetstream (its stack is jetstream-maxtext) (got vllm)",
            id="kind vllm on a JetStream replica",
        ),
        pytest.param(["--kind", "tgi"], "'--kind' must be one of jetstream, vllm (got 'tgi')", id="unknown kind"),
    ],
)
def test_bad_flags_raise_a_config_error_naming_the_flag(flags: list[str], message: str) -> None:
    root = typer.Typer()
    serve_cli.register(root)
    result = CliRunner().invoke(root, ["serve", *flags])
    assert isinstance(result.exception, ConfigError)
    assert message in str(result.exception)


async def test_a_bad_flag_prints_one_line_and_exits_2() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *LAUNCH, "serve", "--speed", "-3",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    assert proc.returncode == 2
    assert err.decode().strip() == "error: 'speed' must be > 0 (got -3.0)"
    assert out == b""


def test_presets_lists_every_preset_with_its_modeled_peak() -> None:
    root = typer.Typer()
    serve_cli.register(root)
    result = CliRunner().invoke(root, ["presets"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    from jetscale.engine.presets import list_presets, modeled_peak

    for preset in list_presets():
        row = next(line for line in result.output.splitlines() if f" {preset.name} " in line)
        assert f"{modeled_peak(preset.config()).output_tokens_s:,.0f}" in row


VLLM_REPLICA = "preset: h100/llama3-8b\nstack: vllm\nmodel_load_s: 0\n"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(
            ["--grpc-port", "9001"],
            "'--grpc-port' must be -1 (off) with kind vllm: vLLM serves no gRPC (got 9001)",
            id="gRPC on a vLLM replica",
        ),
        pytest.param(
            ["--kind", "jetstream"],
            "'--kind' must be the replica's kind, vllm (its stack is vllm) (got jetstream)",
            id="kind jetstream on a vLLM replica",
        ),
    ],
)
def test_bad_flags_on_a_vllm_replica(tmp_path: Path, flags: list[str], message: str) -> None:
    replica = tmp_path / "vllm.yaml"
    replica.write_text(VLLM_REPLICA)
    root = typer.Typer()
    serve_cli.register(root)
    result = CliRunner().invoke(root, ["serve", "--replica", str(replica), *flags])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception) == message


async def test_serve_kind_vllm_speaks_vllms_api_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    replica = tmp_path / "vllm.yaml"
    replica.write_text(VLLM_REPLICA)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *LAUNCH, "serve", "--replica", str(replica), "--kind", "vllm", "--port", "0",
        "--server-id", "vllm-test", "--speed", "10",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode()
        assert line.startswith("serving h100/llama3-8b as vllm-test: http=127.0.0.1:") and " grpc=off " in line, line
        base = f"http://127.0.0.1:{int(line.split('http=127.0.0.1:')[1].split()[0])}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/version") as resp:
                assert (resp.status, await resp.json()) == (200, {"version": "0.34.0"})
            async with http.post(f"{base}/v1/generate", json={"max_tokens": 1}) as resp:
                assert resp.status == 404
            body = {"model": "llama3-8b", "prompt": "hello", "max_tokens": 3}
            async with http.post(f"{base}/v1/completions", json=body) as resp:
                assert resp.status == 200 and (await resp.json())["usage"]["completion_tokens"] == 3
            async with http.get(f"{base}/metrics") as resp:
                text = await resp.text()
        assert 'vllm:request_success_total{engine="0",finished_reason="length",model_name="llama3-8b"} 1.0' in text
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
