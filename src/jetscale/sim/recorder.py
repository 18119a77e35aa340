"""Where finished, refused and abandoned requests go: streaming latency statistics, SLO counts,
per-window and per-minute percentiles, and (only when asked) one row per request.

The simulator's hot path only appends: ``done`` gets each batch of ``Completion`` objects an engine
returns (and, when records are kept, ``done_replica`` the replica index of each). ``flush`` turns the
pending batch into arrays once per timeline sample, so every per-request computation runs in numpy.
Memory is bounded by one window of requests unless records are kept. Refused and abandoned requests
are counted by reason and stage (``jetscale.sim.result``: the outcomes) and count as infinitely slow
for the SLOs: they got no answer.
"""

from __future__ import annotations

import math

import numpy as np

from jetscale.engine.api import Completion, Stage
from jetscale.load.stats import Metric, Slo
from jetscale.sim.latency import CompletionArrays, LatencyStats, LogHistogram, completion_arrays, window_percentiles
from jetscale.sim.result import (
    ABANDONED_STAGES,
    OUTCOMES,
    SHED_REASONS,
    STAGE_GROUP,
    MinuteRow,
    RequestRecords,
    SloOutcome,
)

__all__ = ["Recorder"]

_WINDOW_PCTS = (50.0, 95.0, 99.0)
_SHED_CODE = {reason: OUTCOMES.index(f"shed:{reason}") for reason in SHED_REASONS}
_ABANDONED_CODE = {stage: OUTCOMES.index(f"abandoned:{group}") for stage, group in STAGE_GROUP.items()}


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0)


class Recorder:
    """Collects a run's requests; see the module docstring."""

    def __init__(self, slos: tuple[Slo, ...] = (), *, keep_records: bool = False) -> None:
        self.slos = slos
        self.keep_records = keep_records
        self.done: list[Completion] = []
        self.done_replica: list[int] = []
        self.finished = 0
        self.input_tokens_done = 0  # of the finished requests, as served (prompts cut to max_prefill_length)
        self.output_tokens_done = 0
        self.rejected = 0
        self.abandoned = 0
        self.rejected_by_reason = dict.fromkeys(SHED_REASONS, 0)
        self.abandoned_by_stage = dict.fromkeys(ABANDONED_STAGES, 0)
        self._hist = {m: LogHistogram() for m in Metric}
        self._within = [0] * len(slos)
        self._window: dict[Metric, list[np.ndarray]] = {m: [] for m in Metric}
        self._minute: dict[Metric, list[np.ndarray]] = {m: [] for m in Metric}
        self._minute_finished = 0
        self._minute_rejected = 0
        self._minute_abandoned = 0
        self._minutes_met = [0] * len(slos)
        self._minutes_total = [0] * len(slos)
        self._records: list[CompletionArrays] = []
        self._record_replicas: list[np.ndarray] = []
        # requests that did not complete: (id, replica, arrival, input tokens, output tokens, outcome code)
        self._failed: list[tuple[int, int, float, int, int, int]] = []

    # --- the hot path's entry points --------------------------------------------------------------------
    def reject(self, request_id: int, arrival_s: float, input_tokens: int, output_tokens: int, reason: str) -> None:
        """A request shed at admission, for ``reason`` (one of ``SHED_REASONS``)."""
        self.rejected += 1
        self.rejected_by_reason[reason] += 1
        self._minute_rejected += 1
        if self.keep_records:
            self._failed.append((request_id, -1, arrival_s, input_tokens, output_tokens, _SHED_CODE[reason]))

    def abandon(
        self, request_id: int, replica: int, arrival_s: float, input_tokens: int, output_tokens: int, stage: Stage
    ) -> None:
        """A request whose client gave up, cancelled in ``replica``'s engine from ``stage``."""
        self.abandoned += 1
        self.abandoned_by_stage[STAGE_GROUP[stage]] += 1
        self._minute_abandoned += 1
        if self.keep_records:
            self._failed.append((request_id, replica, arrival_s, input_tokens, output_tokens, _ABANDONED_CODE[stage]))

    def flush(self) -> None:
        """Fold the pending completions into the statistics."""
        done = self.done
        if not done:
            return
        batch = completion_arrays(done, ids=self.keep_records)
        self.done = []
        values = {Metric.TTFT: batch.ttft_s, Metric.E2E: batch.e2e_s, Metric.TPOT: batch.tpot_s}
        for metric, v in values.items():
            self._hist[metric].add(v)
            self._window[metric].append(v)
            self._minute[metric].append(v)
        for i, slo in enumerate(self.slos):
            self._within[i] += int(np.count_nonzero(values[slo.metric] <= slo.target_s))
        self.finished += len(batch)
        self.input_tokens_done += int(batch.input_tokens.sum())
        self.output_tokens_done += int(batch.output_tokens.sum())
        self._minute_finished += len(batch)
        if self.keep_records:
            self._records.append(batch)
            self._record_replicas.append(np.asarray(self.done_replica, dtype=np.int64))
            self.done_replica = []

    # --- windows ----------------------------------------------------------------------------------------
    def window(self) -> dict[str, float]:
        """TTFT and E2E p50/p95/p99 of the requests finished since the previous call (call ``flush`` first)."""
        out: dict[str, float] = {}
        for metric in (Metric.TTFT, Metric.E2E):
            pcts = window_percentiles(_concat(self._window[metric]), _WINDOW_PCTS)
            for p, value in zip(_WINDOW_PCTS, pcts, strict=True):
                out[f"{metric.value}_p{p:g}_s"] = value
        self._window = {m: [] for m in Metric}
        return out

    def minute(self, start_s: float) -> MinuteRow:
        """The minute that began at ``start_s`` and ends now (call ``flush`` first)."""
        v = {m: _concat(self._minute[m]) for m in Metric}
        ttft = window_percentiles(v[Metric.TTFT], _WINDOW_PCTS)
        e2e = window_percentiles(v[Metric.E2E], _WINDOW_PCTS)
        tpot = window_percentiles(v[Metric.TPOT], (50.0, 99.0))
        for i, slo in enumerate(self.slos):
            values = v[slo.metric]
            values = values[np.isfinite(values)]
            if len(values):
                self._minutes_total[i] += 1
                self._minutes_met[i] += float(np.percentile(values, slo.percentile)) <= slo.target_s
        row = MinuteRow(
            start_s=start_s,
            finished=self._minute_finished,
            rejected=self._minute_rejected,
            abandoned=self._minute_abandoned,
            ttft_p50_s=ttft[0],
            ttft_p95_s=ttft[1],
            ttft_p99_s=ttft[2],
            e2e_p50_s=e2e[0],
            e2e_p95_s=e2e[1],
            e2e_p99_s=e2e[2],
            tpot_p50_s=tpot[0],
            tpot_p99_s=tpot[1],
        )
        self._minute = {m: [] for m in Metric}
        self._minute_finished = self._minute_rejected = self._minute_abandoned = 0
        return row

    # --- the end ----------------------------------------------------------------------------------------
    def stats(self, metric: Metric) -> LatencyStats:
        return self._hist[metric].stats()

    def slo_outcomes(self) -> tuple[SloOutcome, ...]:
        failed = self.rejected + self.abandoned
        total = self.finished + failed
        out = []
        for i, slo in enumerate(self.slos):
            observed = self._hist[slo.metric].quantile(slo.percentile / 100.0, infinite=failed)
            out.append(
                SloOutcome(
                    label=slo.label,
                    metric=slo.metric.value,
                    percentile=slo.percentile,
                    target_s=slo.target_s,
                    observed_s=observed,
                    met=bool(observed <= slo.target_s),
                    share_within=self._within[i] / total if total else math.nan,
                    minutes_met=self._minutes_met[i],
                    minutes_total=self._minutes_total[i],
                )
            )
        return tuple(out)

    def records(self) -> RequestRecords | None:
        if not self.keep_records:
            return None
        failed = self._failed
        nan = np.full(len(failed), math.nan)
        parts = self._records
        completed = sum(len(b) for b in parts)

        def column(k: int, dtype: type) -> np.ndarray:
            return np.asarray([row[k] for row in failed], dtype=dtype)

        outcome = column(5, np.int8)
        shed = np.isin(outcome, list(_SHED_CODE.values()))
        return RequestRecords(
            request_id=np.concatenate([*(b.request_id for b in parts), column(0, np.int64)]),
            replica=np.concatenate([*self._record_replicas, column(1, np.int64)]),
            arrival_s=np.concatenate([*(b.arrival_s for b in parts), column(2, float)]),
            first_token_s=np.concatenate([*(b.first_token_s for b in parts), nan]),
            end_s=np.concatenate([*(b.end_s for b in parts), nan]),
            input_tokens=np.concatenate([*(b.input_tokens for b in parts), column(3, np.int64)]),
            output_tokens=np.concatenate([*(b.output_tokens for b in parts), column(4, np.int64)]),
            rejected=np.concatenate([np.zeros(completed, dtype=bool), shed]),
            outcome=np.concatenate([np.zeros(completed, dtype=np.int8), outcome]),
        )
