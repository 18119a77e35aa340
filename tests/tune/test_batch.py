"""Step one: the largest per-device batch that fits in HBM, lowered until a full batch meets the SLO."""

from __future__ import annotations

import pytest

from jetscale.engine.presets import ReplicaConfig, resolve_preset
from jetscale.errors import ConfigError
from jetscale.load.arrivals import parse_shape
from jetscale.load.stats import parse_slos
from jetscale.load.workload import parse_workload
from jetscale.sim.scenario import OpenTraffic
from jetscale.tune.batch import (
    BatchCheck,
    BatchChoice,
    BatchMode,
    choose_batch,
    full_batch_check,
    max_per_device_batch,
    parse_batch,
    with_batch,
)

PRESET = resolve_preset("v5e-8/llama2-7b")
TRAFFIC = OpenTraffic(
    shape=parse_shape("constant", rate_rps=1.0, duration_s=60), workload=parse_workload("fixed:input=100,output=50")
)


@pytest.mark.parametrize("name", ["v5e-8/llama2-7b", "v5e-8/llama2-13b", "v6e-8/llama3-8b", "h100/llama3-8b"])
def test_the_largest_batch_fits_and_one_more_per_device_does_not(name: str) -> None:
    config = resolve_preset(name)
    fits = max_per_device_batch(config)
    assert fits >= 1
    assert with_batch(config, fits).decode_slots == fits * config.accelerator.chips
    with pytest.raises(ConfigError, match="'decode_slots' must fit in HBM"):
        with_batch(config, fits + 1)


def _fake(largest_ok: int) -> tuple[list[int], object]:
    tried: list[int] = []

    def check(config: ReplicaConfig) -> BatchCheck:
        per_device = config.decode_slots // config.accelerator.chips
        tried.append(per_device)
        return BatchCheck(per_device=per_device, observed_s=(0.0,), met=per_device <= largest_ok)

    return tried, check


@pytest.mark.parametrize("largest_ok", [1, 5, 13, 14], ids=lambda n: f"ok-up-to-{n}")
def test_auto_picks_the_largest_batch_that_meets_the_slo(largest_ok: int) -> None:
    tried, check = _fake(largest_ok)
    result = choose_batch(PRESET, BatchChoice(), check)  # type: ignore[arg-type]
    assert result.max_per_device == 14  # (128 GiB - weights - reserve) // 1 GiB per slot, over 8 chips
    assert result.per_device == largest_ok
    assert result.decode_slots == 8 * largest_ok
    assert tried[0] == 14  # the guide: start from the batch that fills HBM
    assert ("largest that fits" in result.reason) == (largest_ok == 14)


def test_auto_says_when_no_batch_can_meet_the_slo() -> None:
    _, check = _fake(0)
    with pytest.raises(ConfigError, match="cannot be met by one replica at any batch size"):
        choose_batch(PRESET, BatchChoice(), check)  # type: ignore[arg-type]


def test_preset_and_fixed_batches_skip_the_search() -> None:
    tried, check = _fake(14)
    assert choose_batch(PRESET, BatchChoice(mode=BatchMode.PRESET), check).decode_slots == PRESET.decode_slots  # type: ignore[arg-type]
    assert choose_batch(PRESET, parse_batch("3"), check).decode_slots == 24  # type: ignore[arg-type]
    assert tried == []
    with pytest.raises(ConfigError, match="'decode_slots' must fit"):
        choose_batch(PRESET, parse_batch("15"), check)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["big", "0", "-2", "1.5"])
def test_bad_batch_sizes(text: str) -> None:
    with pytest.raises(ConfigError, match="'--batch-size'"):
        parse_batch(text)


def test_a_tight_tpot_slo_lowers_the_batch_to_the_largest_that_meets_it() -> None:
    slos = parse_slos("tpot_p50=18ms")

    def check(config: ReplicaConfig) -> BatchCheck:
        return full_batch_check(config, TRAFFIC, slos, duration_s=60.0)

    result = choose_batch(PRESET, BatchChoice(), check)
    assert 1 <= result.per_device < result.max_per_device
    assert check(with_batch(PRESET, result.per_device)).met
    assert not check(with_batch(PRESET, result.per_device + 1)).met
    assert "misses the SLO at full batch" in result.reason
