"""Scoring runs: the same numbers in a worker pool as in-process, attainment, and the signal warnings."""

from __future__ import annotations

import pytest
from tunehelp import capacity_rps, replica, score, setup

from jetscale.tune.candidates import BehaviorChoice, Candidate, Signal, hpa_for
from jetscale.tune.evaluate import LocalEvaluator, PoolEvaluator, RunSpec, rank_key
from jetscale.tune.signals import pinned_warning, saturated_slots


def _specs() -> list[RunSpec]:
    config = replica(1)
    candidates = [
        Candidate(signal=Signal.SLOTS, target_milli=800),
        Candidate(signal=Signal.BACKLOG, target_milli=4000, behavior=BehaviorChoice(down="gradual")),
    ]
    return [
        RunSpec(replica=config, hpa=hpa_for(c, min_replicas=1, max_replicas=4), seed_index=i, compression=k)
        for c in candidates
        for i, k in ((0, 1), (1, 2))
    ]


def test_a_pool_scores_exactly_as_one_process_does() -> None:
    shared = setup(1.5 * capacity_rps(replica(1)), duration_s=300.0)
    local = LocalEvaluator(shared).run(_specs())
    ticks: list[float] = []
    with PoolEvaluator(shared, jobs=2) as pool:
        pooled = pool.run(_specs(), done=lambda s: ticks.append(s.replica_hours))
    assert len(ticks) == len(pooled) == 4
    for a, b in zip(local, pooled, strict=True):
        assert (a.replica_hours, a.attainment, a.arrived, a.series) == (
            b.replica_hours,
            b.attainment,
            b.arrived,
            b.series,
        )


def test_compression_scales_cost_to_the_full_traffic_and_runs_fewer_requests() -> None:
    shared = setup(0.5 * capacity_rps(replica(1)), duration_s=600.0)
    spec = RunSpec(
        replica=replica(1),
        hpa=hpa_for(Candidate(signal=Signal.SLOTS, target_milli=800), min_replicas=1, max_replicas=1),
    )
    full, coarse = LocalEvaluator(shared).run([spec, RunSpec(replica=spec.replica, hpa=spec.hpa, compression=3)])
    assert full.replica_hours == pytest.approx(600.0 / 3600.0)  # one replica all along
    assert coarse.replica_hours == pytest.approx(full.replica_hours)  # 200 s run, scaled by 3
    assert coarse.arrived < full.arrived / 2
    assert coarse.series[-1][0] == pytest.approx(600.0)  # series on the full traffic's clock


def test_a_run_that_refuses_requests_attains_at_most_the_share_it_served() -> None:
    # no replica can start in time: min 1, max 1, and a load far beyond it for a short run
    shared = setup(6.0 * capacity_rps(replica(1)), duration_s=240.0)
    hpa = hpa_for(Candidate(signal=Signal.SLOTS, target_milli=800), min_replicas=1, max_replicas=1)
    (run,) = LocalEvaluator(shared).run([RunSpec(replica=replica(1), hpa=hpa)])
    assert run.rejected > 0
    assert run.attainment <= 1 - run.rejected / run.arrived


def test_rank_prefers_feasible_then_cheap_then_steady() -> None:
    c = [Candidate(signal=Signal.SLOTS, target_milli=100 * i) for i in range(1, 5)]
    scores = [
        score(c[0], cost=5.0, attainment=0.99),
        score(c[1], cost=4.0, attainment=0.95, flaps=9),
        score(c[2], cost=4.0, attainment=0.93, flaps=1),
        score(c[3], cost=1.0, attainment=0.80),
    ]
    assert [s.candidate for s in sorted(scores, key=rank_key)] == [c[2], c[1], c[0], c[3]]


@pytest.mark.parametrize(
    ("signals", "queued", "pinned", "warned"),
    [
        pytest.param((Signal.SLOTS,), 40, 40, True, id="always-pinned"),
        pytest.param((Signal.SLOTS,), 40, 20, False, id="half-pinned"),
        pytest.param((Signal.SLOTS,), 40, 32, True, id="four-in-five-pinned"),
        pytest.param((Signal.SLOTS,), 2, 2, False, id="too-few-queued-scrapes"),
        pytest.param((Signal.BACKLOG,), 40, 40, False, id="slots-not-asked-for"),
    ],
)
def test_pinned_slots_warning(signals: tuple[Signal, ...], queued: int, pinned: int, warned: bool) -> None:
    warnings = pinned_warning(signals, setup(1.0, duration_s=60.0), queued, pinned)
    assert bool(warnings) == warned
    if warned:
        assert "pinned at 1 under backlog" in warnings[0]
        assert "0.90 = 1 / (1 + tolerance)" in warnings[0]  # the highest slots target that can scale up


@pytest.mark.parametrize("per_device", [1, 4])
def test_a_replica_with_a_queue_has_every_slot_busy(per_device: int) -> None:
    queued, pinned = saturated_slots(replica(per_device), setup(1.0, duration_s=60.0), duration_s=120.0)
    assert queued >= 20  # a closed loop of twice the slots keeps a queue in (nearly) every scrape
    assert pinned >= 0.8 * queued  # fixed-size requests end together, which frees slots for an instant
    assert pinned_warning((Signal.SLOTS,), setup(1.0, duration_s=60.0), queued, pinned)
