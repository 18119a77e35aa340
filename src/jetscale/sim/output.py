"""The files a simulation writes, and the overlay plot of a comparison.

One run's directory: ``report.html`` (``jetscale.report.timeline.write_report``: the same plots as the
live fleet's), ``timeline.csv``, ``timeline.png``, ``summary.json``, ``latency_per_minute.csv``,
``metrics.csv`` (fleet average of every metric scraped), ``hpa_syncs.csv`` (every reconcile),
``replicas.csv`` (each replica's life), ``oracle.csv`` (the oracle's schedule) and, with ``--records``,
``requests.csv`` (one row per request, its ``outcome`` one of ``jetscale.sim.result.OUTCOMES``). A
comparison adds ``compare.json``, ``compare.png`` (replicas over time, one line per manifest, the oracle
dashed) and ``compare.html``.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path

from jetscale.report.jsondoc import dumps
from jetscale.report.timeline import write_report
from jetscale.sim.oracle import OracleSchedule
from jetscale.sim.result import MinuteRow, SimResult
from jetscale.sim.summary import RunSummary

__all__ = ["write_comparison", "write_run"]


def _csv(rows: Sequence[dict[str, object]], header: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def write_run(result: SimResult, summary: RunSummary, out_dir: Path, *, oracle: OracleSchedule | None = None) -> Path:
    """Write one run's files under ``out_dir``; returns the HTML report's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(dumps(summary.to_dict()), encoding="utf-8")
    minute_fields = [f.name for f in fields(MinuteRow)]
    (out_dir / "latency_per_minute.csv").write_text(
        _csv([asdict(m) for m in result.minutes], minute_fields), encoding="utf-8"
    )
    if result.metrics:
        (out_dir / "metrics.csv").write_text(_csv(result.metrics, list(result.metrics[0])), encoding="utf-8")  # type: ignore[arg-type]
    sync_rows = [asdict(s) for s in result.syncs]
    if sync_rows:
        (out_dir / "hpa_syncs.csv").write_text(_csv(sync_rows, list(sync_rows[0])), encoding="utf-8")
    replica_rows = [asdict(r) for r in result.replicas]
    if replica_rows:
        (out_dir / "replicas.csv").write_text(_csv(replica_rows, list(replica_rows[0])), encoding="utf-8")
    if oracle is not None:
        rows = [asdict(w) for w in oracle.windows]
        (out_dir / "oracle.csv").write_text(_csv(rows, list(rows[0]) if rows else ["start_s"]), encoding="utf-8")
    if result.records is not None:
        (out_dir / "requests.csv").write_text(result.records.sorted().to_csv(), encoding="utf-8")
    return write_report(result.timeline, out_dir, summary=summary.rows())


def _overlay(results: Sequence[SimResult], oracle: OracleSchedule | None, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4))
    for result in results:
        t = result.timeline.column("t_s")
        ax.step(t, result.timeline.column("replicas_ready"), where="post", label=f"{result.name} (ready)")
    if oracle is not None and oracle.windows:
        times = [w.start_s for w in oracle.windows] + [oracle.windows[-1].end_s]
        counts = [w.replicas for w in oracle.windows] + [oracle.windows[-1].replicas]
        ax.step(times, counts, where="post", linestyle="--", color="black", label="oracle")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("replicas")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("replicas over time")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_comparison(
    results: Sequence[SimResult],
    summaries: Sequence[RunSummary],
    out_dir: Path,
    *,
    oracle: OracleSchedule | None = None,
) -> Path:
    """Write the comparison files under ``out_dir`` (each run's own files go in a sub-folder by the
    caller); returns the path of ``compare.html``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "compare.json").write_text(dumps([s.to_dict() for s in summaries]), encoding="utf-8")
    png = _overlay(results, oracle, out_dir / "compare.png")
    header = ["run", "replica-hours", "cost", "cost / oracle", "SLOs (share of requests within)", "attainment",
              "TTFT p99 (s)", "E2E p99 (s)", "refused", "abandoned", "scale up / down", "report"]  # fmt: skip
    body = []
    for s in summaries:
        money = f"{s.cost.currency} {s.cost.money:,.2f}" if s.cost.money is not None else "-"
        slos = "; ".join(f"{o.label}: {'met' if o.met else 'MISSED'} ({100 * o.share_within:.2f}%)" for o in s.slos)
        ratio = f"{s.cost_ratio:.2f}x" if math.isfinite(s.cost_ratio) else "-"
        attained = f"{s.attainment:.4f}" if math.isfinite(s.attainment) else "-"
        cells = [s.name, f"{s.cost.replica_hours:,.2f}", money, ratio, slos or "-", attained,
                 f"{s.ttft.p99_s:.3f}", f"{s.e2e.p99_s:.3f}", str(s.counts.rejected), str(s.counts.abandoned),
                 f"{s.scale_ups} / {s.scale_downs}"]  # fmt: skip
        link = f'<a href="{html.escape(s.name)}/report.html">report</a>'
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + f"<td>{link}</td></tr>")
    image = base64.b64encode(png.read_bytes()).decode()
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>jetscale simulate --compare</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;margin:1em 0}}
th,td{{border:1px solid #ccc;padding:3px 8px;text-align:left}}img{{max-width:100%}}</style></head><body>
<h1>HPA manifests on one trace</h1>
<table><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in header)}</tr>{"".join(body)}</table>
<img alt="replicas over time" src="data:image/png;base64,{image}">
</body></html>
"""
    path = out_dir / "compare.html"
    path.write_text(page, encoding="utf-8")
    return path
