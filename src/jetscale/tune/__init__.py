"""``jetscale tune``: the HPA threshold method of GKE's JetStream autoscaling guide, automated in the simulator.

``tuner`` runs the stages (batch size, per-signal target and behavior search on a coarse pass, confirmation
on the full traffic, the oracle); ``search`` is the bracket-then-bisect search; ``phases`` orders one
signal's search; ``candidates`` renders HPAs; ``evaluate`` scores them in the simulator; ``pareto`` and
``report`` write the results. docs/tune.md describes the whole.
"""

from jetscale.tune.candidates import BehaviorChoice, Candidate, ManifestNames, Signal, parse_signals
from jetscale.tune.tuner import TuneConfig, TuneResult, tune

__all__ = [
    "BehaviorChoice",
    "Candidate",
    "ManifestNames",
    "Signal",
    "TuneConfig",
    "TuneResult",
    "parse_signals",
    "tune",
]
