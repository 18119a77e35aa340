"""/metrics scraped over HTTP and parsed with prometheus_client: names, types, labels, buckets, values."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from conftest import ManualClock, ServerFactory
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from server_fakes import FakeEngine

from jetscale.server import ModelServer, RequestHandle

ID = {"id": "replica-0"}
PER_ENGINE = {"id": "replica-0", "idx": "0"}
# JetStream's buckets (jetstream/core/metrics/prometheus.py), written out here rather than imported.
QUEUE = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]
HISTOGRAMS = {
    "jetstream_queue_duration": QUEUE,
    "jetstream_time_to_first_token": [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5,
                                      7.5, 10],
    "jetstream_time_per_output_token": [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5],
    "jetstream_time_per_prefill_token": [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05,
                                         0.1],
    "jetstream_time_per_request": [1, 2.5, 5, 10, 15, 20, 30, 40, 50, 60],
    "jetstream_wait_time_per_request": QUEUE,
    "jetstream_request_input_length": [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768],
    "jetstream_request_output_length": [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 1e4, 2e4, 5e4, 1e5,
                                        2e5, 5e5, 1e6, 2e6],
}  # fmt: skip
GAUGES = {
    "jetstream_prefill_backlog_size": ID,
    "jetstream_transfer_backlog_size": PER_ENGINE,
    "jetstream_generate_backlog_size": PER_ENGINE,
    "jetstream_slots_used_percentage": PER_ENGINE,
    "jetstream_model_load_time": ID,
    "jetstream_server_startup_latency": ID,
    "num_requests_waiting": ID,
    "kv_cache_utilization_perc": ID,
    "accelerator_memory_used_bytes": ID,
    "accelerator_memory_total_bytes": ID,
    "accelerator_memory_used_ratio": ID,
    "accelerator_duty_cycle": ID,
    "memory_used": ID,
    "memory_total": ID,
    "memory_used_percentage": ID,
    "duty_cycle": ID,
}


async def scrape(server: ModelServer) -> dict[str, list[Sample]]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{server.http_port}/metrics") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family.samples
        if family.name in HISTOGRAMS:
            assert family.type == "histogram", family.name
        elif family.name == "jetstream_request_success_count":
            assert family.type == "counter"
        elif family.name in GAUGES:
            assert family.type == "gauge", family.name
    return families


def value(samples: list[Sample], name: str, labels: dict[str, str] | None = None) -> float:
    found = [s.value for s in samples if s.name == name and (labels is None or s.labels == labels)]
    assert len(found) == 1, (name, labels, samples)
    return found[0]


async def test_every_metric_is_exported_with_jetstream_names_labels_and_buckets(any_server: ModelServer) -> None:
    families = await scrape(any_server)
    for name, labels in GAUGES.items():
        assert [s.labels for s in families[name]] == [labels], name
    for name, buckets in HISTOGRAMS.items():
        les = [float(s.labels["le"]) for s in families[name] if s.name == f"{name}_bucket"]
        assert les == [*buckets, float("inf")], name
        assert {s.labels["id"] for s in families[name]} == {"replica-0"}
    assert value(families["jetstream_request_success_count"], "jetstream_request_success_count_total", ID) == 0
    assert value(families["jetstream_slots_used_percentage"], "jetstream_slots_used_percentage") == 0.0  # no 1/N


async def test_histograms_hold_the_completed_requests(make_server: ServerFactory) -> None:
    clock = ManualClock()
    server = await make_server(FakeEngine(prefill_s=0.5, step_s=0.1, decode_slots=4), clock=clock, speed=1.0)
    prompts = [("a b c", 2), ("a b c d e", 4), ("a b c d e f g h", 6)]  # 3, 5, 8 tokens
    async with aiohttp.ClientSession() as http:

        async def generate(text: str, max_tokens: int) -> int:
            body = {"max_tokens": max_tokens, "text_content": {"text": text}}
            headers = {"Accept": "application/json"}
            async with http.post(f"http://127.0.0.1:{server.http_port}/v1/generate", json=body, headers=headers) as r:
                return r.status

        tasks = []
        for k, (text, n) in enumerate(prompts, start=1):
            tasks.append(asyncio.create_task(generate(text, n)))
            while server.runtime.in_flight < k:
                await asyncio.sleep(0.001)
        for _ in range(6):
            await clock.advance(0.5)
        assert await asyncio.gather(*tasks) == [200, 200, 200]
    # prefills 0-0.5, 0.5-1.0, 1.0-1.5; inserted at their ends; ends at 0.6, 1.3, 2.0
    expected_sums = {
        "jetstream_queue_duration": 0.0 + 0.5 + 1.0,
        "jetstream_wait_time_per_request": 0.0 + 0.5 + 1.0,
        "jetstream_time_to_first_token": 3 * 0.5,
        "jetstream_time_per_output_token": 0.1 / 2 + 0.3 / 4 + 0.5 / 6,
        "jetstream_time_per_prefill_token": 0.5 / 3 + 0.5 / 5 + 0.5 / 8,
        "jetstream_time_per_request": 0.6 + 1.3 + 2.0,
        "jetstream_request_input_length": 3 + 5 + 8,
        "jetstream_request_output_length": 2 + 4 + 6,
    }
    families = await scrape(server)
    for name, total in expected_sums.items():
        assert value(families[name], f"{name}_count", ID) == 3, name
        assert value(families[name], f"{name}_sum", ID) == pytest.approx(total), name
    assert value(families["jetstream_request_success_count"], "jetstream_request_success_count_total", ID) == 3
    ttft = families["jetstream_time_to_first_token"]
    assert value(ttft, "jetstream_time_to_first_token_bucket", {**ID, "le": "0.25"}) == 0
    assert value(ttft, "jetstream_time_to_first_token_bucket", {**ID, "le": "0.5"}) == 3


async def test_gauges_are_read_from_the_engine_at_scrape_time(make_server: ServerFactory) -> None:
    clock = ManualClock()
    engine = FakeEngine(prefill_s=1.0, step_s=0.1, decode_slots=2, backlog_limit=10,
                        weights_bytes=1000, kv_bytes_per_token=10, hbm_total_bytes=100_000)  # fmt: skip
    server = await make_server(engine, clock=clock, speed=1.0, model_load_engine_s=0.0)
    handles = [server.runtime.submit(input_tokens=10, output_tokens=30) for _ in range(5)]
    assert all(isinstance(h, RequestHandle) for h in handles)

    def gauges(families: dict[str, list[Sample]]) -> dict[str, float]:
        return {name: value(families[name], name) for name in GAUGES}

    now = gauges(await scrape(server))  # t = 0: one prefilling, four waiting
    assert (now["jetstream_prefill_backlog_size"], now["jetstream_slots_used_percentage"]) == (4, 0.0)
    assert (now["accelerator_memory_used_bytes"], now["memory_total"]) == (1000, 100_000)
    assert now["jetstream_server_startup_latency"] == 0.0
    await clock.advance(2.5)  # A, B decoding; C prefilling; two waiting
    now = gauges(await scrape(server))
    assert (now["jetstream_prefill_backlog_size"], now["jetstream_slots_used_percentage"]) == (2, 1.0)
    assert now["kv_cache_utilization_perc"] == 100.0
    assert now["accelerator_memory_used_bytes"] == now["memory_used"] == 1000 + 10 * 20
    assert now["accelerator_memory_used_ratio"] == now["memory_used_percentage"] == pytest.approx(0.012)
    assert now["accelerator_duty_cycle"] == now["duty_cycle"] == pytest.approx(100.0)
    await clock.advance(1.0)  # t = 3.5: C prefilled but no free slot; D prefilling; one waiting
    now = gauges(await scrape(server))
    assert now["jetstream_generate_backlog_size"] == 1  # the true value (JetStream's gauge is stuck at 0)
    assert now["num_requests_waiting"] == 2
    await server.runtime.stop()
