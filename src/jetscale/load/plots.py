"""The HTML report of a load run and its plots (matplotlib, Agg backend, PNG).

Three figures, written to ``plots/`` and embedded in ``report.html`` (so the page stands alone):

- ``latency.png``: TTFT, TPOT and E2E p50 / p95 / p99 per interval, with the SLO targets as lines;
- ``throughput.png``: scheduled vs sent vs completed requests per second, in flight, and output tokens/s;
- ``errors.png``: errors per interval by kind, and the generator's p99 lateness.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from jetscale.load.config import LoadConfig
from jetscale.load.stats import Dist, Metric, Summary

__all__ = ["write_html", "write_plots"]


def _series(summary: Summary, pick: Any) -> list[float]:
    return [float(pick(iv)) for iv in summary.intervals]


def write_plots(summary: Summary, plots: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots.mkdir(parents=True, exist_ok=True)
    t = [iv.start_s + iv.width_s / 2 for iv in summary.intervals]
    files: dict[str, Path] = {}

    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    for ax, (metric, title) in zip(
        axes, ((Metric.TTFT, "TTFT"), (Metric.TPOT, "TPOT"), (Metric.E2E, "E2E")), strict=True
    ):
        for pct, style in ((50, "-"), (95, "--"), (99, ":")):
            values = _series(summary, lambda iv, m=metric, p=pct: getattr(iv, m.value).at(p))
            ax.plot(t, values, style, label=f"p{pct}")
        for slo in summary.slos:
            if slo.metric is metric:
                ax.axhline(slo.target_s, color="red", linewidth=1, label=f"SLO p{slo.percentile:g}")
        ax.set_ylabel(f"{title} (s)")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
    axes[-1].set_xlabel("time since start (s)")
    fig.suptitle("Latency percentiles per interval (successful requests, by end time)")
    fig.tight_layout()
    files["latency"] = plots / "latency.png"
    fig.savefig(files["latency"], dpi=90)
    plt.close(fig)

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    if any(math.isfinite(v) for v in _series(summary, lambda iv: iv.scheduled_rps)):
        ax1.plot(t, _series(summary, lambda iv: iv.scheduled_rps), "k--", label="scheduled")
    ax1.plot(t, _series(summary, lambda iv: iv.sent_rps), label="sent")
    ax1.plot(t, _series(summary, lambda iv: iv.completed_rps), label="completed")
    ax1.plot(t, _series(summary, lambda iv: iv.ok_rps), label="ok")
    ax1.set_ylabel("requests/s")
    twin = ax1.twinx()
    twin.plot(t, _series(summary, lambda iv: iv.in_flight), color="grey", alpha=0.5, label="in flight")
    twin.set_ylabel("in flight")
    ax1.legend(loc="upper left", fontsize="small")
    ax1.grid(alpha=0.3)
    ax2.plot(t, _series(summary, lambda iv: iv.output_tps), label="output tokens/s")
    ax2.plot(t, _series(summary, lambda iv: iv.input_tps), label="input tokens/s")
    ax2.set_ylabel("tokens/s")
    ax2.set_xlabel("time since start (s)")
    ax2.legend(loc="upper left", fontsize="small")
    ax2.grid(alpha=0.3)
    fig.suptitle("Throughput per interval")
    fig.tight_layout()
    files["throughput"] = plots / "throughput.png"
    fig.savefig(files["throughput"], dpi=90)
    plt.close(fig)

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    kinds = sorted({k for iv in summary.intervals for k in iv.errors})
    bottom = [0.0] * len(t)
    width = [iv.width_s * 0.9 for iv in summary.intervals]
    for kind in kinds:
        counts = [float(iv.errors.get(kind, 0)) for iv in summary.intervals]
        ax1.bar(t, counts, width=width, bottom=bottom, label=kind)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ax1.set_ylabel("errors per interval")
    if kinds:
        ax1.legend(loc="upper left", fontsize="small")
    else:
        ax1.text(0.5, 0.5, "no errors", transform=ax1.transAxes, ha="center", va="center")
    ax1.grid(alpha=0.3)
    ax2.plot(t, [v * 1000 for v in _series(summary, lambda iv: iv.lateness_p99_s)], color="purple")
    ax2.set_ylabel("send lateness p99 (ms)")
    ax2.set_xlabel("time since start (s)")
    ax2.grid(alpha=0.3)
    fig.suptitle("Errors and load-generator lateness")
    fig.tight_layout()
    files["errors"] = plots / "errors.png"
    fig.savefig(files["errors"], dpi=90)
    plt.close(fig)
    return files


def _cell(seconds: float) -> str:
    return "-" if not math.isfinite(seconds) else f"{seconds * 1000:.1f} ms"


def _dist_row(name: str, d: Dist) -> str:
    cells = "".join(f"<td>{_cell(x)}</td>" for x in (d.mean_s, d.p50_s, d.p90_s, d.p95_s, d.p99_s, d.max_s))
    return f"<tr><th>{name}</th><td>{d.count}</td>{cells}</tr>"


def write_html(config: LoadConfig, summary: Summary, info: dict[str, Any], out: Path) -> Path:
    files = write_plots(summary, out / "plots")
    esc = html.escape
    g = summary.generator
    rows = [
        ("target", f"{config.api.value} {config.target.url}"),
        ("mode", config.mode.value),
        ("workload", str(info.get("workload", config.workload))),
        ("shape", str(info.get("shape") or "-")),
        ("elapsed", f"{summary.elapsed_s:.1f} s ({info.get('ended', '?')})"),
        ("requests", f"{summary.sent} sent, {summary.ok} ok, {summary.failed} failed, {summary.unfinished} unfinished"),
        ("throughput", f"{summary.request_rps:.2f} req/s, {summary.output_tps:.0f} output tok/s"),
        ("errors", ", ".join(f"{k}: {v}" for k, v in summary.errors.items()) or "none"),
        ("seed", str(config.seed)),
    ]
    slo_rows = "".join(
        f"<tr><td>{esc(r.label)}</td><td>{_cell(r.observed_s)}</td><td class={'ok' if r.met else 'bad'}>"
        f"{'met' if r.met else 'missed'}</td><td>{100 * r.share_within:.1f}%</td>"
        f"<td>{r.intervals_met}/{r.intervals_total}</td></tr>"
        for r in summary.slos
    )
    slo_head = "<tr><th>objective</th><th>observed</th><th></th><th>requests within</th><th>intervals met</th></tr>"
    slo_table = f"<h2>SLOs</h2><table>{slo_head}{slo_rows}</table>" if summary.slos else ""
    images = "".join(
        f'<h2>{esc(name)}</h2><img alt="{esc(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(path.read_bytes()).decode()}"><p><a href="plots/{path.name}">{path.name}</a></p>'
        for name, path in files.items()
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>jetscale load report</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} th{{text-align:left}} .ok{{color:green}}
.bad{{color:#b00;font-weight:bold}} img{{max-width:100%}}</style></head><body>
<h1>jetscale load report</h1>
<table>{"".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)}</table>
<p class="{"ok" if g.kept_up else "bad"}">Generator: {esc(g.verdict)}</p>
<h2>Latency (successful requests)</h2>
<table><tr><th></th><th>n</th><th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th></tr>
{_dist_row("TTFT", summary.ttft)}{_dist_row("TPOT", summary.tpot)}{_dist_row("E2E", summary.e2e)}</table>
{slo_table}
{images}
<p>Data: <a href="summary.json">summary.json</a>, <a href="requests.csv">requests.csv</a>,
<a href="timeseries.csv">timeseries.csv</a>. TTFT: first response bytes after sending; TPOT: (end - first token) /
(output tokens - 1); E2E: end of response after sending; all measured by the client.</p>
</body></html>
"""
    path = out / "report.html"
    path.write_text(page)
    return path
