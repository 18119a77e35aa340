"""``tune``'s report: no cost ratio against an oracle that could not meet the SLO (its cost is no lower bound)."""

from __future__ import annotations

import math

from tunehelp import capacity_rps, replica, setup

from jetscale.sim.cost import PriceTable
from jetscale.tune.batch import parse_batch
from jetscale.tune.candidates import Signal
from jetscale.tune.report import explain
from jetscale.tune.tuner import TuneConfig, tune


def test_tune_gives_no_ratio_against_an_infeasible_oracle() -> None:
    config8 = replica(1)
    config = TuneConfig(
        replica=config8,
        setup=setup(2.0 * capacity_rps(config8), duration_s=300.0),  # twice what one replica serves
        signals=(Signal.SLOTS,),
        attainment=0.9,
        max_replicas=1,
        seeds=1,
        batch=parse_batch("preset"),
        coarse_requests=0,
        oracle=True,
        oracle_window_s=60.0,
        max_probes=2,
    )
    result = tune(config)
    assert result.oracle is not None and not result.oracle.feasible
    lines = explain(result, PriceTable())
    oracle_line = next(line for line in lines if line.startswith("The oracle"))
    assert "no cost ratio is given against it" in oracle_line and "x of it" not in oracle_line
    assert not math.isnan(result.oracle.replica_hours)
