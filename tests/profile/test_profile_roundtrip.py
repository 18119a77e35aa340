"""Round trip: profile a `jetscale serve` whose replica the fit has never seen, then check what the fitted
profile predicts at loads the profile never measured, against the same live server.

The replica (chip, model, efficiency) is written only here, so nothing calibrated can stand in for the
measurement. It runs at ``--speed 10``, the profile within a 60 s budget. Held out: TTFT alone at a
prompt length the sweep skipped, the decode step of a wave at a concurrency and prompt it skipped, and
the throughput of a closed loop of 1.5x the slots. Each must be within 3% of the prediction.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from jetscale.profile.client import Client
from jetscale.profile.measure import closed_loop, decode_wave, prefill_point
from jetscale.profile.predict import closed_loop_tokens_s, ttft_alone_s, wave_step_s
from jetscale.sim.options import replica_option

SPEED = 10.0
REPLICA = {
    "name": "test-chip/test-model",
    "accelerator": {
        "name": "test-chip-2", "family": "test-chip", "chips": 2, "hbm_bytes_per_chip": "24Gi",
        "hbm_bandwidth_bytes_s": "100G", "peak_bf16_flops": "4T", "peak_int8_ops": "8T",
        "source": "written in the round-trip test only",
    },
    "model": {
        "name": "test-model-3b", "family": "test-model", "params": 3_000_000_000, "layers": 26,
        "hidden_size": 3072, "heads": 24, "kv_heads": 8, "head_dim": 128, "vocab_size": 32000, "dtype": "bf16",
        "kv_dtype": "bf16", "source": "written in the round-trip test only",
    },
    "efficiency": {
        "decode": 0.55, "prefill": 0.4, "decode_overhead_s": 0.004, "prefill_overhead_s": 0.006,
        "source": "written in the round-trip test only",
    },
    "decode_slots": 8, "max_prefill_length": 512, "max_target_length": 1024, "model_load_s": 0,
}  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, int]]:
    folder = tmp_path_factory.mktemp("roundtrip")
    replica = folder / "replica.yaml"
    replica.write_text(yaml.safe_dump(REPLICA), encoding="utf-8")
    argv = [sys.executable, "-c", "import sys; from jetscale.cli import main; main(sys.argv[1:])", "serve",
            "--replica", str(replica), "--speed", str(SPEED), "--port", "0", "--grpc-port", "0"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        found = re.search(r"http=127\.0\.0\.1:(\d+) grpc=127\.0\.0\.1:(\d+)", proc.stdout.readline())
        assert found is not None
        yield f"http://127.0.0.1:{found[1]}", replica, int(found[2])
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


def _cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", "import sys; from jetscale.cli import main; main(sys.argv[1:])", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)


def test_the_fitted_profile_predicts_held_out_loads_within_3_percent(
    served: tuple[str, Path, int], tmp_path: Path
) -> None:
    url, replica, _ = served
    out = tmp_path / "prof"
    started = time.monotonic()
    done = _cli(["profile", "--target", url, "--replica", str(replica), "--server-speed", str(SPEED),
                 "--out", str(out), "--max-concurrency", "16", "--budget", "60s", "--json"])  # fmt: skip
    wall_s = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert wall_s < 60 + 15  # the budget, and the start of a Python process
    assert summary["slots"] == 8 and "metrics" in summary["slots_source"]
    assert summary["stopped"] is None
    fitted = replica_option(None, out / "profile.yaml")
    assert fitted.timing is not None and fitted.decode_slots == 8
    assert fitted.timing.prefill_buckets is not None  # jetscale serve pads to JetStream's buckets
    overhead_s = summary["client_overhead_s"]

    async def measure() -> tuple[float, float, float, float, float]:
        async with aiohttp.ClientSession() as session:
            client = Client(session, base=url, api="jetstream-http", model=None)
            alone = await prefill_point(client, 300, samples=5, speed=SPEED)
            wave = await decode_wave(client, 6, 200, 96, speed=SPEED, metrics=None)
            assert wave.point is not None
            loop = await closed_loop(client, 12, 100, 48, speed=SPEED, deadline=time.monotonic() + 60)
            assert loop is not None
            return alone.ttft_s, wave.point.step_s, wave.point.context_tokens, loop.output_tokens_s, 0.0

    ttft_s, step_s, context, tokens_s, _ = asyncio.run(measure())
    predicted_ttft = ttft_alone_s(fitted, 300) + overhead_s
    predicted_step = wave_step_s(fitted, context)
    predicted_tokens = closed_loop_tokens_s(fitted, 12, 100, 48, think_s=overhead_s)
    report = (f"TTFT {ttft_s:.4f} vs {predicted_ttft:.4f}; step {step_s:.5f} vs {predicted_step:.5f}; "
              f"tokens/s {tokens_s:.1f} vs {predicted_tokens:.1f}")  # fmt: skip
    assert predicted_ttft == pytest.approx(ttft_s, rel=0.03), report
    assert predicted_step == pytest.approx(step_s, rel=0.03), report
    assert predicted_tokens == pytest.approx(tokens_s, rel=0.03), report


def test_a_second_run_resumes_from_what_the_first_measured(served: tuple[str, Path, int], tmp_path: Path) -> None:
    url, replica, _ = served
    out = tmp_path / "prof"
    first = _cli(["profile", "--target", url, "--replica", str(replica), "--server-speed", str(SPEED),
                  "--out", str(out), "--max-concurrency", "4", "--budget", "2s", "--json"])  # fmt: skip
    assert first.returncode in (0, 2), first.stderr
    measured = json.loads((out / "points.json").read_text())
    assert measured["stopped"].startswith("budget of 2 s spent")
    second = _cli(["profile", "--target", url, "--replica", str(replica), "--server-speed", str(SPEED),
                   "--out", str(out), "--max-concurrency", "4", "--budget", "60s", "--json"])  # fmt: skip
    assert second.returncode == 0, second.stderr
    resumed = json.loads((out / "points.json").read_text())
    assert resumed["started"] == measured["started"]  # the same profile, continued
    assert resumed["prefill"][: len(measured["prefill"])] == measured["prefill"]
    assert len(resumed["prefill"]) == 12 and resumed["stopped"] == ""


def test_the_grpc_api_gives_the_same_step_times(served: tuple[str, Path, int], tmp_path: Path) -> None:
    url, replica, grpc_port = served
    out = tmp_path / "prof"
    done = _cli(["profile", "--api", "jetstream-grpc", "--target", f"127.0.0.1:{grpc_port}", "--metrics", url,
                 "--replica", str(replica), "--server-speed", str(SPEED), "--out", str(out),
                 "--max-concurrency", "4", "--budget", "60s", "--json"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["slots"] == 8 and "metrics" in summary["slots_source"]
    truth = replica_option(None, replica).roofline()
    fitted = replica_option(None, out / "profile.yaml").roofline()
    for context in (200, 2000, 6000):
        assert fitted.decode_step_s(context) == pytest.approx(truth.decode_step_s(context), rel=0.03)


def test_ctrl_c_keeps_the_points_writes_partial_json_and_exits_130(
    served: tuple[str, Path, int], tmp_path: Path
) -> None:
    url, replica, _ = served
    out = tmp_path / "prof"
    argv = [sys.executable, "-c", "import sys; from jetscale.cli import main; main(sys.argv[1:])", "profile",
            "--target", url, "--replica", str(replica), "--server-speed", str(SPEED), "--out", str(out),
            "--quiet"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    points = out / "points.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (points.is_file() and '"prompt_tokens"' in points.read_text()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, stdout
    assert "interrupted: what was measured is in" in stdout
    partial = json.loads((out / "partial.json").read_text())
    assert partial["partial"] is True and partial["measured"]["prefill"] >= 1
    assert json.loads(points.read_text())["prefill"]
