"""What ``jetscale tune`` writes: the recommended HPA (plain and GKE spellings), the replica shape it was
tuned at, why it won, the Pareto front of each signal, the winner's timeline, and every candidate tried.

``OUT/``: ``hpa.yaml`` and ``hpa-gke.yaml`` (the winner; ``kubectl apply``-able, read back by
``parse_hpa``), ``replica.yaml`` (the replica shape it was tuned at) and ``bundle.yaml`` (the two as
one deployable bundle: ``jetscale.tune.bundle``), ``report.html`` (recommendation, reasons, warnings,
finalists, fronts, replicas over time, both manifests and the shape), ``pareto-<signal>.png``,
``replicas.png`` (the winner, GKE's sample and the oracle over the full traffic), ``candidates.csv``
and ``tune.json`` (every candidate), and ``winner/`` (the shared timeline report of the winner's first
seed: ``jetscale.report.timeline``).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from jetscale.report.timeline import write_report
from jetscale.sim.cost import PriceTable, cost_of
from jetscale.tune.bundle import write_bundle
from jetscale.tune.candidates import DEFAULT_BEHAVIOR, Candidate, Signal, manifest_yaml
from jetscale.tune.evaluate import CandidateScore
from jetscale.tune.pareto import pareto_front, plot_front
from jetscale.tune.tuner import TuneResult

__all__ = ["TuneFiles", "candidate_row", "explain", "money", "write_outputs"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TuneFiles:
    report: Path
    hpa: Path
    hpa_gke: Path
    replica: Path  # the shape the HPA was tuned at
    bundle: Path  # hpa.yaml + replica.yaml as one deployable bundle


def money(result: TuneResult, replica_hours: float, prices: PriceTable) -> str:
    cost = cost_of(replica_hours, result.replica.accelerator, prices)
    text = f"{replica_hours:,.1f} replica-h"
    return text + (f" ({cost.currency} {cost.money:,.0f})" if cost.money is not None else "")


def _score(s: CandidateScore) -> str:
    """Attainment here, as everywhere in jetscale, is a share of minutes (SimResult.attainment)."""
    return f"attainment {s.attainment:.3f} of minutes (worst seed {s.worst_attainment:.3f})"


def explain(result: TuneResult, prices: PriceTable) -> list[str]:
    """Why the winner won, one sentence per fact."""
    cfg, w = result.config, result.winner
    lines = [f"Batch: {result.batch.per_device} per device ({result.batch.decode_slots} slots): {result.batch.reason}."]
    if result.met:
        lines.append(
            f"{w.candidate.label} is the cheapest configuration that met the required attainment of "
            f"{cfg.attainment:g} on the full traffic: {money(result, w.cost, prices)}, {_score(w)}."
        )
    else:
        lines.append(
            f"No configuration met the required attainment of {cfg.attainment:g}. The best reachable point is "
            f"{w.candidate.label}: {_score(w)}, {money(result, w.cost, prices)}."
        )
    for signal, best in result.best.items():
        if signal is w.candidate.signal:
            continue
        verdict = "met it" if best.feasible else "never met it"
        lines.append(
            f"{signal.value}: its best, {best.candidate.label}, costs {best.cost:,.1f} replica-h at attainment "
            f"{best.attainment:.3f} in the search ({verdict})."
        )
    base = next(
        (
            s
            for c, s in _scored(result).items()
            if c.signal is w.candidate.signal
            and c.target_milli == w.candidate.target_milli
            and c.behavior == DEFAULT_BEHAVIOR
        ),
        None,
    )
    if w.candidate.behavior not in (None, DEFAULT_BEHAVIOR) and base is not None:
        lines.append(
            f"Behavior {w.candidate.behavior.label if w.candidate.behavior else ''}: at this target the "
            f"default behavior gave attainment {base.attainment:.3f} at {base.cost:,.1f} replica-h in the search."
        )
    g = result.gke
    ratio = w.cost / g.cost if g.cost > 0 else math.nan
    lines.append(
        f"GKE's sample HPA (backlog target 10, default behavior): {money(result, g.cost, prices)}, {_score(g)} "
        f"({'meets' if g.feasible else 'misses'} the requirement); the recommendation costs {ratio:.2f}x of it."
    )
    if result.oracle is not None:
        oracle_h = result.oracle.replica_hours
        if not result.oracle.feasible:  # its cost is no lower bound then: no ratio against it
            lines.append(
                f"The oracle could not meet the SLO in some windows even at {cfg.max_replicas} replicas "
                f"({money(result, oracle_h, prices)}), so no cost ratio is given against it."
            )
        elif oracle_h > 0:
            lines.append(
                "The oracle (the cheapest schedule that meets the SLO knowing every arrival): "
                f"{money(result, oracle_h, prices)}; the recommendation costs {w.cost / oracle_h:.2f}x of it."
            )
        else:
            lines.append("The oracle needs no replica-hours (no traffic).")
    if result.compression > 1:
        lines.append(
            f"The search ran on the traffic compressed {result.compression}x (1 request in {result.compression}, "
            f"{result.compression}x faster), {cfg.seeds} seed(s) per candidate; the finalists ran on the full traffic."
        )
    return lines


def _scored(result: TuneResult) -> dict[Candidate, CandidateScore]:
    return {s.candidate: s for s in result.scores}


def candidate_row(s: CandidateScore) -> dict[str, object]:
    """One candidate as candidates.csv and tune.json write it."""
    c = s.candidate
    return {
        "signal": c.signal.value,
        "metric": c.signal.metric,
        "target": c.target,
        "behavior": c.behavior.label if c.behavior is not None else "none",
        "stage": s.stage,
        "compression": s.compression,
        "replica_hours": round(s.cost, 4),
        "attainment": round(s.attainment, 5),
        "worst_attainment": round(s.worst_attainment, 5),
        "meets": s.feasible,
        "scale_events": round(s.flaps, 2),
        "rejected": sum(r.rejected for r in s.runs),
    }


def _png(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _replicas_plot(result: TuneResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 3.8))
    for score, label, color in ((result.winner, "recommended", "tab:red"), (result.gke, "GKE sample", "tab:gray")):
        t = [p[0] / 3600 for p in score.runs[0].series]
        ax.step(t, [p[1] for p in score.runs[0].series], where="post", color=color, label=label)
    if result.oracle is not None and result.oracle.windows:
        windows = result.oracle.windows
        ax.step(
            [w.start_s / 3600 for w in windows] + [windows[-1].end_s / 3600],
            [w.replicas for w in windows] + [windows[-1].replicas],
            where="post",
            linestyle="--",
            color="black",
            label="oracle",
        )
    ax.set_xlabel("time (h)")
    ax.set_ylabel("replicas")
    ax.set_title("replicas over the full traffic (seed 0)", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _table(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_outputs(result: TuneResult, out_dir: Path, *, prices: PriceTable) -> TuneFiles:
    """Write everything of the module docstring under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg, w = result.config, result.winner
    plain, gke = result.manifests()
    verdict = "meets" if result.met else "does NOT meet (best reachable)"
    head = (
        f"jetscale tune: {w.candidate.label}, {verdict} attainment {cfg.attainment:g} of "
        + ", ".join(s.label for s in cfg.setup.slos),
        f"on {result.replica.name or result.replica.accelerator.name}, {result.batch.per_device} per device "
        f"({result.batch.decode_slots} slots); {w.cost:,.1f} replica-h over the traffic. See report.html.",
    )
    hpa_path, gke_path = out_dir / "hpa.yaml", out_dir / "hpa-gke.yaml"
    hpa_path.write_text(manifest_yaml(plain, comments=head), encoding="utf-8")
    gke_path.write_text(
        manifest_yaml(
            gke, comments=(*head, "GKE spelling: Custom Metrics Stackdriver Adapter over Managed Prometheus.")
        ),
        encoding="utf-8",
    )
    replica_path, bundle_path = write_bundle(
        out_dir, result.replica, hpa=hpa_path, hpa_gke=gke_path, tuned=_tuned(result)
    )
    rows = [candidate_row(s) for s in result.scores]
    finalists = [candidate_row(s) for s in result.finalists]
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / "candidates.csv").write_text(buffer.getvalue(), encoding="utf-8")
    why = explain(result, prices)
    doc = {
        "met": result.met,
        "winner": candidate_row(w),
        "gke_sample": candidate_row(result.gke),
        "oracle_replica_hours": result.oracle.replica_hours if result.oracle is not None else None,
        "oracle_feasible": result.oracle.feasible if result.oracle is not None else None,
        "batch": {
            "per_device": result.batch.per_device,
            "decode_slots": result.batch.decode_slots,
            "max_per_device": result.batch.max_per_device,
            "reason": result.batch.reason,
        },
        "compression": result.compression,
        "simulations": result.simulations,
        "wall_s": round(result.wall_s, 2),
        "why": why,
        "warnings": list(result.warnings),
        "finalists": finalists,
        "candidates": rows,
    }
    (out_dir / "tune.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    fronts = []
    confirmed = list(result.finalists)
    for signal in Signal:
        mine = [s for s in result.scores if s.candidate.signal is signal]
        if not mine:
            continue
        chosen = result.best.get(signal)
        png = plot_front(
            mine,
            out_dir / f"pareto-{signal.value}.png",
            title=f"{signal.value} ({signal.metric})",
            required=cfg.attainment,
            chosen=chosen,
            confirmed=[s for s in confirmed if s.candidate.signal is signal],
        )
        front = [candidate_row(s) for s in pareto_front(mine)]
        fronts.append(f"<h3>{signal.value}</h3>{_png(png)}<p>Pareto front:</p>{_table(front)}")
    timeline = w.runs[0].timeline
    winner_link = ""
    if timeline is not None:
        timeline.title = f"recommended: {w.candidate.label} (seed 0, full traffic)"
        write_report(timeline, out_dir / "winner", summary=candidate_row(w))
        winner_link = '<p><a href="winner/report.html">the recommended HPA on the full traffic: timeline</a></p>'
    replicas_png = _replicas_plot(result, out_dir / "replicas.png")
    warnings = "".join(f"<li>{html.escape(x)}</li>" for x in result.warnings) or "<li>none</li>"
    title = "jetscale tune: " + ("recommendation" if result.met else "SLO NOT MET, best reachable point")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1150px}}table{{border-collapse:collapse;margin:1em 0}}
th,td{{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:90%}}img{{max-width:100%}}
pre{{background:#f6f6f6;padding:1em}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p><b>{html.escape(w.candidate.label)}</b>: {html.escape(money(result, w.cost, prices))}, {html.escape(_score(w))}.
SLO {html.escape(", ".join(s.label for s in cfg.setup.slos))}, required attainment {cfg.attainment:g}.</p>
<h2>Why</h2><ul>{"".join(f"<li>{html.escape(x)}</li>" for x in why)}</ul>
<h2>Warnings</h2><ul>{warnings}</ul>
<h2>On the full traffic</h2>{_table(finalists)}{_png(replicas_png)}{winner_link}
<h2>Cost against attainment, per signal (search)</h2>{"".join(fronts)}
<h2>Manifests</h2><p>hpa.yaml</p><pre>{html.escape(hpa_path.read_text())}</pre>
<p>hpa-gke.yaml</p><pre>{html.escape(gke_path.read_text())}</pre>
<p>replica.yaml (deploy the HPA at this shape; bundle.yaml names both)</p>
<pre>{html.escape(replica_path.read_text())}</pre>
<h2>Every candidate</h2>{_table(rows)}
</body></html>
"""
    report = out_dir / "report.html"
    report.write_text(page, encoding="utf-8")
    return TuneFiles(report=report, hpa=hpa_path, hpa_gke=gke_path, replica=replica_path, bundle=bundle_path)


def _tuned(result: TuneResult) -> dict[str, object]:
    """What bundle.yaml records of the result (for people; the files are the recommendation)."""
    w = result.winner
    return {
        "hpa": w.candidate.label,
        "met": result.met,
        "slo": [s.label for s in result.config.setup.slos],
        "attainment_required": result.config.attainment,
        "attainment": round(w.attainment, 5),
        "replica_hours": round(w.cost, 3),
    }
