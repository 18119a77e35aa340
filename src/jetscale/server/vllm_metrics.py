"""A vLLM-kind server's Prometheus metrics: vLLM's names, types, labels and buckets (vLLM 0.34.0).

The names and buckets are those vLLM 0.34.0 registers (``vllm/v1/metrics/loggers.py``,
``vllm/v1/metrics/buckets.py``); every series is labelled ``model_name`` (the served model) and
``engine="0"`` (one engine per replica), as vLLM labels its core metrics. What jetscale exports:

* gauges, read from an engine snapshot at scrape time (the engine is advanced to now first):
  ``vllm:num_requests_running`` (the running batch, prefilling requests included),
  ``vllm:num_requests_waiting`` (the waiting queue), ``vllm:kv_cache_usage_perc`` (the share of KV cache
  blocks in use, a fraction 0..1 despite the name, as in vLLM);
* counters (written ``<name>_total``): ``vllm:prompt_tokens``, ``vllm:generation_tokens``,
  ``vllm:request_success{finished_reason}`` (``length`` for every finished request: the simulated model
  runs to ``max_tokens``; ``abort`` for a request whose client went away; ``stop``, ``error`` and
  ``repetition`` stay 0, all five present from the start as vLLM pre-creates them), and from the snapshot
  ``vllm:num_preemptions``, ``vllm:prefix_cache_queries`` and ``vllm:prefix_cache_hits`` (tokens);
* histograms, one observation per finished request unless said: ``vllm:time_to_first_token_seconds``
  (arrival -> first token), ``vllm:e2e_request_latency_seconds`` (arrival -> end),
  ``vllm:request_queue_time_seconds`` (arrival -> first scheduled), ``vllm:request_prefill_time_seconds``
  (first scheduled -> first token), ``vllm:request_decode_time_seconds`` (first token -> end),
  ``vllm:request_inference_time_seconds`` (first scheduled -> end), ``vllm:request_prompt_tokens`` and
  ``vllm:request_generation_tokens`` (1-2-5 buckets up to ``max_model_len``), and
  ``vllm:inter_token_latency_seconds``, observed ``output_tokens - 1`` times per request as vLLM does
  once per token, each at the request's mean gap (its sum and count are exact; the engine keeps no
  per-token times, so the spread within one request is not seen).

Where jetscale differs: the token counters grow when a request finishes (vLLM adds prompt tokens when the
prefill completes and generated tokens every step), so an aborted request's tokens are not counted; an
aborted request is not observed by the histograms. Durations are engine seconds, like every jetscale
metric. jetscale's own ``jetscale_requests_cancelled_total{stage}`` and ``jetscale_requests_shed_total{reason}``
(labelled ``id``) are exported as on a JetStream-kind server.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from jetscale.engine.api import Completion, EngineSnapshot, Stage
from jetscale.engine.signals import VLLM_KV_USAGE, VLLM_RUNNING, VLLM_WAITING, signal_value

__all__ = [
    "E2E_LATENCY_BUCKETS",
    "FINISHED_REASONS",
    "INTER_TOKEN_LATENCY_BUCKETS",
    "TTFT_BUCKETS",
    "VLLM_VERSION",
    "VllmMetrics",
    "request_token_buckets",
]

VLLM_VERSION = "0.34.0"  # the vLLM release whose API and metrics a vLLM-kind server reproduces
# vllm/v1/metrics/buckets.py (0.34.0): request_latency, time_to_first_token, inter_token_latency
E2E_LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
                       120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)  # fmt: skip
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip
INTER_TOKEN_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0,
                               7.5, 10.0, 20.0, 40.0, 80.0)  # fmt: skip
FINISHED_REASONS = ("stop", "length", "abort", "error", "repetition")  # vLLM 0.34 pre-creates all at 0
_ENGINE = "0"  # one engine per replica (vLLM's data-parallel engine index)


def request_token_buckets(max_model_len: int) -> tuple[int, ...]:
    """vLLM's token-count buckets: the 1-2-5 series (1, 2, 5, 10, 20, 50, ...) up to ``max_model_len``."""
    out: list[int] = []
    scale = 1
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * scale
            if value > max_model_len:
                return tuple(out)
            out.append(value)
        scale *= 10


def _go_float(value: float) -> str:
    """A bucket bound as prometheus_client writes ``le``."""
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


class _Histogram:
    """Bucket counts and a sum; ``observe(value, times)`` adds ``times`` equal observations in O(log buckets)."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float, times: int = 1) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += times
        self.sum += value * times
        self.count += times

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += n
            out.append((_go_float(bound), total))
        return out


class _Collector:
    def __init__(self, metrics: VllmMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        snap = m.snapshot()
        labels = ["model_name", "engine"]
        values = [m.model_name, _ENGINE]

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, doc, labels=labels)
            family.add_metric(values, value)
            return family

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(name, doc, labels=labels)
            family.add_metric(values, value)
            return family

        def read(name: str) -> float:
            value = signal_value(name, snap)  # the one mapping from snapshot to metric (jetscale.engine.signals)
            assert value is not None, name
            return value

        yield gauge(VLLM_RUNNING, "Requests in the running batch (prefilling or decoding)", read(VLLM_RUNNING))
        yield gauge(VLLM_WAITING, "Requests in the waiting queue", read(VLLM_WAITING))
        yield gauge(VLLM_KV_USAGE, "Share of KV cache blocks in use, a fraction 0..1", read(VLLM_KV_USAGE))
        yield counter("vllm:num_preemptions", "Requests preempted so far", snap.preemptions)
        yield counter("vllm:prompt_tokens", "Prompt tokens of finished requests", m.prompt_tokens)
        yield counter("vllm:generation_tokens", "Output tokens of finished requests", m.generation_tokens)
        yield counter("vllm:prefix_cache_queries", "Prompt tokens looked up in the prefix cache",
                      snap.prefix_cache_queries)  # fmt: skip
        yield counter("vllm:prefix_cache_hits", "Prompt tokens found in the prefix cache",
                      snap.prefix_cache_hits)  # fmt: skip
        success = CounterMetricFamily("vllm:request_success", "Finished requests, by why they finished",
                                      labels=[*labels, "finished_reason"])  # fmt: skip
        for reason in FINISHED_REASONS:
            success.add_metric([*values, reason], m.finished[reason])
        yield success
        for name, (doc, hist) in m.histograms.items():
            histogram = HistogramMetricFamily(name, doc, labels=labels)
            histogram.add_metric(values, hist.buckets(), hist.sum)
            yield histogram
        for name, doc, label, counts in (
            ("jetscale_requests_cancelled", "Requests dropped because their client went away, by the stage they left",
             "stage", m.cancelled_by_stage),
            ("jetscale_requests_shed", "Requests refused with 503, by reason", "reason", m.shed_by_reason),
        ):  # fmt: skip
            own = CounterMetricFamily(name, doc, labels=["id", label])
            for key, n in sorted(counts.items()):
                own.add_metric([m.server_id, key], n)
            yield own


class VllmMetrics:
    """One vLLM-kind server's registry (never the global one); a ``MetricsSink`` like ``ServerMetrics``."""

    def __init__(
        self, *, server_id: str, model_name: str, max_model_len: int, snapshot: Callable[[], EngineSnapshot]
    ) -> None:
        self.server_id = server_id
        self.model_name = model_name
        self.snapshot = snapshot
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.finished = dict.fromkeys(FINISHED_REASONS, 0)
        self.cancelled_by_stage: dict[str, int] = {}
        self.shed_by_reason: dict[str, int] = {}
        tokens = request_token_buckets(max_model_len)
        self._ttft = _Histogram(TTFT_BUCKETS)
        self._itl = _Histogram(INTER_TOKEN_LATENCY_BUCKETS)
        self._e2e = _Histogram(E2E_LATENCY_BUCKETS)
        self._queue = _Histogram(E2E_LATENCY_BUCKETS)
        self._prefill = _Histogram(E2E_LATENCY_BUCKETS)
        self._decode = _Histogram(E2E_LATENCY_BUCKETS)
        self._inference = _Histogram(E2E_LATENCY_BUCKETS)
        self._prompt = _Histogram(tokens)
        self._generation = _Histogram(tokens)
        self.histograms: dict[str, tuple[str, _Histogram]] = {
            "vllm:time_to_first_token_seconds": ("Arrival to first token, seconds", self._ttft),
            "vllm:inter_token_latency_seconds": ("Gap between a request's output tokens, seconds", self._itl),
            "vllm:e2e_request_latency_seconds": ("Arrival to last token, seconds", self._e2e),
            "vllm:request_queue_time_seconds": ("Arrival to first scheduled, seconds", self._queue),
            "vllm:request_inference_time_seconds": ("First scheduled to last token, seconds",
                                                    self._inference),
            "vllm:request_prefill_time_seconds": ("First scheduled to first token, seconds",
                                                  self._prefill),
            "vllm:request_decode_time_seconds": ("First token to last token, seconds",
                                                 self._decode),
            "vllm:request_prompt_tokens": ("Prompt tokens per finished request", self._prompt),
            "vllm:request_generation_tokens": ("Output tokens per finished request", self._generation),
        }  # fmt: skip
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(self))

    def observe(self, c: Completion) -> None:
        """Record one finished request with vLLM's phase definitions (engine seconds)."""
        self.prompt_tokens += c.input_tokens
        self.generation_tokens += c.output_tokens
        self.finished["length"] += 1
        self._ttft.observe(c.first_token_s - c.arrival_s)
        self._e2e.observe(c.end_s - c.arrival_s)
        self._queue.observe(c.prefill_start_s - c.arrival_s)
        self._prefill.observe(c.first_token_s - c.prefill_start_s)
        self._decode.observe(c.end_s - c.first_token_s)
        self._inference.observe(c.end_s - c.prefill_start_s)
        self._prompt.observe(c.input_tokens)
        self._generation.observe(c.output_tokens)
        if c.output_tokens > 1:
            self._itl.observe(c.tpot_s, c.output_tokens - 1)

    def cancelled(self, stage: Stage) -> None:
        """One request abandoned by its client: vLLM aborts it."""
        self.finished["abort"] += 1
        self.cancelled_by_stage[str(stage)] = self.cancelled_by_stage.get(str(stage), 0) + 1

    def shed(self, reason: str) -> None:
        """One request refused with 503 (``backlog_full``, ``queue_wait`` or ``not_ready``)."""
        self.shed_by_reason[reason] = self.shed_by_reason.get(reason, 0) + 1

    def exposition(self) -> bytes:
        """The text format, as ``/metrics`` serves it."""
        return generate_latest(self.registry)
