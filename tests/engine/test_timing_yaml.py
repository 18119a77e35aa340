"""A replica YAML's ``timing`` (a profile's fitted coefficients) and ``profile`` mappings: read, written
back to an equal config, and every bad field one line naming it."""

from __future__ import annotations

import pytest

from jetscale.engine.presets import replica_config_from_mapping, replica_config_to_mapping
from jetscale.engine.timing import MeasuredTiming
from jetscale.errors import ConfigError

TIMING = {
    "decode_step_fixed_s": 0.02, "decode_step_per_token_s": 1e-6, "prefill_fixed_s": 0.005,
    "prefill_per_token_s": 2e-5, "prefill_buckets": [64, 128, 256], "source": "profile of http://x",
}  # fmt: skip


def test_a_timing_mapping_replaces_the_roofline_and_round_trips() -> None:
    config = replica_config_from_mapping({"preset": "v5e-8/llama2-7b", "timing": TIMING, "profile": {"a": 1}})
    roofline = config.roofline()
    assert roofline.decode_step_s(1000) == pytest.approx(0.02 + 1e-3)
    assert roofline.prefill_s(100) == pytest.approx(0.005 + 2e-5 * 128)  # padded to 128
    assert roofline.prefill_s(300) == pytest.approx(0.005 + 2e-5 * 1024)  # past the last bucket: max prefill
    assert replica_config_from_mapping(replica_config_to_mapping(config)) == config


def test_without_buckets_a_prompt_costs_its_own_length() -> None:
    timing = MeasuredTiming(**{**TIMING, "prefill_buckets": None})  # type: ignore[arg-type]
    assert timing.roofline(1024).prefill_s(100) == pytest.approx(0.005 + 2e-5 * 100)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            {"decode_step_fixed_s": -1}, "'timing.decode_step_fixed_s' must be a number of seconds >= 0", id="negative"
        ),
        pytest.param({"prefill_fixed_s": "fast"}, "'timing.prefill_fixed_s' must be a number of seconds", id="text"),
        pytest.param({"prefill_buckets": [128, 64]}, "'timing.prefill_buckets' must be increasing", id="buckets"),
        pytest.param({"prefill_buckets": 64}, "'timing.prefill_buckets' must be a list", id="buckets-scalar"),
        pytest.param({"decode_step": 1}, "'timing.decode_step' must be one of the timing fields", id="unknown"),
        pytest.param({"decode_step_fixed_s": None}, "'timing.decode_step_fixed_s' must be a number", id="null"),
        pytest.param(
            {"decode_step_fixed_s": 0, "decode_step_per_token_s": 0},
            "'timing.decode_step_fixed_s' must be > 0",
            id="free-decode",
        ),
    ],
)
def test_a_bad_timing_field_is_one_line_naming_it(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        replica_config_from_mapping({"preset": "v5e-8/llama2-7b", "timing": {**TIMING, **change}})
    assert "\n" not in str(caught.value)


def test_a_missing_coefficient_is_named() -> None:
    partial = {k: v for k, v in TIMING.items() if k != "prefill_per_token_s"}
    with pytest.raises(ConfigError, match=r"'timing\.prefill_per_token_s' must be given"):
        replica_config_from_mapping({"preset": "v5e-8/llama2-7b", "timing": partial})


def test_a_profile_mapping_needs_its_timing() -> None:
    with pytest.raises(ConfigError, match="'timing' must be given with 'profile'"):
        replica_config_from_mapping({"preset": "v5e-8/llama2-7b", "profile": {"target": "x"}})
    with pytest.raises(ConfigError, match="'profile' must be the mapping"):
        replica_config_from_mapping({"preset": "v5e-8/llama2-7b", "timing": TIMING, "profile": [1]})
