"""Replica configs: validation, the HBM fit check, presets, overrides and the modeled peak."""

from __future__ import annotations

import dataclasses

import pytest
from toy_replica import CHIP, EXACT, MODEL

from jetscale.engine.accelerator import GIB, EfficiencyKind
from jetscale.engine.calibration import STACK_FACTOR, ServingStack
from jetscale.engine.catalog import get_accelerator, get_model
from jetscale.engine.presets import (
    CALIBRATED_EFFICIENCY,
    PRESETS,
    HbmMode,
    ReplicaConfig,
    efficiency_for,
    list_presets,
    modeled_peak,
    replica_config_from_mapping,
    resolve_preset,
)
from jetscale.errors import ConfigError


def toy(**overrides: object) -> ReplicaConfig:
    fields: dict[str, object] = {
        "accelerator": CHIP,
        "model": MODEL,
        "decode_slots": 4,
        "max_prefill_length": 32,
        "max_target_length": 64,
        "efficiency": EXACT,
        "kv_read": "active",
    }
    fields.update(overrides)
    return ReplicaConfig(**fields)  # type: ignore[arg-type]


def case(field: str, value: object, message: str, name: str) -> object:
    return pytest.param({field: value}, message, id=name)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        case("decode_slots", 0, r"^'decode_slots' must be an integer >= 1 \(got 0\)$", "slots-zero"),
        case("decode_slots", 2.5, r"^'decode_slots' must be an integer >= 1 \(got 2.5\)$", "slots-float"),
        case("max_prefill_length", -1, r"^'max_prefill_length' must be an integer >= 1 \(got -1\)$", "prefill-neg"),
        case("prefill_backlog_limit", 0, r"^'prefill_backlog_limit' must be an integer >= 1 \(got 0\)$", "limit-zero"),
        case(
            "max_target_length", 32, r"^'max_target_length' must be > max_prefill_length \(32\) \(got 32\)$", "target"
        ),
        case("model_load_s", -1.0, r"^'model_load_s' must be >= 0 \(got -1.0\)$", "load-neg"),
        case("runtime_reserve_bytes", -5, r"^'runtime_reserve_bytes' must be >= 0 \(got -5\)$", "reserve-neg"),
        case("hbm_mode", "flat", r"^'hbm_mode' must be one of paged, preallocated \(got 'flat'\)$", "hbm-mode"),
        case(
            "interleaved",
            False,
            r"^'interleaved' must be true: disaggregated serving is not modeled \(got False\)$",
            "disaggregated",
        ),
    ],
)
def test_validation_names_field_and_value(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        toy(**change)


def test_a_batch_that_cannot_fit_is_refused_with_the_numbers() -> None:
    # weights 1e7 B + 8 slots x 64 tokens x 20,000 B = 2.024e7 B > 2e7 B of HBM
    with pytest.raises(ConfigError) as error:
        toy(decode_slots=8)
    text = str(error.value)
    assert text.startswith(
        "'decode_slots' must fit in HBM: weights 0.0 GiB + KV 0.0 GiB (8 slots x 64 tokens x 20000 B)"
    )
    assert text.endswith("> HBM 0.0 GiB on toy (got 8)")
    toy(decode_slots=7)  # 1.896e7 B fits


def test_fit_check_on_a_real_preset() -> None:
    # v5e-8 llama2-7b: 12.6 GiB weights + 200 x 1 GiB of KV > 128 GiB
    with pytest.raises(ConfigError, match=r"weights 12\.6 GiB \+ KV 200\.0 GiB .* > HBM 128\.0 GiB on tpu-v5e-8"):
        resolve_preset("v5e-8/llama2-7b", decode_slots=200)


def test_every_preset_is_valid_and_sourced() -> None:
    required = {"v5e-8/llama2-7b", "v6e-8/llama3-8b", "h100/llama3-8b", "v5e-8/gemma-7b", "v5e-8/llama2-13b"}
    assert required <= set(PRESETS)
    for preset in list_presets():
        config = resolve_preset(preset.name)
        assert config.name == preset.name and preset.source
        assert config.weight_bytes + config.kv_cache_bytes + config.reserve_bytes <= config.hbm_total_bytes
        assert config.model_load_s > 0


def test_published_slot_counts() -> None:
    """JetStream docs: per_device_batch_size 11 / 4 on v5e-8 (88 / 32 slots)."""
    assert resolve_preset("v5e-8/llama2-7b").decode_slots == 88
    assert resolve_preset("v5e-8/llama2-13b").decode_slots == 32


def test_unknown_preset_lists_the_known_ones() -> None:
    known = r"^'preset' must be one of v5e-8/llama2-7b, .*h100/llama3-8b.* \(got 'x/y'\)$"
    with pytest.raises(ConfigError, match=known):
        resolve_preset("x/y")


def test_overrides_are_coerced_and_validated() -> None:
    config = resolve_preset("v5e-8/llama2-7b", decode_slots=64, hbm_mode="preallocated", model="llama2-7b-int8")
    assert (config.decode_slots, config.hbm_mode, config.model.name) == (64, HbmMode.PREALLOCATED, "llama2-7b-int8")
    with pytest.raises(ConfigError, match=r"^'batch' must be one of the replica fields"):
        resolve_preset("v5e-8/llama2-7b", batch=3)
    with pytest.raises(ConfigError, match=r"^'decode_slots' must be an integer >= 1 \(got 0\)$"):
        resolve_preset("v5e-8/llama2-7b", decode_slots=0)


@pytest.mark.parametrize(
    ("data", "slots", "chip"),
    [
        pytest.param({"preset": "h100/llama3-8b", "decode_slots": 64}, 64, "h100-80gb-x1", id="preset-plus-override"),
        pytest.param(
            {"accelerator": "tpu-v6e-1", "model": "llama3-8b", "decode_slots": 8, "hbm_mode": "paged"},
            8,
            "tpu-v6e-1",
            id="spelled-out",
        ),
    ],
)
def test_config_from_mapping(data: dict[str, object], slots: int, chip: str) -> None:
    config = replica_config_from_mapping(data)
    assert (config.decode_slots, config.accelerator.name) == (slots, chip)


def test_config_from_mapping_needs_the_shape() -> None:
    with pytest.raises(ConfigError, match=r"^'decode_slots' \(or per_device_batch_size\) must be given when there"):
        replica_config_from_mapping({"accelerator": "tpu-v6e-1", "model": "llama3-8b"})


def test_efficiency_lookup() -> None:
    v5e, v6e = get_accelerator("tpu-v5e-8"), get_accelerator("tpu-v6e-8")
    calibrated = CALIBRATED_EFFICIENCY[("tpu-v5e", "llama2-13b")]
    assert calibrated.kind is EfficiencyKind.CALIBRATED
    # the presets' stack, MaxText, runs at its measured share of jetstream-pytorch's efficiency
    maxtext = efficiency_for(v5e, get_model("llama2-13b"), ServingStack.MAXTEXT)
    factor = STACK_FACTOR[ServingStack.MAXTEXT]
    assert maxtext.decode == pytest.approx(calibrated.decode * factor) and "jetstream-maxtext" in maxtext.source
    assert efficiency_for(v5e, get_model("llama2-13b"), ServingStack.PYTORCH) is calibrated
    # int8 keeps its bf16 model's efficiency: its own cost is the read overhead, fitted to the int8 rows
    int8 = efficiency_for(v5e, get_model("llama2-13b-int8"), ServingStack.PYTORCH)
    assert (int8.decode, int8.int8_read_overhead) == (calibrated.decode, 0.5)
    assert "int8" in int8.source
    fallback = efficiency_for(v6e, get_model("llama3-8b"))
    assert (fallback.kind, fallback.borrowed_from) == (EfficiencyKind.BORROWED, "tpu-v5e/llama2-7b")
    assert fallback.provenance.startswith("borrowed from tpu-v5e/llama2-7b (no published figure for ")
    # a GPU model without a figure borrows its family's reference; L4 borrows the A100's
    gpu = efficiency_for(get_accelerator("h100-80gb-x1"), get_model("llama3-8b"))
    assert (gpu.borrowed_from, gpu.decode) == ("h100/llama2-7b", CALIBRATED_EFFICIENCY[("h100", "llama2-7b")].decode)
    assert efficiency_for(get_accelerator("l4-24gb-x1"), get_model("llama3-8b")).borrowed_from == "a100/llama2-7b"
    assert all(e.source and e.kind is EfficiencyKind.CALIBRATED for e in CALIBRATED_EFFICIENCY.values())


def test_hbm_mode_may_be_given_as_a_string() -> None:
    assert toy(hbm_mode="preallocated").hbm_mode is HbmMode.PREALLOCATED


def test_reserve_defaults_to_the_accelerators() -> None:
    config = resolve_preset("v6e-8/llama3-8b")
    assert config.reserve_bytes == 8 * 3 * GIB // 4
    assert dataclasses.replace(config, runtime_reserve_bytes=0).reserve_bytes == 0


def test_modeled_peak_by_hand() -> None:
    # 4 slots at mean context 16 + 4/2 = 18: step 10 ms + 72 x 0.02 ms = 11.44 ms; prefill 16 ms;
    # over 3 steps each slot ends one request and one prefill refills it: 4 x 4 tokens / (3 steps + 4 prefills)
    peak = modeled_peak(toy(runtime_reserve_bytes=0, hbm_mode=HbmMode.PAGED), input_tokens=16, output_tokens=4)
    assert peak.decode_step_s == pytest.approx(0.01144)
    assert peak.prefill_s == pytest.approx(0.016)
    assert peak.output_tokens_s == pytest.approx(16 / (3 * 0.01144 + 4 * 0.016))
    assert peak.hbm_used_bytes == 10_000_000 + 4 * 18 * 20_000
    flat = modeled_peak(toy(runtime_reserve_bytes=0, hbm_mode=HbmMode.PREALLOCATED), input_tokens=16, output_tokens=4)
    assert flat.hbm_used_bytes == 10_000_000 + 4 * 64 * 20_000
    assert flat.hbm_total_bytes == 20_000_000


def test_modeled_peak_refuses_requests_that_do_not_fit() -> None:
    with pytest.raises(ConfigError, match="must fit in max_target_length 64"):
        modeled_peak(toy(), input_tokens=40, output_tokens=40)
