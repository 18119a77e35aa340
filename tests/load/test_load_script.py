"""``jetscale load`` for scripts and people: model time against a compressed server, ``--json``, Ctrl-C.

The server is the tiny aiohttp server of ``test_end_to_end`` (run as a script), on loopback.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.request import urlopen

import pytest

from jetscale.load.stats import Dist, Summary, in_model_time

ROOT = Path(__file__).resolve().parents[2]
TINY = Path(__file__).resolve().parent / "test_end_to_end.py"
CLI = [sys.executable, "-c", "from jetscale.cli import main; main()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tiny() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(TINY), "serve", str(port), "0.02", "0"], cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the server exited"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _received(url: str) -> int:
    with urlopen(f"{url}/stats", timeout=10) as response:
        return int(json.loads(response.read())["requests"])


def _dist(p50: float) -> Dist:
    return Dist(count=1, mean_s=p50, p50_s=p50, p90_s=p50, p95_s=2 * p50, p99_s=3 * p50, max_s=3 * p50)


def test_model_time_scales_durations_up_and_rates_down() -> None:
    from jetscale.load.stats import GeneratorHealth

    health = GeneratorHealth(mode="open", planned=1, sent=1, not_sent=0, lateness=_dist(0.0), late_share=0.0,
                             kept_up=True, cpu_saturated=False, verdict="")  # fmt: skip
    summary = Summary(elapsed_s=30.0, sent=600, ok=600, failed=0, unfinished=0, request_rps=20.0, input_tps=2000.0,
                      output_tps=4000.0, ttft=_dist(0.05), tpot=_dist(0.01), e2e=_dist(1.0), errors={}, slos=(),
                      generator=health, interval_s=10.0, intervals=())  # fmt: skip
    model = in_model_time(summary, 10.0)
    assert model["elapsed_s"] == 300.0 and model["request_rps"] == 2.0 and model["output_tps"] == 400.0
    assert model["ttft_p50_s"] == pytest.approx(0.5) and model["e2e_p99_s"] == pytest.approx(30.0)


def test_server_speed_labels_model_time_and_json_is_one_document(tiny: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "load", "--target", tiny, "--rate", "20", "--duration", "1s", "--workload", "fixed:input=8,output=4",
         "--out", str(tmp_path), "--no-html", "--server-speed", "10", "--json"],
        capture_output=True, text=True, timeout=90, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)  # all of stdout
    assert doc["command"] == "load" and doc["partial"] is False
    base = doc["time_base"]
    assert base["figures"] == "wall clock" and base["server_speed"] == 10.0
    wall = doc["summary"]
    assert base["model_time"]["e2e_p50_s"] == pytest.approx(10 * wall["e2e"]["p50_s"])
    assert base["model_time"]["request_rps"] == pytest.approx(wall["request_rps"] / 10)
    assert json.loads((tmp_path / "summary.json").read_text())["time_base"] == base
    assert "model time (server at --speed 10; the figures above are wall clock)" in " ".join(done.stderr.split())


def test_ctrl_c_keeps_the_requests_sent_and_exits_130(tiny: str, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*CLI, "load", "--target", tiny, "--rate", "20", "--duration", "120s", "--workload",
         "fixed:input=8,output=4", "--out", str(tmp_path), "--no-html", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while _received(tiny) < 10 and time.monotonic() < deadline:  # it is sending
            assert proc.poll() is None
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    partial = json.loads((tmp_path / "partial.json").read_text())
    assert partial["partial"] is True and partial["command"] == "load" and partial["ended"] == "interrupted"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["run"]["ended"] == "interrupted"
    assert 10 <= summary["summary"]["sent"] == partial["sent"] < summary["run"]["planned"]
    assert summary["summary"]["sent"] <= _received(tiny)
    assert "interrupted after" in out and "Traceback" not in err
