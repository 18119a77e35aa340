"""The replica YAML: custom chips and models from their data sheets, every bad field a one-line error,
written configs that read back equal, and where each setup's efficiency comes from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from jetscale.engine.accelerator import GIB, EfficiencyKind, Precision
from jetscale.engine.calibration import CALIBRATED_EFFICIENCY, setup_name
from jetscale.engine.presets import (
    PRESETS,
    HbmMode,
    list_presets,
    per_device_batch_size,
    replica_config_from_mapping,
    replica_config_to_mapping,
    resolve_preset,
)
from jetscale.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "replica"

L4 = {
    "name": "nvidia-l4",
    "family": "nvidia-l4",
    "chips": 1,
    "hbm_bytes_per_chip": "24Gi",
    "hbm_bandwidth_bytes_s": "300G",
    "peak_bf16_flops": "121T",
    "peak_int8_ops": "242.5T",
    "source": "NVIDIA L4 datasheet",
}
MISTRAL = {
    "name": "mistral-7b",
    "params": 7_241_732_096,
    "layers": 32,
    "hidden_size": 4096,
    "heads": 32,
    "kv_heads": 8,
    "vocab_size": 32000,
    "source": "mistralai/Mistral-7B-v0.1 config.json",
}
RESERVE = "runtime_reserve_bytes_per_chip"
EFF = {"decode": 0.3, "source": "a benchmark"}
CUSTOM = {"accelerator": L4, "model": MISTRAL, "decode_slots": 16, "max_prefill_length": 512, "max_target_length": 1024}


def test_a_custom_chip_and_model_read_from_their_data_sheets() -> None:
    config = replica_config_from_mapping(CUSTOM)
    chip, model = config.accelerator, config.model
    assert (chip.chips, chip.hbm_bytes_per_chip, chip.hbm_bandwidth_bytes_s) == (1, 24 * GIB, 300e9)
    assert (chip.peak_bf16_flops, chip.peak_int8_ops, chip.runtime_reserve_bytes_per_chip) == (121e12, 242.5e12, GIB)
    assert (model.head_dim, model.precision, model.weight_bytes_per_param) == (128, Precision.BF16, 2.0)
    assert model.kv_bytes_per_token == 2 * 32 * 8 * 128 * 2  # K and V, 32 layers, 8 KV heads of 128, bf16
    assert config.hbm_mode is HbmMode.PREALLOCATED
    efficiency = config.resolved_efficiency
    assert (efficiency.kind, efficiency.borrowed_from) == (EfficiencyKind.BORROWED, "tpu-v5e/llama2-7b")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"model": {**MISTRAL, "dtype": "int8"}}, (Precision.INT8, 1.0, 1), id="int8"),
        pytest.param({"model": {**MISTRAL, "kv_dtype": "int8"}}, (Precision.BF16, 2.0, 1), id="int8-kv-only"),
        pytest.param({"model": {**MISTRAL, "dtype": "bfloat16"}}, (Precision.BF16, 2.0, 2), id="bfloat16-alias"),
    ],
)
def test_model_dtypes(changes: dict[str, object], expected: tuple[Precision, float, int]) -> None:
    model = replica_config_from_mapping({**CUSTOM, **changes}).model
    assert (model.precision, model.weight_bytes_per_param, model.kv_bytes_per_value) == expected


def test_numbers_may_be_plain_scientific_text_or_quantities() -> None:
    chip = {**L4, "hbm_bytes_per_chip": 25769803776, "hbm_bandwidth_bytes_s": "3e11", "peak_bf16_flops": 1.21e14}
    config = replica_config_from_mapping({**CUSTOM, "accelerator": chip})
    assert (config.accelerator.hbm_bytes_per_chip, config.accelerator.hbm_bandwidth_bytes_s) == (24 * GIB, 3e11)
    assert config.accelerator.peak_int8_ops == 242.5e12
    no_int8 = {k: v for k, v in L4.items() if k != "peak_int8_ops"}
    assert replica_config_from_mapping({**CUSTOM, "accelerator": no_int8}).accelerator.peak_int8_ops == 121e12


def test_per_device_batch_size_counts_the_chips() -> None:
    config = replica_config_from_mapping({"preset": "v5e-8/llama2-7b", "per_device_batch_size": 14})
    assert (config.decode_slots, per_device_batch_size(config)) == (112, 14)
    four_chips = {"accelerator": "tpu-v5e-4", "model": "llama2-7b", "per_device_batch_size": 2}
    on_four = replica_config_from_mapping(four_chips)
    assert on_four.decode_slots == 8
    assert per_device_batch_size(resolve_preset("v5e-8/llama2-7b", decode_slots=44)) == 5.5


def _bad(field: str, value: object, message: str, **extra: object) -> object:
    """A case: ``CUSTOM`` with ``field`` (dotted into accelerator/model/efficiency) set to ``value``."""
    data: dict[str, object] = {**CUSTOM, **extra}
    head, _, tail = field.partition(".")
    if tail:
        section = data.get(head)
        data[head] = {**(section if isinstance(section, dict) else {}), tail: value}
    else:
        data[head] = value
    return pytest.param(data, message, id=f"{field}={value!r}")


BAD_FIELDS = [
    _bad("accelerator", 3, r"'accelerator' must be an accelerator name or a mapping of its data sheet \(got 3\)"),
    _bad("accelerator", "tpu-v9", r"'accelerator' must be one of tpu-v5e-1, .* \(got 'tpu-v9'\)"),
    _bad("accelerator.chips", 0, r"'accelerator.chips' must be a whole number > 0 \(got 0\)"),
    _bad("accelerator.chips", 1.5, r"'accelerator.chips' must be a whole number > 0 \(got 1.5\)"),
    _bad("accelerator.chips", True, r"'accelerator.chips' must be a whole number > 0 .*\(got True\)"),
    _bad("accelerator.hbm_bytes_per_chip", "24 GB", r"'accelerator.hbm_bytes_per_chip' must be .* \(got '24 GB'\)"),
    _bad("accelerator.hbm_bytes_per_chip", -1, r"'accelerator.hbm_bytes_per_chip' must be a whole number > 0"),
    _bad("accelerator.hbm_bandwidth_bytes_s", "fast", r"'accelerator.hbm_bandwidth_bytes_s' must be a number > 0"),
    _bad("accelerator.hbm_bandwidth_bytes_s", 0, r"'accelerator.hbm_bandwidth_bytes_s' must be a number > 0"),
    _bad("accelerator.peak_bf16_flops", None, r"'accelerator.peak_bf16_flops' must be given for a custom accelerator"),
    _bad("accelerator.peak_int8_ops", [1], r"'accelerator.peak_int8_ops' must be a number > 0 .*\(got \[1\]\)"),
    _bad(f"accelerator.{RESERVE}", "30Gi", rf"'accelerator.{RESERVE}' must be < hbm_bytes_per_chip"),
    _bad(f"accelerator.{RESERVE}", -5, rf"'accelerator.{RESERVE}' must be a whole number >= 0"),
    _bad("accelerator.name", "", r"'accelerator.name' must be a non-empty string \(got ''\)"),
    _bad("accelerator.family", 7, r"'accelerator.family' must be a non-empty string \(got 7\)"),
    _bad("accelerator.hbm_per_chip", 1, r"'accelerator.hbm_per_chip' must be one of the accelerator fields .*did you"),
    _bad("model", ["x"], r"'model' must be a model name or a mapping of its architecture \(got \['x'\]\)"),
    _bad("model", "mistral", r"'model' must be one of gemma-7b, .* \(got 'mistral'\)"),
    _bad("model.layers", 0, r"'model.layers' must be a whole number > 0 \(got 0\)"),
    _bad("model.hidden_size", "big", r"'model.hidden_size' must be a whole number > 0 .*\(got 'big'\)"),
    _bad("model.heads", None, r"'model.heads' must be given for a custom model"),
    _bad("model.kv_heads", 5, r"'model.kv_heads' must divide heads \(32\).* \(got 5\)"),
    _bad("model.kv_heads", 64, r"'model.kv_heads' must divide heads \(32\).* \(got 64\)"),
    _bad("model.head_dim", -128, r"'model.head_dim' must be a whole number > 0 \(got -128\)"),
    _bad("model.heads", 31, r"'model.kv_heads' must divide heads \(31\)"),
    _bad("model.vocab_size", 3.5, r"'model.vocab_size' must be a whole number > 0 \(got 3.5\)"),
    _bad("model.params", 7_241_732, r"'model.params' must be at least the attention and embedding weights"),
    _bad("model.params", "7B", r"'model.params' must be a whole number > 0 .*\(got '7B'\)"),
    _bad("model.dtype", "fp8", r"'model.dtype' must be one of bf16, int8 \(got 'fp8'\)"),
    _bad("model.kv_dtype", 8, r"'model.kv_dtype' must be one of bf16, int8 \(got 8\)"),
    _bad("model.num_hidden_layers", 32, r"'model.num_hidden_layers' must be one of the model fields"),
    _bad("decode_slots", 0, r"'decode_slots' must be an integer >= 1 \(got 0\)"),
    _bad("decode_slots", "16", r"'decode_slots' must be an integer >= 1 \(got '16'\)"),
    _bad("decode_slots", 400, r"'decode_slots' must fit in HBM: weights 13\.5 GiB \+ KV 50\.0 GiB .*\(got 400\)"),
    _bad("per_device_batch_size", 4, r"'per_device_batch_size' must not be given with decode_slots \(16\)"),
    _bad("max_prefill_length", 0.5, r"'max_prefill_length' must be an integer >= 1 \(got 0.5\)"),
    _bad("max_target_length", 256, r"'max_target_length' must be > max_prefill_length \(512\) \(got 256\)"),
    _bad("max_target_length", "long", r"'max_target_length' must be an integer \(got 'long'\)"),
    _bad("prefill_backlog_limit", -1, r"'prefill_backlog_limit' must be an integer >= 1 \(got -1\)"),
    _bad("model_load_s", "soon", r"'model_load_s' must be seconds or a duration such as 90s or 2m \(got 'soon'\)"),
    _bad("model_load_s", -3, r"'model_load_s' must be >= 0 \(got -3\)"),
    _bad("model_load_s", [60], r"'model_load_s' must be >= 0 \(got \[60\]\)"),
    _bad("hbm_mode", "flat", r"'hbm_mode' must be one of paged, preallocated \(got 'flat'\)"),
    _bad("hbm_mode", 1, r"'hbm_mode' must be one of paged, preallocated \(got 1\)"),
    _bad("runtime_reserve_bytes", "lots", r"'runtime_reserve_bytes' must be a whole number >= 0 .*\(got 'lots'\)"),
    _bad("runtime_reserve_bytes", -1, r"'runtime_reserve_bytes' must be >= 0 \(got -1\)"),
    _bad("interleaved", "yes", r"'interleaved' must be true: disaggregated serving is not modeled \(got 'yes'\)"),
    _bad("efficiency", "fast", r"'efficiency' must be a mapping of efficiency fields \(got 'fast'\)"),
    _bad("efficiency.decode", 1.5, r"'efficiency.decode' must be a share in \(0, 1\] \(got 1.5\)", efficiency=EFF),
    _bad("efficiency.source", None, r"'efficiency.source' must be given for a custom efficiency", efficiency=EFF),
    _bad("efficiency.prefill_overhead_s", -1, r"'efficiency.prefill_overhead_s' must be .* >= 0", efficiency=EFF),
    _bad("efficiency.kind", "guessed", r"'efficiency.kind' must be one of calibrated, borrowed", efficiency=EFF),
    _bad("efficiency.kind", "fitted", r"efficiency: 'profile' must name the profile .* fitted", efficiency=EFF),
    _bad("name", 5, r"'name' must be a string \(got 5\)"),
    _bad("preset", 5, r"'preset' must be a string \(got 5\)"),
    _bad("preset", "v5e-8/llama2-8b", r"'preset' must be one of v5e-8/llama2-7b, .* \(got 'v5e-8/llama2-8b'\)"),
    _bad("batch_size", 8, r"'batch_size' must be one of the replica fields .*did you mean"),
]


@pytest.mark.parametrize(("data", "message"), BAD_FIELDS)
def test_every_bad_field_is_a_one_line_error_naming_it(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        replica_config_from_mapping(data)
    text = str(error.value)
    assert "\n" not in text
    assert re.match(message, text), text


def test_the_bad_field_table_covers_every_data_sheet_field() -> None:
    from jetscale.engine.datasheet import ACCELERATOR_FIELDS, MODEL_FIELDS

    ids = " ".join(str(p.id) for p in BAD_FIELDS)  # type: ignore[attr-defined]
    untested = [f for f in ACCELERATOR_FIELDS if f != "source" and f"accelerator.{f}=" not in ids]
    untested += [f for f in MODEL_FIELDS if f not in ("source", "name", "family") and f"model.{f}=" not in ids]
    assert not untested


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_default_to_preallocated_hbm_as_maxtext_allocates(name: str) -> None:
    assert resolve_preset(name).hbm_mode is HbmMode.PREALLOCATED
    assert resolve_preset(name, hbm_mode="paged").hbm_mode is HbmMode.PAGED


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_says_where_its_efficiency_comes_from(name: str) -> None:
    config = resolve_preset(name)
    efficiency = config.resolved_efficiency
    key = (config.accelerator.family, config.model.family)
    if efficiency.kind is EfficiencyKind.CALIBRATED:
        assert key in CALIBRATED_EFFICIENCY
        assert (config.model.precision is Precision.INT8) == ("int8" in efficiency.source)
    else:  # not calibrated: it must say so, and name a setup that is
        assert efficiency.kind is EfficiencyKind.BORROWED
        assert efficiency.borrowed_from in {setup_name(k) for k in CALIBRATED_EFFICIENCY}
        assert efficiency.provenance.startswith(f"borrowed from {efficiency.borrowed_from}")


def test_a_given_efficiency_is_labelled_given_with_its_source() -> None:
    config = replica_config_from_mapping({**CUSTOM, "efficiency": {"decode": 0.4, "source": "my L4 benchmark"}})
    efficiency = config.resolved_efficiency
    assert (efficiency.kind, efficiency.decode, efficiency.prefill) == (EfficiencyKind.GIVEN, 0.4, 0.5)
    assert efficiency.provenance == "given: my L4 benchmark"


def _configs() -> list[object]:
    configs = [pytest.param(resolve_preset(p.name), id=p.name) for p in list_presets()]
    configs += [
        pytest.param(replica_config_from_mapping(yaml.safe_load(f.read_text())), id=f.name)
        for f in sorted(EXAMPLES.glob("*.yaml"))
    ]
    given = {**CUSTOM, "efficiency": {"decode": 0.4, "source": "bench"}, "max_queue_wait_s": 2.5}
    configs.append(pytest.param(replica_config_from_mapping(given), id="custom-everything"))
    no_reserve = resolve_preset("h100/llama3-8b", runtime_reserve_bytes=0, hbm_mode="paged")
    configs.append(pytest.param(no_reserve, id="reserve"))
    return configs


@pytest.mark.parametrize("config", _configs())
def test_a_written_config_reads_back_equal(config: object) -> None:
    mapping = replica_config_to_mapping(config)  # type: ignore[arg-type]
    text = yaml.safe_dump(mapping, sort_keys=False)
    assert replica_config_from_mapping(yaml.safe_load(text)) == config


def test_the_examples_exist_one_per_kind() -> None:
    docs = {f.name: yaml.safe_load(f.read_text()) for f in EXAMPLES.glob("*.yaml")}
    assert any("preset" in d for d in docs.values())
    assert any(isinstance(d.get("model"), dict) for d in docs.values())
    assert any(isinstance(d.get("accelerator"), dict) for d in docs.values())
