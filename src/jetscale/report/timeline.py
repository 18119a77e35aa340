"""The timeline of an autoscaled fleet, recorded the same way by the live fleet and by the simulator,
and drawn the same way for both.

A ``Timeline`` is a list of ``Sample`` rows (one per metrics scrape or HPA sync: replicas by state, the
fleet-average value of each scaling signal, request rate, latency percentiles of the requests finished
since the previous sample) and a list of ``ScalingEvent`` rows (one per rescale, with the HPA's reason).
``plot_timeline`` draws the PNG figures; ``write_report`` writes a standalone HTML page with them
embedded and a summary table. Plotting uses matplotlib's Agg backend, imported on first use.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["Sample", "ScalingEvent", "Timeline", "plot_timeline", "write_report"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """The fleet at one instant ``t_s`` (seconds since the start of the run, on the run's clock)."""

    t_s: float
    replicas_desired: int
    replicas_ready: int
    replicas_starting: int = 0
    replicas_draining: int = 0
    prefill_backlog: float = math.nan  # fleet average of jetstream_prefill_backlog_size
    slots_used: float = math.nan  # fleet average of jetstream_slots_used_percentage (0..1)
    hbm_usage: float = math.nan  # fleet average of HBM used / total (0..1)
    request_rate_rps: float = math.nan  # arrivals per second since the previous sample
    ttft_p50_s: float = math.nan  # of the requests finished since the previous sample
    ttft_p95_s: float = math.nan
    ttft_p99_s: float = math.nan
    e2e_p50_s: float = math.nan
    e2e_p95_s: float = math.nan
    e2e_p99_s: float = math.nan


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingEvent:
    t_s: float
    from_replicas: int
    to_replicas: int
    reason: str


@dataclass(slots=True, kw_only=True)
class Timeline:
    """Samples and scaling events, in time order; ``targets`` maps a signal column (``prefill_backlog``,
    ``slots_used``, ``hbm_usage``) to the HPA's target for it, drawn as a dashed line."""

    samples: list[Sample] = field(default_factory=list)
    events: list[ScalingEvent] = field(default_factory=list)
    targets: dict[str, float] = field(default_factory=dict)
    title: str = ""

    def column(self, name: str) -> list[float]:
        return [float(getattr(s, name)) for s in self.samples]

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "targets": dict(self.targets),
            "samples": [asdict(s) for s in self.samples],
            "events": [asdict(e) for e in self.events],
        }

    def to_csv(self) -> str:
        names = [f.name for f in fields(Sample)]
        rows = [",".join(names)]
        rows += [
            ",".join(f"{getattr(s, n):g}" if isinstance(getattr(s, n), float) else str(getattr(s, n)) for n in names)
            for s in self.samples
        ]
        return "\n".join(rows) + "\n"


_SIGNALS = (
    ("prefill_backlog", "prefill backlog (avg/replica)"),
    ("slots_used", "slots used (fraction)"),
    ("hbm_usage", "HBM used / total"),
)


def _has_data(values: Sequence[float]) -> bool:
    return any(not math.isnan(v) for v in values)


def plot_timeline(timeline: Timeline, out_dir: Path) -> dict[str, Path]:
    """Draw ``timeline.png`` (replicas, signals, request rate, latency, scaling events marked) under
    ``out_dir``; returns the files by name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    t = timeline.column("t_s")
    signals = [(col, label) for col, label in _SIGNALS if _has_data(timeline.column(col))]
    rows = 3 + len(signals)
    fig, axes = plt.subplots(rows, 1, figsize=(11, 2.3 * rows), sharex=True)
    ax = axes[0]
    ax.step(t, timeline.column("replicas_desired"), where="post", label="desired", color="tab:blue")
    ax.step(t, timeline.column("replicas_ready"), where="post", label="ready", color="tab:green")
    starting = timeline.column("replicas_starting")
    if any(starting):
        ax.step(t, starting, where="post", label="starting", color="tab:orange", alpha=0.7)
    draining = timeline.column("replicas_draining")
    if any(draining):
        ax.step(t, draining, where="post", label="draining", color="tab:red", alpha=0.7)
    ax.set_ylabel("replicas")
    ax.legend(loc="upper left", fontsize=8)
    for i, (col, label) in enumerate(signals, start=1):
        axes[i].plot(t, timeline.column(col), color="tab:purple")
        if col in timeline.targets:
            axes[i].axhline(timeline.targets[col], linestyle="--", color="black", linewidth=1, label="target")
            axes[i].legend(loc="upper left", fontsize=8)
        axes[i].set_ylabel(label, fontsize=8)
    rate_ax = axes[len(signals) + 1]
    rate_ax.plot(t, timeline.column("request_rate_rps"), color="tab:gray")
    rate_ax.set_ylabel("requests/s")
    lat_ax = axes[-1]
    for col, style in (("ttft_p50_s", ":"), ("ttft_p95_s", "--"), ("ttft_p99_s", "-")):
        lat_ax.plot(t, timeline.column(col), linestyle=style, color="tab:blue", label=col[:-2].replace("_", " "))
    for col, style in (("e2e_p50_s", ":"), ("e2e_p95_s", "--"), ("e2e_p99_s", "-")):
        lat_ax.plot(t, timeline.column(col), linestyle=style, color="tab:red", label=col[:-2].replace("_", " "))
    lat_ax.set_ylabel("latency (s)")
    lat_ax.set_yscale("symlog", linthresh=0.1)
    lat_ax.legend(loc="upper left", fontsize=7, ncol=2)
    lat_ax.set_xlabel("time (s)")
    for event in timeline.events:
        color = "tab:green" if event.to_replicas > event.from_replicas else "tab:red"
        for a in axes:
            a.axvline(event.t_s, color=color, alpha=0.25, linewidth=1)
    if timeline.title:
        fig.suptitle(timeline.title)
    fig.tight_layout()
    path = out_dir / "timeline.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return {"timeline": path}


def _table(rows: Mapping[str, object]) -> str:
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items())
    return f"<table>{cells}</table>"


def write_report(timeline: Timeline, out_dir: Path, *, summary: Mapping[str, object] | None = None) -> Path:
    """Write ``report.html`` (figures embedded, summary table, scaling events), ``timeline.csv`` and
    ``timeline.png`` under ``out_dir``; returns the HTML path."""
    figures = plot_timeline(timeline, out_dir)
    (out_dir / "timeline.csv").write_text(timeline.to_csv(), encoding="utf-8")
    images = "".join(
        f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        for name, p in figures.items()
    )
    events = "".join(
        f"<tr><td>{e.t_s:.0f}</td><td>{e.from_replicas} &rarr; {e.to_replicas}</td>"
        f"<td>{html.escape(e.reason)}</td></tr>"
        for e in timeline.events
    )
    title = html.escape(timeline.title or "jetscale run")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;margin:1em 0}}
th,td{{border:1px solid #ccc;padding:3px 8px;text-align:left}}img{{max-width:100%}}</style></head><body>
<h1>{title}</h1>
{_table(summary or {})}
{images}
<h2>Scaling events</h2><table><tr><th>t (s)</th><th>replicas</th><th>reason</th></tr>{events}</table>
</body></html>
"""
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
