"""A run in a few numbers: requests, latency, SLOs, cost against the oracle, scaling; and the table
that compares several manifests on one trace.

Two shares, two names (docs/simulate.md): an SLO's *share within* is the share of requests within its
target; a run's *attainment* is the worst SLO's share of minutes met, capped by the share of requests
served, exactly as ``jetscale tune`` scores a candidate against ``--attainment``. No cost ratio is given
against an oracle that could not meet the SLO in some window: its cost is then no lower bound."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from rich.table import Table

from jetscale.sim.cost import Cost, PriceTable, cost_of
from jetscale.sim.latency import LatencyStats
from jetscale.sim.oracle import OracleSchedule
from jetscale.sim.result import RequestCounts, SimResult, SizeCounts, SloOutcome
from jetscale.sim.scenario import Scenario

__all__ = ["RunSummary", "compare_table", "summarize_run"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    name: str
    hpa: str
    preset: str
    traffic: str
    duration_s: float
    seed: int
    router: str
    startup: str
    prefill_backlog_limit: int  # per replica: admission by count (the engine sheds backlog_full beyond it)
    max_queue_wait_s: float | None  # admission by time (sheds queue_wait); None: none
    client_timeout_s: float | None  # clients give up after this (abandoned); None: they wait
    counts: RequestCounts
    ttft: LatencyStats
    e2e: LatencyStats
    tpot: LatencyStats
    slos: tuple[SloOutcome, ...]
    attainment: float
    cost: Cost
    oracle: Cost | None
    oracle_feasible: bool | None
    scale_ups: int
    scale_downs: int
    max_replicas: int
    mean_ready_replicas: float
    wall_s: float
    partial: bool = False  # stopped early (Ctrl-C): counts and cost up to ``duration_s``
    sizes: SizeCounts | None = None
    max_prefill_length: int = 0

    @property
    def throughput(self) -> dict[str, float]:
        """Completed requests and their tokens (as served) per simulated second of the run."""
        seconds = self.duration_s if self.duration_s > 0 else math.nan
        sizes = self.sizes
        return {
            "requests_s": self.counts.done / seconds,
            "input_tokens_s": (sizes.served_input_tokens if sizes else math.nan) / seconds,
            "output_tokens_s": (sizes.served_output_tokens if sizes else math.nan) / seconds,
        }

    @property
    def cost_ratio(self) -> float:
        """Cost / oracle cost (replica-hours); NaN without an oracle or with an infeasible one."""
        if self.oracle is None or not self.oracle_feasible or self.oracle.replica_hours <= 0:
            return math.nan
        return self.cost.replica_hours / self.oracle.replica_hours

    @property
    def slos_met(self) -> bool:
        return all(s.met for s in self.slos)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["cost_ratio"] = self.cost_ratio
        data["slos_met"] = self.slos_met
        data["simulated_requests_per_wall_s"] = self.counts.arrived / self.wall_s if self.wall_s > 0 else math.nan
        data["throughput"] = self.throughput
        return data

    def rows(self) -> dict[str, str]:
        """Label -> text, for the HTML report's table."""
        c = self.counts
        rows = {
            "scenario": f"{self.hpa} on {self.preset}; {self.traffic}",
            "duration / seed / router": f"{self.duration_s:g} s / {self.seed} / {self.router}",
            "start-up": self.startup,
            "admission / clients": (
                f"prefill backlog limit {self.prefill_backlog_limit}, max queue wait {_opt_s(self.max_queue_wait_s)}"
                f" per replica; client timeout {_opt_s(self.client_timeout_s)}"
            ),
            "requests": (
                f"{c.arrived} arrived, {c.done} done, {c.rejected} refused, {c.abandoned} abandoned, "
                f"{c.in_flight} still running"
            ),
            **({"refused by reason": _counts(c.rejected_by_reason)} if c.rejected else {}),
            **({"abandoned by stage": _counts(c.abandoned_by_stage)} if self.client_timeout_s is not None else {}),
            "throughput": (
                f"{self.throughput['requests_s']:,.2f} req/s, {self.throughput['input_tokens_s']:,.0f} input and "
                f"{self.throughput['output_tokens_s']:,.0f} output tokens/s (completed, per simulated second)"
            ),
            **self._size_rows(),
            "TTFT p50 / p95 / p99": _triple(self.ttft),
            "E2E p50 / p95 / p99": _triple(self.e2e),
            "TPOT p50 / p95 / p99": _triple(self.tpot),
        }
        for slo in self.slos:
            verdict = "met" if slo.met else "MISSED"
            rows[f"SLO {slo.label}"] = (
                f"{verdict}: observed {_s(slo.observed_s)}, {100 * slo.share_within:.2f}% of requests within, "
                f"{slo.minutes_met}/{slo.minutes_total} minutes met"
            )
        if self.slos:
            rows["attainment"] = f"{self.attainment:.4f} (worst SLO's share of minutes met, as jetscale tune scores)"
        rows["cost"] = self.cost.describe()
        if self.oracle is not None:
            if self.oracle_feasible:
                rows["oracle cost"] = self.oracle.describe()
                rows["cost / oracle"] = f"{self.cost_ratio:.2f}x"
            else:
                rows["oracle cost"] = self.oracle.describe() + " (infeasible: some windows miss the SLO at its maximum)"
                rows["cost / oracle"] = "- (no ratio against an infeasible oracle; raise --oracle-max)"
        rows["scaling"] = (
            f"{self.scale_ups} up, {self.scale_downs} down; max {self.max_replicas} replicas, "
            f"mean {self.mean_ready_replicas:.2f} ready"
        )
        if self.wall_s > 0:
            rows["simulation"] = f"{self.wall_s:.1f} s wall, {c.arrived / self.wall_s:,.0f} requests/s"
        return rows

    def _size_rows(self) -> dict[str, str]:
        sizes, c = self.sizes, self.counts
        if sizes is None or c.arrived == 0:
            return {}
        offered_in, offered_out = sizes.offered_input_tokens / c.arrived, sizes.offered_output_tokens / c.arrived
        offered = f"{offered_in:,.1f} in / {offered_out:,.1f} out"
        served = (f"{sizes.served_input_tokens / c.done:,.1f} in / {sizes.served_output_tokens / c.done:,.1f} out"
                  if c.done else "-")  # fmt: skip
        rows = {"request sizes (mean)": f"offered {offered}; served {served}"}
        if sizes.prompts_cut:
            rows["prompts cut"] = (
                f"WARNING: {sizes.prompts_cut} ({sizes.prompts_cut / c.arrived:.1%}) longer than max_prefill_length "
                f"{self.max_prefill_length}, cut to it (the replica keeps their last tokens)"
            )
        return rows


def _s(value: float) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.3f}s" if value < 10 else f"{value:.1f}s"


def _opt_s(value: float | None) -> str:
    return "none" if value is None else f"{value:g}s"


_LABELS = {"backlog_full": "backlog full", "queue_wait": "queue wait", "not_ready": "no replica ready",
           "prefill_transfer": "prefill/transfer"}  # fmt: skip


def _counts(by: dict[str, int]) -> str:
    return ", ".join(f"{_LABELS.get(key, key)} {n}" for key, n in by.items())


def _triple(stats: LatencyStats) -> str:
    return f"{_s(stats.p50_s)} / {_s(stats.p95_s)} / {_s(stats.p99_s)}"


def summarize_run(
    result: SimResult, scenario: Scenario, *, prices: PriceTable, oracle: OracleSchedule | None = None
) -> RunSummary:
    accelerator = scenario.replica.accelerator
    events = result.timeline.events
    samples = result.timeline.samples
    ready = [s.replicas_ready for s in samples]
    live = [s.replicas_ready + s.replicas_starting for s in samples]
    return RunSummary(
        name=result.name,
        hpa=scenario.hpa.name if scenario.hpa is not None else f"fixed {scenario.start_replicas} replicas",
        preset=scenario.replica.name or scenario.replica.accelerator.name,
        traffic=scenario.traffic.describe(),
        duration_s=scenario.duration_s,
        seed=scenario.seed,
        router=scenario.router,
        startup=scenario.startup.describe(),
        prefill_backlog_limit=scenario.replica.prefill_backlog_limit,
        max_queue_wait_s=scenario.replica.max_queue_wait_s,
        client_timeout_s=scenario.client_timeout_s,
        counts=result.counts,
        ttft=result.ttft,
        e2e=result.e2e,
        tpot=result.tpot,
        slos=result.slos,
        attainment=result.attainment if result.slos else math.nan,
        cost=cost_of(result.replica_hours, accelerator, prices),
        oracle=cost_of(oracle.replica_hours, accelerator, prices) if oracle is not None else None,
        oracle_feasible=oracle.feasible if oracle is not None else None,
        scale_ups=sum(1 for e in events if e.to_replicas > e.from_replicas),
        scale_downs=sum(1 for e in events if e.to_replicas < e.from_replicas),
        max_replicas=max(live, default=0),
        mean_ready_replicas=sum(ready) / len(ready) if ready else math.nan,
        wall_s=result.wall_s,
        sizes=result.sizes,
        max_prefill_length=scenario.replica.max_prefill_length,
    )


def compare_table(summaries: Sequence[RunSummary], *, title: str = "") -> Table:
    """One row per run: cost, cost / oracle, SLOs met, attainment, p99s, refusals, abandoned requests,
    scale events. On a narrow terminal a long run name folds rather than being cut; files and pipes get
    it whole."""
    table = Table(title=title or None)
    for column in ("run", "replica-h", "cost", "/ oracle", "SLOs met", "attainment", "TTFT p99", "E2E p99",
                   "refused", "abandoned", "up/down"):  # fmt: skip
        if column == "run":
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, justify="right")
    for s in summaries:
        money = f"{s.cost.money:,.2f}" if s.cost.money is not None else "-"
        met = f"{sum(o.met for o in s.slos)}/{len(s.slos)}" if s.slos else "-"
        attained = f"{100 * s.attainment:.1f}%" if s.slos else "-"
        ratio = f"{s.cost_ratio:.2f}x" if not math.isnan(s.cost_ratio) else "-"
        table.add_row(
            s.name or s.hpa,
            f"{s.cost.replica_hours:,.2f}",
            money,
            ratio,
            met,
            attained,
            _s(s.ttft.p99_s),
            _s(s.e2e.p99_s),
            str(s.counts.rejected),
            str(s.counts.abandoned),
            f"{s.scale_ups}/{s.scale_downs}",
        )
    return table
