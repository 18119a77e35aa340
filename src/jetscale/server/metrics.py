"""The replica's Prometheus metrics: JetStream's names, types and buckets, plus GKE-style accelerator gauges.

Every series carries ``id`` (the server id, HOSTNAME on Kubernetes). Gauges are computed from an engine
snapshot taken at scrape time (the engine is advanced to now first), so they are exact at that instant;
histograms and the success counter are fed one ``Completion`` at a time. All durations are engine seconds.

Histogram definitions follow JetStream's orchestrator (see docs/jetstream-differences.md for where they
differ from a client's view); the backlog and slot gauges report true values, without JetStream's
always-zero transfer/generate backlogs or its 1/N idle floor on slots used.

Accelerator gauges, per replica (summed over its chips):

* ``accelerator_memory_used_bytes`` / ``accelerator_memory_total_bytes``: HBM in use (weights, KV cache of
  the active tokens, runtime reserve) and HBM capacity; ``accelerator_memory_used_ratio`` is used / total.
* ``accelerator_duty_cycle``: percent (0..100) of time the accelerator was busy since the previous scrape.
* ``memory_used``, ``memory_total``, ``duty_cycle``: the same values under the names GKE's TPU device
  plugin exporter uses, so HPA manifests written for GKE (``prometheus.googleapis.com|memory_used|gauge``)
  work unchanged; ``memory_used_percentage`` is the ratio under the name ai-on-gke's prometheus-adapter
  rule gives it (a fraction 0..1, despite the name).

jetscale's own counters: ``jetscale_requests_cancelled_total{stage}`` (requests whose client went away,
by the stage they were dropped from: prefill_backlog, prefill, transfer_backlog, generate_backlog,
decode) and ``jetscale_requests_shed_total{reason}`` (refused: backlog_full, queue_wait, not_ready).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from jetscale.engine.api import Completion, EngineSnapshot, Stage
from jetscale.engine.signals import signal_value

__all__ = [
    "INPUT_LENGTH_BUCKETS",
    "OUTPUT_LENGTH_BUCKETS",
    "PREFILL_TOKEN_BUCKETS",
    "QUEUE_DURATION_BUCKETS",
    "REQUEST_BUCKETS",
    "TPOT_BUCKETS",
    "TTFT_BUCKETS",
    "ServerMetrics",
]

QUEUE_DURATION_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
PREFILL_TOKEN_BUCKETS = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1)
REQUEST_BUCKETS = (1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)
INPUT_LENGTH_BUCKETS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
OUTPUT_LENGTH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000,
                         1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6)  # fmt: skip

_IDX = "0"  # one engine per replica: JetStream's generate-engine index


class _SnapshotCollector:
    """Gauges read from the engine at scrape time."""

    def __init__(
        self,
        *,
        server_id: str,
        snapshot: Callable[[], EngineSnapshot],
        model_load_engine_s: float,
        startup_latency_engine_s: Callable[[], float | None],
    ) -> None:
        self._id = server_id
        self._snapshot = snapshot
        self._model_load_s = model_load_engine_s
        self._startup_latency = startup_latency_engine_s

    def _gauge(self, name: str, doc: str, value: float, *, per_engine: bool = False) -> GaugeMetricFamily:
        labels = ["id", "idx"] if per_engine else ["id"]
        family = GaugeMetricFamily(name, doc, labels=labels)
        family.add_metric([self._id, _IDX] if per_engine else [self._id], value)
        return family

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()

        def g(name: str, doc: str, *, per_engine: bool = False) -> GaugeMetricFamily:
            value = signal_value(name, snap)  # the one mapping from snapshot to metric (jetscale.engine.signals)
            assert value is not None, name
            return self._gauge(name, doc, value, per_engine=per_engine)

        yield g("jetstream_prefill_backlog_size", "Size of prefill queue")
        yield g("jetstream_transfer_backlog_size", "Size of transfer queue", per_engine=True)
        yield g("jetstream_generate_backlog_size", "Size of generate queue", per_engine=True)
        yield g(
            "jetstream_slots_used_percentage",
            "The percentage of decode slots currently being used (a fraction 0..1)",
            per_engine=True,
        )
        yield g("num_requests_waiting", "Requests waiting in the prefill, transfer and generate queues")
        yield g("kv_cache_utilization_perc", "Decode slots in use, percent")
        yield self._gauge(
            "jetstream_model_load_time", "Total time taken in seconds to load a model", self._model_load_s
        )
        startup = self._startup_latency()
        if startup is not None:
            yield self._gauge(
                "jetstream_server_startup_latency", "Total time taken to start the Jetstream server", startup
            )
        yield g("accelerator_memory_used_bytes", "Accelerator memory (HBM) in use, bytes")
        yield g("accelerator_memory_total_bytes", "Accelerator memory (HBM) capacity, bytes")
        yield g("accelerator_memory_used_ratio", "Accelerator memory in use / capacity (0..1)")
        yield g("accelerator_duty_cycle", "Percent of time the accelerator was busy since last scrape")
        yield g("memory_used", "Total accelerator memory allocated, bytes (GKE name)")
        yield g("memory_total", "Total accelerator memory, bytes (GKE name)")
        yield g("duty_cycle", "Percent of time the accelerator was busy (GKE name)")
        yield g("memory_used_percentage", "memory_used / memory_total, a fraction 0..1 (adapter name)")


class ServerMetrics:
    """One server's registry (never the global one): histograms fed by completions, gauges by snapshots."""

    def __init__(
        self,
        *,
        server_id: str,
        snapshot: Callable[[], EngineSnapshot],
        model_load_engine_s: float,
        startup_latency_engine_s: Callable[[], float | None],
    ) -> None:
        self.registry = CollectorRegistry()
        self.server_id = server_id

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, ["id"], buckets=buckets, registry=self.registry)

        self._queue = histogram(
            "jetstream_queue_duration", "The total time each request spends enqueued in seconds",
            QUEUE_DURATION_BUCKETS,
        ).labels(id=server_id)  # fmt: skip
        self._ttft = histogram(
            "jetstream_time_to_first_token", "Time to first token per request in seconds", TTFT_BUCKETS
        ).labels(id=server_id)
        self._tpot = histogram(
            "jetstream_time_per_output_token", "Average time per output token per request in seconds", TPOT_BUCKETS
        ).labels(id=server_id)
        self._prefill_token = histogram(
            "jetstream_time_per_prefill_token", "Prefill time per token per request in seconds",
            PREFILL_TOKEN_BUCKETS,
        ).labels(id=server_id)  # fmt: skip
        self._request = histogram(
            "jetstream_time_per_request", "End to end request latency in seconds", REQUEST_BUCKETS
        ).labels(id=server_id)
        self._wait = histogram(
            "jetstream_wait_time_per_request", "Time each request is not being prefilled or decoded in seconds",
            QUEUE_DURATION_BUCKETS,
        ).labels(id=server_id)  # fmt: skip
        self._input = histogram(
            "jetstream_request_input_length", "Number of input tokens per request", INPUT_LENGTH_BUCKETS
        ).labels(id=server_id)
        self._output = histogram(
            "jetstream_request_output_length", "Number of output tokens per request", OUTPUT_LENGTH_BUCKETS
        ).labels(id=server_id)
        self._success = Counter(
            "jetstream_request_success_count", "Number of requests successfully completed", ["id"],
            registry=self.registry,
        ).labels(id=server_id)  # fmt: skip
        self._cancelled = Counter(
            "jetscale_requests_cancelled", "Requests dropped because their client went away, by the stage they left",
            ["id", "stage"], registry=self.registry,
        )  # fmt: skip
        self._shed = Counter(
            "jetscale_requests_shed", "Requests refused with 429/503 (RESOURCE_EXHAUSTED/UNAVAILABLE), by reason",
            ["id", "reason"], registry=self.registry,
        )  # fmt: skip
        self.registry.register(
            _SnapshotCollector(
                server_id=server_id,
                snapshot=snapshot,
                model_load_engine_s=model_load_engine_s,
                startup_latency_engine_s=startup_latency_engine_s,
            )
        )

    def observe(self, c: Completion) -> None:
        """Record one finished request, with JetStream's definitions (engine seconds)."""
        prefill_s = c.first_token_s - c.prefill_start_s
        decode_s = c.end_s - c.insert_s
        queued_s = (c.prefill_start_s - c.arrival_s) + (c.insert_s - c.first_token_s)
        self._queue.observe(queued_s)
        self._ttft.observe(prefill_s)
        self._tpot.observe((c.end_s - c.first_token_s) / c.output_tokens)
        self._prefill_token.observe(prefill_s / c.input_tokens)
        self._request.observe(c.latency_s)
        self._wait.observe(max(0.0, c.latency_s - prefill_s - decode_s))
        self._input.observe(c.input_tokens)
        self._output.observe(c.output_tokens)
        self._success.inc()

    def cancelled(self, stage: Stage) -> None:
        """One request abandoned by its client, dropped from ``stage``."""
        self._cancelled.labels(id=self.server_id, stage=str(stage)).inc()

    def shed(self, reason: str) -> None:
        """One request refused (``backlog_full``, ``queue_wait`` or ``not_ready``)."""
        self._shed.labels(id=self.server_id, reason=reason).inc()

    def exposition(self) -> bytes:
        """The text format, as ``/metrics`` serves it."""
        return generate_latest(self.registry)
