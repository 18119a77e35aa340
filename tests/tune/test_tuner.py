"""The tuner end to end through its API, on loads whose answer can be worked out by hand."""

from __future__ import annotations

import dataclasses
import math

import pytest
from tunehelp import capacity_rps, replica, setup

from jetscale.engine.presets import HbmMode
from jetscale.errors import ConfigError
from jetscale.tune.batch import parse_batch
from jetscale.tune.candidates import Signal
from jetscale.tune.tuner import TuneConfig, tune


def test_a_constant_load_gets_the_replicas_the_engine_model_says() -> None:
    # One 16-slot replica serves C requests/s at a full batch (modeled_peak). At 1.2 C, one replica is
    # overloaded and two run at 60 % of capacity, so the cheapest fleet that meets the SLO is ceil(1.2) = 2.
    config16 = replica(2)
    rate = 1.2 * capacity_rps(config16)
    needed = math.ceil(rate / capacity_rps(config16))
    assert needed == 2
    config = TuneConfig(
        replica=config16,
        setup=setup(rate, duration_s=1200.0),
        signals=(Signal.SLOTS,),
        attainment=0.85,
        max_replicas=6,
        seeds=2,
        batch=parse_batch("preset"),
        coarse_requests=0,
        oracle=False,
        max_probes=5,
    )
    result = tune(config)
    assert result.met
    winner = result.winner
    assert winner.candidate.signal is Signal.SLOTS
    assert [run.final_replicas for run in winner.runs] == [needed] * config.seeds
    # after the first minutes the recommended target holds that many replicas
    for run in winner.runs:
        steady = [n for t, n in run.series if t >= 300.0]
        assert steady.count(needed) >= 0.9 * len(steady)
    assert winner.cost == pytest.approx(needed * 1200.0 / 3600.0, rel=0.1)
    plain, gke = result.manifests()
    assert plain.metrics[0].target.average_value_milli == winner.candidate.target_milli
    assert gke.metrics[0].raw_name.startswith("prometheus.googleapis.com|")


def test_an_slo_that_cannot_be_met_names_the_best_reachable_point() -> None:
    # Twice one replica's capacity with at most one replica: no HPA can meet a 3 s E2E.
    config8 = replica(1)
    config = TuneConfig(
        replica=config8,
        setup=setup(2.0 * capacity_rps(config8), duration_s=600.0),
        signals=(Signal.BACKLOG, Signal.SLOTS),
        attainment=0.9,
        max_replicas=1,
        seeds=1,
        batch=parse_batch("preset"),
        coarse_requests=0,
        oracle=False,
        max_probes=3,
    )
    result = tune(config)
    assert not result.met
    assert result.winner.attainment == max(s.attainment for s in result.finalists)
    assert all(not s.feasible for s in result.scores)


def test_hbm_under_preallocation_is_not_tuned_and_says_why() -> None:
    config8 = dataclasses.replace(replica(1), hbm_mode=HbmMode.PREALLOCATED)
    base = TuneConfig(
        replica=config8,
        setup=setup(0.5 * capacity_rps(config8), duration_s=300.0),
        signals=(Signal.HBM,),
        seeds=1,
        batch=parse_batch("preset"),
        oracle=False,
    )
    with pytest.raises(ConfigError, match="flat under preallocation"):
        tune(base)
    result = tune(dataclasses.replace(base, signals=(Signal.SLOTS, Signal.HBM), max_probes=2))
    assert result.skipped == (Signal.HBM,)
    assert any("flat under preallocation" in w for w in result.warnings)
    assert {s.candidate.signal for s in result.scores} == {Signal.SLOTS}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"attainment": 0.0}, "'--attainment'", id="attainment-zero"),
        pytest.param({"attainment": 1.5}, "'--attainment'", id="attainment-above-one"),
        pytest.param({"seeds": 0}, "'--seeds'", id="no-seeds"),
        pytest.param({"min_replicas": 4, "max_replicas": 2}, "'--max-replicas'", id="max-below-min"),
        pytest.param({"min_replicas": 0}, "'--min-replicas'", id="min-zero"),
        pytest.param({"jobs": 0}, "'--jobs'", id="no-jobs"),
        pytest.param({"signals": ()}, "'--signals'", id="no-signals"),
    ],
)
def test_bad_configs_name_the_flag(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TuneConfig(replica=replica(1), setup=setup(1.0, duration_s=60.0), **changes)  # type: ignore[arg-type]
