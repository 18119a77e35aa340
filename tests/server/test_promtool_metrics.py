"""``promtool check metrics`` on a live /metrics: the only problem it may report is ``memory_total``'s name.

``memory_total`` is a gauge (HBM capacity, bytes) whose name ends in ``_total``, which Prometheus reserves
for counters, so promtool warns. The name is GKE's: its TPU device metrics are ``memory_used``,
``memory_total`` and ``duty_cycle``, and the HPA manifests, recording rules and dashboards written for GKE
(and rendered by ``jetscale k8s``) query it by that name; renaming it would break them. Any other
warning fails this test.

vLLM's names (``vllm:num_requests_waiting``, ...) contain a colon, which promtool's lint reserves for
recording rules: on a vLLM-kind server that is the one problem, reported once per family (vLLM's own
/metrics draws the same), and the names are vLLM's, which GKE's HPA manifests query.
"""

from __future__ import annotations

import subprocess

import aiohttp
from conftest import ServerFactory, real_vllm_engine
from server_fakes import FakeEngine

from jetscale.k8s.validate import find_promtool
from jetscale.server import ModelServer

# promtool's words for the one accepted problem (its lint of "_total" on a non-counter)
ACCEPTED = 'memory_total non-counter metrics should not have "_total" suffix'


async def test_promtool_reports_only_the_gke_named_gauge(any_server: ModelServer) -> None:
    async with aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{any_server.http_port}"
        body = {"model": "m", "prompt": "fill the histograms", "max_tokens": 4}
        async with http.post(f"{base}/v1/completions", json=body) as resp:
            assert resp.status == 200
        async with http.get(f"{base}/metrics") as resp:
            text = await resp.read()
    assert b"\nmemory_total{" in text
    result = subprocess.run([find_promtool(), "check", "metrics"], input=text, capture_output=True, timeout=60,
                            check=False)  # fmt: skip
    problems = [line.strip() for line in (result.stdout + result.stderr).decode().splitlines() if line.strip()]
    assert problems == [ACCEPTED], problems
    assert result.returncode == 3  # promtool: lint problems found (those above), nothing else wrong


COLON = "metric names should not contain ':'"


async def promtool_problems(server: ModelServer) -> tuple[int, list[str], bytes]:
    async with aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{server.http_port}"
        body = {"model": server.config.model_name, "prompt": "fill the histograms", "max_tokens": 4}
        async with http.post(f"{base}/v1/completions", json=body) as resp:
            assert resp.status == 200
        async with http.get(f"{base}/metrics") as resp:
            text = await resp.read()
    result = subprocess.run([find_promtool(), "check", "metrics"], input=text, capture_output=True, timeout=60,
                            check=False)  # fmt: skip
    problems = [line.strip() for line in (result.stdout + result.stderr).decode().splitlines() if line.strip()]
    return result.returncode, problems, text


async def test_promtool_reports_only_the_colons_of_vllms_names(make_server: ServerFactory) -> None:
    for engine, settings in ((FakeEngine(), {"kind": "vllm", "grpc_port": None}), real_vllm_engine()):
        server = await make_server(engine, **settings)
        code, problems, text = await promtool_problems(server)
        # every sample name of a vllm: family, as promtool names them (counters with _total)
        names = {line.split(b" ")[2].decode() for line in text.splitlines() if line.startswith(b"# TYPE vllm:")}
        assert len(names) == 18
        assert sorted(problems) == sorted(f"{name} {COLON}" for name in names), problems
        assert code == 3
