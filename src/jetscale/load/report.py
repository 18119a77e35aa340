"""What a load run leaves behind: the summary table, JSON, CSVs, and the HTML report with plots.

Files in ``--out``:

- ``summary.json``: the config, how the run went (generator process facts) and the full ``Summary``
  (overall, SLOs, generator health, every interval); NaN is written as ``null``;
- ``requests.csv``: one row per request sent: times, TTFT, TPOT, E2E, lateness, tokens, outcome;
- ``timeseries.csv``: one row per interval: rates, throughput, in flight, latency percentiles, errors;
- ``report.html`` and ``plots/*.png`` (``jetscale.load.plots``), unless ``--no-html``;
- ``config.json``, ``records.npz``, ``run.json``: the generator's inputs and raw output.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from jetscale.load.config import LoadConfig
from jetscale.load.records import Outcome, Records
from jetscale.load.stats import Dist, Summary

__all__ = ["render_summary", "to_jsonable", "write_outputs"]


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, numpy scalars and NaN made JSON-safe (NaN and inf become null)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _ms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def render_summary(config: LoadConfig, summary: Summary, info: dict[str, Any]) -> Group:
    """The summary as rich renderables: counts and throughput, latency percentiles, SLOs, generator health."""
    head = Table(
        title=f"jetscale load: {config.api.value} {config.target.url}, {config.mode.value} loop", show_header=False
    )
    head.add_column(style="bold")
    head.add_column()
    head.add_row("workload", str(info.get("workload", config.workload)))
    if info.get("shape"):
        head.add_row("shape", str(info["shape"]))
    head.add_row("elapsed", f"{summary.elapsed_s:.1f} s ({info.get('ended', '?')})")
    head.add_row(
        "requests",
        f"{summary.sent} sent, {summary.ok} ok, {summary.failed} failed, {summary.unfinished} unfinished",
    )
    head.add_row(
        "throughput",
        f"{summary.request_rps:.2f} req/s, {summary.output_tps:.0f} output tok/s, {summary.input_tps:.0f} input tok/s",
    )
    if summary.errors:
        head.add_row("errors", ", ".join(f"{k}: {v}" for k, v in summary.errors.items()))
    lat = Table(title="latency (successful requests)")
    for col in ("", "n", "mean", "p50", "p90", "p95", "p99", "max"):
        lat.add_column(col, justify="right")
    for name, d in (("TTFT", summary.ttft), ("TPOT", summary.tpot), ("E2E", summary.e2e)):
        lat.add_row(name, str(d.count), *(_ms(x) for x in (d.mean_s, d.p50_s, d.p90_s, d.p95_s, d.p99_s, d.max_s)))
    parts: list[Any] = [head, lat]
    if summary.slos:
        slo = Table(title="SLOs")
        for col in ("objective", "observed", "met", "requests within", "intervals met"):
            slo.add_column(col, justify="right")
        for r in summary.slos:
            slo.add_row(
                r.label,
                _ms(r.observed_s),
                "yes" if r.met else "[red]NO[/]",
                f"{100 * r.share_within:.1f}%",
                f"{r.intervals_met}/{r.intervals_total}",
            )
        parts.append(slo)
    g = summary.generator
    style = "green" if g.kept_up else "bold red"
    parts.append(Text(f"generator: {g.verdict}", style=style))
    return Group(*parts)


def _dist_cells(prefix: str, d: Dist) -> dict[str, float]:
    return {
        f"{prefix}_p50_s": d.p50_s,
        f"{prefix}_p90_s": d.p90_s,
        f"{prefix}_p95_s": d.p95_s,
        f"{prefix}_p99_s": d.p99_s,
    }


def _fmt(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value:.6g}"


def write_requests_csv(records: Records, path: Path) -> None:
    columns = {
        "scheduled_s": records.scheduled_s,
        "sent_s": records.sent_s,
        "lateness_s": records.lateness_s,
        "ttft_s": records.ttft_s,
        "tpot_s": records.tpot_s,
        "e2e_s": records.e2e_s,
    }
    floats = [[_fmt(v) for v in col.tolist()] for col in columns.values()]
    labels = [Outcome(o).label(c) for o, c in zip(records.outcome.tolist(), records.code.tolist(), strict=True)]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*columns, "input_tokens", "max_tokens", "output_tokens", "outcome"])
        ints = (records.input_tokens.tolist(), records.max_tokens.tolist(), records.output_tokens.tolist())
        for i in range(len(records)):
            w.writerow([*(col[i] for col in floats), ints[0][i], ints[1][i], ints[2][i], labels[i]])


def write_timeseries_csv(summary: Summary, path: Path) -> None:
    kinds = sorted({k for iv in summary.intervals for k in iv.errors})
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        header: list[str] | None = None
        for iv in summary.intervals:
            row: dict[str, Any] = {
                "start_s": iv.start_s,
                "width_s": iv.width_s,
                "scheduled_rps": iv.scheduled_rps,
                "sent_rps": iv.sent_rps,
                "completed_rps": iv.completed_rps,
                "ok_rps": iv.ok_rps,
                "input_tps": iv.input_tps,
                "output_tps": iv.output_tps,
                "in_flight": iv.in_flight,
                **_dist_cells("ttft", iv.ttft),
                **_dist_cells("tpot", iv.tpot),
                **_dist_cells("e2e", iv.e2e),
                "lateness_p99_s": iv.lateness_p99_s,
                **{f"errors[{k}]": iv.errors.get(k, 0) for k in kinds},
            }
            if header is None:
                header = list(row)
                w.writerow(header)
            w.writerow([_fmt(v) if isinstance(v, float) else v for v in row.values()])


def write_outputs(config: LoadConfig, summary: Summary, records: Records, info: dict[str, Any], out: Path) -> None:
    doc = {"config": asdict(config), "run": info, "summary": asdict(summary)}
    doc["summary"]["slos_met"] = summary.slos_met
    (out / "summary.json").write_text(json.dumps(to_jsonable(doc), indent=2, allow_nan=False))
    write_requests_csv(records, out / "requests.csv")
    write_timeseries_csv(summary, out / "timeseries.csv")
    if config.html:
        from jetscale.load.plots import write_html

        write_html(config, summary, info, out)
