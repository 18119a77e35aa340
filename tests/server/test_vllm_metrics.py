"""A vLLM-kind server's /metrics: vLLM 0.34.0's names, types, labels and buckets, read back with the real
prometheus_client parser; values worked out by hand on the fake engine, gauges on vLLM's scheduler."""

from __future__ import annotations

import aiohttp
import pytest
from conftest import ManualClock, ServerFactory, real_vllm_engine
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from server_fakes import FakeEngine

from jetscale.server import ModelServer, RequestHandle, Tokenizer
from jetscale.server.vllm_metrics import (
    E2E_LATENCY_BUCKETS,
    INTER_TOKEN_LATENCY_BUCKETS,
    TTFT_BUCKETS,
    request_token_buckets,
)

# vLLM's families by type (what GKE's HPA, dashboards and vLLM's own Grafana board query)
GAUGES = ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc")
COUNTERS = ("vllm:prompt_tokens", "vllm:generation_tokens", "vllm:num_preemptions", "vllm:request_success",
            "vllm:prefix_cache_queries", "vllm:prefix_cache_hits")  # fmt: skip
HISTOGRAMS = ("vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds",
              "vllm:e2e_request_latency_seconds", "vllm:request_queue_time_seconds",
              "vllm:request_prefill_time_seconds", "vllm:request_decode_time_seconds",
              "vllm:request_inference_time_seconds", "vllm:request_prompt_tokens",
              "vllm:request_generation_tokens")  # fmt: skip


def families(text: str) -> dict[str, tuple[str, list[Sample]]]:
    return {f.name: (f.type, f.samples) for f in text_string_to_metric_families(text)}


def one(samples: list[Sample], name: str, **labels: str) -> float:
    (value,) = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return value


def bounds(samples: list[Sample], name: str) -> list[float]:
    return [float(s.labels["le"]) for s in samples if s.name == f"{name}_bucket"]


@pytest.mark.parametrize(
    ("max_model_len", "expected"),
    [
        pytest.param(96, (1, 2, 5, 10, 20, 50), id="96"),
        pytest.param(2048, (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000), id="2048 (vLLM's own example)"),
        pytest.param(5000, (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000), id="a bound equal to the limit"),
    ],
)
def test_request_token_buckets_are_the_1_2_5_series_up_to_max_model_len(
    max_model_len: int, expected: tuple[int, ...]
) -> None:
    assert request_token_buckets(max_model_len) == expected


async def test_every_family_has_vllms_name_type_labels_and_buckets(make_server: ServerFactory) -> None:
    server = await make_server(FakeEngine(), kind="vllm", grpc_port=None)
    async with aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{server.http_port}"
        async with http.post(f"{base}/v1/completions", json={"prompt": "fill the histograms", "max_tokens": 4}) as r:
            assert r.status == 200
        async with http.get(f"{base}/metrics") as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain; version=")
            got = families(await resp.text())
    expected = {**dict.fromkeys(GAUGES, "gauge"), **dict.fromkeys(COUNTERS, "counter"),
                **dict.fromkeys(HISTOGRAMS, "histogram")}  # fmt: skip
    assert {name: got[name][0] for name in expected} == expected
    assert not any(name.startswith("jetstream_") or name.startswith("memory_") for name in got)
    for name in expected:
        for sample in got[name][1]:
            assert sample.labels["model_name"] == "fake-llm" and sample.labels["engine"] == "0", sample
    success = got["vllm:request_success"][1]
    assert {s.labels["finished_reason"] for s in success} == {"stop", "length", "abort", "error", "repetition"}
    assert {s.name for s in got["vllm:prompt_tokens"][1]} == {"vllm:prompt_tokens_total"}
    inf = [float("inf")]
    assert bounds(got[HISTOGRAMS[0]][1], HISTOGRAMS[0]) == [*TTFT_BUCKETS, *inf]
    assert bounds(got[HISTOGRAMS[1]][1], HISTOGRAMS[1]) == [*INTER_TOKEN_LATENCY_BUCKETS, *inf]
    for name in HISTOGRAMS[2:7]:
        assert bounds(got[name][1], name) == [*E2E_LATENCY_BUCKETS, *inf], name
    for name in HISTOGRAMS[7:]:
        assert bounds(got[name][1], name) == [1, 2, 5, 10, 20, 50, *inf], name  # max_model_len 96


async def test_finished_requests_fill_the_histograms_by_vllms_phase_definitions(make_server: ServerFactory) -> None:
    # one request at a time on an idle fake engine: queue 0, prefill 0.2 s, 4 decode steps of 0.03 s
    server = await make_server(FakeEngine(prefill_s=0.2, step_s=0.03), kind="vllm", grpc_port=None)
    prompt = "Why is the sky blue?"
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.post(f"http://127.0.0.1:{server.http_port}/v1/completions",
                                 json={"prompt": prompt, "max_tokens": 5}) as resp:  # fmt: skip
                assert resp.status == 200
    got = families(server.metrics.exposition().decode())

    def hist(name: str) -> tuple[float, float]:
        samples = got[name][1]
        return one(samples, f"{name}_count"), one(samples, f"{name}_sum")

    assert hist("vllm:time_to_first_token_seconds") == (3, pytest.approx(0.6))
    assert one(got["vllm:time_to_first_token_seconds"][1], "vllm:time_to_first_token_seconds_bucket", le="0.1") == 0
    assert one(got["vllm:time_to_first_token_seconds"][1], "vllm:time_to_first_token_seconds_bucket", le="0.25") == 3
    assert hist("vllm:inter_token_latency_seconds") == (12, pytest.approx(0.36))  # 4 gaps per request
    assert one(got["vllm:inter_token_latency_seconds"][1], "vllm:inter_token_latency_seconds_bucket", le="0.05") == 12
    assert hist("vllm:request_queue_time_seconds") == (3, pytest.approx(0.0))
    assert hist("vllm:request_prefill_time_seconds") == (3, pytest.approx(0.6))
    assert hist("vllm:request_decode_time_seconds") == (3, pytest.approx(0.36))
    assert hist("vllm:request_inference_time_seconds") == (3, pytest.approx(0.96))
    assert hist("vllm:e2e_request_latency_seconds") == (3, pytest.approx(0.96))
    prompt_tokens = Tokenizer().count(prompt)
    assert hist("vllm:request_prompt_tokens") == (3, 3 * prompt_tokens)
    assert hist("vllm:request_generation_tokens") == (3, 15)
    assert one(got["vllm:prompt_tokens"][1], "vllm:prompt_tokens_total") == 3 * prompt_tokens
    assert one(got["vllm:generation_tokens"][1], "vllm:generation_tokens_total") == 15
    success = got["vllm:request_success"][1]
    assert one(success, "vllm:request_success_total", finished_reason="length") == 3
    assert one(success, "vllm:request_success_total", finished_reason="abort") == 0


async def test_a_cancelled_request_is_an_abort(make_server: ServerFactory) -> None:
    clock = ManualClock()
    server = await make_server(FakeEngine(), clock=clock, speed=1.0, kind="vllm", grpc_port=None)
    handle = server.runtime.submit(input_tokens=4, output_tokens=8)
    assert isinstance(handle, RequestHandle)
    await clock.advance(0.15)  # prefilled, decoding
    server.runtime.release(handle)  # the client went away
    got = families(server.metrics.exposition().decode())
    success = got["vllm:request_success"][1]
    assert one(success, "vllm:request_success_total", finished_reason="abort") == 1
    assert one(success, "vllm:request_success_total", finished_reason="length") == 0
    assert one(got["jetscale_requests_cancelled"][1], "jetscale_requests_cancelled_total", stage="decode") == 1
    assert one(got["vllm:time_to_first_token_seconds"][1], "vllm:time_to_first_token_seconds_count") == 0
    await server.runtime.stop()


async def test_gauges_are_vllms_running_waiting_and_kv_cache_use(make_server: ServerFactory) -> None:
    clock = ManualClock()
    engine, settings = real_vllm_engine(decode_slots=2)  # vLLM's max_num_seqs 2
    server: ModelServer = await make_server(engine, clock=clock, speed=1.0, **settings)
    handles = [server.runtime.submit(input_tokens=100, output_tokens=500) for _ in range(5)]
    assert all(isinstance(h, RequestHandle) for h in handles)
    await clock.advance(0.5)  # a few steps: two running, three waiting

    def gauges() -> dict[str, float]:
        got = families(server.metrics.exposition().decode())
        return {name: got[name][1][0].value for name in GAUGES}

    now = gauges()
    assert (now["vllm:num_requests_running"], now["vllm:num_requests_waiting"]) == (2, 3)
    assert 0 < now["vllm:kv_cache_usage_perc"] < 0.01  # 2 x ~100-200 tokens of a pool of ~450k
    for handle in handles:
        server.runtime.release(handle)
    await clock.advance(0.5)  # running requests leave at the end of the step in progress
    now = gauges()
    assert (now["vllm:num_requests_running"], now["vllm:num_requests_waiting"]) == (0, 0)
    assert now["vllm:kv_cache_usage_perc"] == 0.0
    await server.runtime.stop()
