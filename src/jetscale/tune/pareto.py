"""The Pareto front of cost against SLO attainment, and its plot.

A candidate is on the front when no other one is at most as expensive and at least as good, and strictly
better in one of the two (lower replica-hours, or higher attainment). The front is what a tuner can offer:
each point is the cheapest way to reach its attainment. The plot (matplotlib, Agg) shows every candidate
of one signal, its front, the required attainment and the chosen point.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jetscale.tune.evaluate import CandidateScore

__all__ = ["dominates", "pareto_front", "plot_front"]


def dominates(a: CandidateScore, b: CandidateScore) -> bool:
    """``a`` is at most as costly and at least as good as ``b``, and strictly better in one."""
    no_worse = a.cost <= b.cost and a.attainment >= b.attainment
    return no_worse and (a.cost < b.cost or a.attainment > b.attainment)


def pareto_front(scores: Sequence[CandidateScore]) -> list[CandidateScore]:
    """The candidates no other dominates, cheapest first (one of each equal pair)."""
    front: list[CandidateScore] = []
    for score in sorted(scores, key=lambda s: (s.cost, -s.attainment)):
        if front and front[-1].attainment >= score.attainment:
            continue  # a cheaper (or as cheap) candidate is at least as good
        front.append(score)
    return front


def plot_front(
    scores: Sequence[CandidateScore],
    path: Path,
    *,
    title: str,
    required: float,
    chosen: CandidateScore | None = None,
    confirmed: Sequence[CandidateScore] = (),
) -> Path:
    """Every candidate of ``scores`` (cost vs attainment), the front as a line, the requirement dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    ax.scatter([s.cost for s in scores], [s.attainment for s in scores], color="tab:gray", s=18, label="candidates")
    front = pareto_front(scores)
    ax.plot([s.cost for s in front], [s.attainment for s in front], color="tab:blue", marker="o", label="Pareto front")
    for s in front:
        ax.annotate(
            f"{s.candidate.target:g}", (s.cost, s.attainment), fontsize=7, xytext=(3, -9), textcoords="offset points"
        )
    if confirmed:
        ax.scatter(
            [s.cost for s in confirmed],
            [s.attainment for s in confirmed],
            marker="s",
            facecolors="none",
            edgecolors="tab:green",
            s=60,
            label="full traffic",
        )
    if chosen is not None:
        ax.scatter([chosen.cost], [chosen.attainment], marker="*", color="tab:red", s=160, zorder=5, label="chosen")
    ax.axhline(required, linestyle="--", color="black", linewidth=1, label=f"required {required:g}")
    ax.set_xlabel("cost (replica-hours over the whole traffic)")
    ax.set_ylabel("SLO attainment (share of minutes)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
