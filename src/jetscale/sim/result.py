"""What a simulation returns: the timeline, per-minute latency, every HPA sync, every replica's life,
request counts, latency and SLO outcomes, and (when asked) one row per request.

A request that arrived has one outcome: **completed**; **shed** (refused at admission: ``backlog_full``
and ``queue_wait`` are the engine's reasons, ``not_ready`` means no replica was ready to route it to);
**abandoned** (its client gave up, ``Scenario.client_timeout_s``, and it was cancelled in its engine,
counted by the stage it left: ``backlog`` the prefill backlog, ``prefill_transfer`` its prefill or the
transfer and generate backlogs after it, ``decode`` a decode slot); or still in flight when the run ended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from jetscale.engine.api import Shed, Stage
from jetscale.report.timeline import Timeline
from jetscale.sim.latency import LatencyStats

__all__ = [
    "ABANDONED_STAGES",
    "NOT_READY",
    "OUTCOMES",
    "SHED_REASONS",
    "STAGE_GROUP",
    "MinuteRow",
    "ReplicaSpan",
    "RequestCounts",
    "RequestRecords",
    "SimResult",
    "SizeCounts",
    "SloOutcome",
    "SyncRow",
]

NOT_READY = "not_ready"  # shed by the router: no replica was ready
SHED_REASONS = (Shed.BACKLOG_FULL.value, Shed.QUEUE_WAIT.value, NOT_READY)
ABANDONED_STAGES = ("backlog", "prefill_transfer", "decode")
STAGE_GROUP = {  # the engine's stage a cancelled request left -> the stage it is counted under
    Stage.PREFILL_BACKLOG: "backlog",
    Stage.PREFILL: "prefill_transfer",
    Stage.TRANSFER_BACKLOG: "prefill_transfer",
    Stage.GENERATE_BACKLOG: "prefill_transfer",
    Stage.DECODE: "decode",
}
# ``RequestRecords.outcome`` codes index this; requests.csv writes the names
OUTCOMES = ("completed", *(f"shed:{r}" for r in SHED_REASONS), *(f"abandoned:{s}" for s in ABANDONED_STAGES))


@dataclass(frozen=True, slots=True, kw_only=True)
class MinuteRow:
    """Requests that ended (or were refused) in the minute starting at ``start_s``; exact percentiles."""

    start_s: float
    finished: int
    rejected: int
    abandoned: int
    ttft_p50_s: float
    ttft_p95_s: float
    ttft_p99_s: float
    e2e_p50_s: float
    e2e_p95_s: float
    e2e_p99_s: float
    tpot_p50_s: float
    tpot_p99_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncRow:
    """One HPA reconcile: what it saw and what it decided."""

    t_s: float
    current_replicas: int
    desired_replicas: int
    rescale: bool
    reason: str
    metric_replicas: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaSpan:
    """One replica's life (NaN: never reached). It costs from ``created_s`` to ``gone_s``."""

    name: str
    created_s: float
    ready_s: float
    deleted_s: float
    gone_s: float

    def alive_s(self, start_s: float, end_s: float) -> float:
        """Seconds of its life within [start_s, end_s]."""
        gone = self.gone_s if not math.isnan(self.gone_s) else end_s
        return max(0.0, min(gone, end_s) - max(self.created_s, start_s))


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCounts:
    """``arrived == done + rejected + abandoned + in_flight`` always holds (module docstring: the outcomes).
    ``rejected`` are the requests shed, by reason in ``rejected_by_reason`` (every one of
    ``SHED_REASONS``); ``abandoned`` those whose client gave up, by stage in ``abandoned_by_stage`` (every
    one of ``ABANDONED_STAGES``)."""

    arrived: int
    done: int
    rejected: int
    in_flight: int
    abandoned: int
    rejected_by_reason: dict[str, int]
    abandoned_by_stage: dict[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class SizeCounts:
    """Tokens as the workload produced them (every arrival) and as served (the finished requests, after a
    replica cut prompts longer than its ``max_prefill_length`` and outputs to what its cache leaves)."""

    offered_input_tokens: int
    offered_output_tokens: int
    prompts_cut: int  # arrivals whose prompt was longer than max_prefill_length
    served_input_tokens: int
    served_output_tokens: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SloOutcome:
    """``observed_s``: the percentile over the requests that finished, were refused or were abandoned, a
    refused or abandoned request counting as infinitely slow; ``met`` when it is within the target.
    ``share_within``: the share of those requests within the target, as ``jetscale load`` counts it.
    ``minutes_met``: minutes whose percentile met it, of ``minutes_total`` with a finished request;
    ``minute_attainment`` is their share (docs/simulate.md: *attainment* always means a share of minutes,
    as ``jetscale tune --attainment`` does)."""

    label: str
    metric: str
    percentile: float
    target_s: float
    observed_s: float
    met: bool
    share_within: float
    minutes_met: int
    minutes_total: int

    @property
    def minute_attainment(self) -> float:
        """Minutes met / minutes with a finished request (1.0 when no minute had one)."""
        return self.minutes_met / self.minutes_total if self.minutes_total else 1.0


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RequestRecords:
    """One row per request that finished, was refused or was abandoned, in no particular order.
    ``outcome``: an index into ``OUTCOMES``; ``rejected``: shed. The times are NaN for a request that did
    not complete, and ``replica`` is -1 for a refused one (an abandoned one keeps the replica it left)."""

    request_id: np.ndarray
    replica: np.ndarray
    arrival_s: np.ndarray
    first_token_s: np.ndarray
    end_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    rejected: np.ndarray
    outcome: np.ndarray

    def __len__(self) -> int:
        return len(self.request_id)

    def sorted(self) -> RequestRecords:
        order = np.argsort(self.request_id, kind="stable")
        return RequestRecords(**{name: getattr(self, name)[order] for name in _RECORD_FIELDS})

    @property
    def completed(self) -> np.ndarray:
        """True for the rows of requests that completed."""
        done: np.ndarray = self.outcome == 0
        return done

    def to_csv(self) -> str:
        rows = ["request_id,replica,arrival_s,first_token_s,end_s,input_tokens,output_tokens,rejected,outcome"]
        for i in range(len(self)):
            rows.append(
                f"{self.request_id[i]},{self.replica[i]},{self.arrival_s[i]:.6f},{self.first_token_s[i]:.6f},"
                f"{self.end_s[i]:.6f},{self.input_tokens[i]},{self.output_tokens[i]},{int(self.rejected[i])},"
                f"{OUTCOMES[self.outcome[i]]}"
            )
        return "\n".join(rows) + "\n"


_RECORD_FIELDS = (
    "request_id",
    "replica",
    "arrival_s",
    "first_token_s",
    "end_s",
    "input_tokens",
    "output_tokens",
    "rejected",
    "outcome",
)


@dataclass(slots=True, kw_only=True, eq=False)
class SimResult:
    """A finished run. Costs are counted over [0, duration_s]: the requests that were still running then
    finish in the tail (up to ``Scenario.drain_after_s`` more), which adds latency samples but no cost."""

    name: str
    duration_s: float
    chips_per_replica: int
    timeline: Timeline
    minutes: list[MinuteRow]
    metrics: list[dict[str, float]]  # per scrape: t_s and the fleet average of each metric read
    syncs: list[SyncRow]
    replicas: list[ReplicaSpan]
    counts: RequestCounts
    ttft: LatencyStats
    e2e: LatencyStats
    tpot: LatencyStats
    slos: tuple[SloOutcome, ...]
    records: RequestRecords | None = None
    events_processed: int = 0
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    sizes: SizeCounts | None = None  # what the workload offered and what was served

    @property
    def replica_seconds(self) -> float:
        return sum(span.alive_s(0.0, self.duration_s) for span in self.replicas)

    @property
    def replica_hours(self) -> float:
        return self.replica_seconds / 3600.0

    @property
    def chip_hours(self) -> float:
        return self.replica_hours * self.chips_per_replica

    @property
    def slos_met(self) -> bool:
        return all(s.met for s in self.slos)

    @property
    def attainment(self) -> float:
        """The run's attainment, as ``jetscale tune`` scores it: the worst SLO's share of minutes met, and
        no more than the share of requests served (a run that refused or abandoned 5 % cannot attain more
        than 0.95)."""
        c = self.counts
        served = 1.0 - (c.rejected + c.abandoned) / c.arrived if c.arrived else 1.0
        return min([*(s.minute_attainment for s in self.slos), served])

    def replicas_at(self, t_s: float) -> int:
        """Replicas alive (costing) at ``t_s``."""
        return sum(1 for s in self.replicas if s.created_s <= t_s and (math.isnan(s.gone_s) or s.gone_s > t_s))
