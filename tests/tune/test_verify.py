"""``--verify``: the recommendation replayed on the local fleet (real replica processes, sped up) and in
the simulator on the same short plan."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
from rich.console import Console
from tunehelp import capacity_rps, replica, setup

from jetscale.errors import ConfigError
from jetscale.tune.batch import parse_batch
from jetscale.tune.candidates import Signal, manifest_yaml
from jetscale.tune.tuner import TuneConfig, tune
from jetscale.tune.verify import MAX_WALL_RPS, check_available, verify_winner


def test_the_winner_replayed_on_the_fleet_agrees_with_the_simulator(tmp_path: Path) -> None:
    config8 = replica(1)
    config = TuneConfig(
        replica=config8,
        setup=setup(1.2 * capacity_rps(config8), duration_s=240.0, shape="step:at=60s,base=0.3"),
        signals=(Signal.SLOTS,),
        attainment=0.5,
        max_replicas=3,
        seeds=1,
        batch=parse_batch("preset"),
        coarse_requests=0,
        oracle=False,
        max_probes=2,
    )
    check_available(config)
    result = tune(config)
    manifest = tmp_path / "hpa.yaml"
    manifest.write_text(manifest_yaml(result.manifests()[0]))
    agreement = verify_winner(
        result, tmp_path / "verify", console=Console(quiet=True), hpa_path=manifest, model_s=90.0, max_speed=12.0
    )
    peak = 1.2 * capacity_rps(config8)
    assert agreement.speed == pytest.approx(min(12.0, MAX_WALL_RPS / peak))  # what two cores carry
    assert agreement.model_s == 90.0
    assert agreement.failed_requests == 0
    assert all(math.isfinite(v) for v in (*agreement.e2e_p50_s, *agreement.replica_seconds))
    assert agreement.replica_seconds[0] > 0 and agreement.replica_seconds[1] > 0
    assert agreement.mean_abs_replicas <= 1.5
    doc = json.loads((tmp_path / "verify" / "verify.json").read_text())
    assert doc["summary"].startswith(f"verify (local fleet at {agreement.speed:.2g}x vs simulator")
    assert (tmp_path / "verify" / "verify.png").is_file() and (tmp_path / "verify" / "live" / "report.html").is_file()


def test_verify_needs_a_preset_replica() -> None:
    custom = dataclasses.replace(replica(1), name="my-replica")
    config = TuneConfig(replica=custom, setup=setup(1.0, duration_s=60.0))
    with pytest.raises(ConfigError, match="'--verify' needs a preset replica"):
        check_available(config)


def test_verify_refuses_more_traffic_than_the_local_fleet_carries() -> None:
    config = TuneConfig(replica=replica(1), setup=setup(1000.0, duration_s=60.0))
    with pytest.raises(ConfigError, match="cannot replay a peak of 1000 requests/s"):
        check_available(config)
