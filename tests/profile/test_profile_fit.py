"""The profile's fit on points whose truth is known: a replica written here, measured through the engine.

Every expected coefficient comes from the timing the points were made with, so a wrong fit fails."""

from __future__ import annotations

import dataclasses
import random

import pytest

from jetscale.engine.accelerator import PREFILL_BUCKETS
from jetscale.engine.presets import ReplicaConfig, resolve_preset
from jetscale.engine.timing import MeasuredTiming
from jetscale.errors import ConfigError
from jetscale.profile.fit import fit_line, fit_measurements
from jetscale.profile.points import CapacityPoint, DecodePoint, Measurements, PrefillPoint, steady_tokens_s
from jetscale.profile.predict import closed_loop_tokens_s
from jetscale.profile.runner import plan_prompt_lengths

TRUTH = MeasuredTiming(
    decode_step_fixed_s=0.021, decode_step_per_token_s=4e-7, prefill_fixed_s=0.012, prefill_per_token_s=6e-5,
    source="test truth",
)  # fmt: skip
BASE = resolve_preset("v5e-8/llama2-7b", decode_slots=16)


def _points(truth: MeasuredTiming, *, overhead_s: float = 0.0, noise: float = 0.0, seed: int = 1) -> Measurements:
    rng = random.Random(seed)

    def jitter(value: float) -> float:
        return value * (1.0 + rng.uniform(-noise, noise))

    points = Measurements(target="http://127.0.0.1:1", api="jetstream-http", server_speed=1.0, started="now")
    points.prefill = [
        PrefillPoint(prompt_tokens=n, ttft_s=jitter(truth.prefill_s(n) + overhead_s), samples=5)
        for n in plan_prompt_lengths(1024)
    ]
    for prompt in (128, 512):
        for n in (1, 2, 4, 8, 16):
            context = n * (prompt + 40)
            points.decode.append(
                DecodePoint(
                    concurrency=n,
                    prompt_tokens=prompt,
                    output_tokens=80,
                    context_tokens=context,
                    step_s=jitter(truth.decode_step_s(context)),
                )
            )
    points.slots = 16
    config = dataclasses.replace(BASE, timing=truth)
    for clients in (16, 32):
        rate = closed_loop_tokens_s(config, clients, 128, 64)
        points.capacity.append(
            CapacityPoint(
                concurrency=clients,
                prompt_tokens=128,
                output_tokens=64,
                output_tokens_s=rate,
                ttft_p50_s=0.1,
                requests=clients * 5,
            )
        )
    return points  # fmt: skip


def test_exact_points_give_back_the_timing_they_were_made_with() -> None:
    fit = fit_measurements(_points(TRUTH), base=BASE, source="s")
    got = fit.timing
    assert got.decode_step_fixed_s == pytest.approx(TRUTH.decode_step_fixed_s, rel=1e-4)
    assert got.decode_step_per_token_s == pytest.approx(TRUTH.decode_step_per_token_s, rel=1e-3)
    assert got.prefill_per_token_s == pytest.approx(TRUTH.prefill_per_token_s, rel=1e-3)
    assert got.prefill_fixed_s == pytest.approx(TRUTH.prefill_fixed_s, rel=0.02)
    assert got.prefill_buckets is None
    assert fit.client_overhead_s == pytest.approx(0.0, abs=3e-4)
    assert fit.decode.quality.r2 > 0.9999 and fit.decode.quality.max_relative_residual < 1e-6
    assert fit.config.decode_slots == 16 and fit.config.timing == got


def test_the_clients_overhead_is_told_apart_from_the_prefill_by_the_busy_closed_loop() -> None:
    fit = fit_measurements(_points(TRUTH, overhead_s=0.008), base=BASE, source="s")
    assert fit.client_overhead_s == pytest.approx(0.008, rel=0.05)
    assert fit.timing.prefill_fixed_s == pytest.approx(TRUTH.prefill_fixed_s, rel=0.05)
    assert any("client overhead" in note for note in fit.notes)


def test_without_a_busy_closed_loop_the_overhead_stays_in_the_prefill_and_it_says_so() -> None:
    points = _points(TRUTH, overhead_s=0.008)
    points.capacity = [c for c in points.capacity if c.concurrency < 32]
    fit = fit_measurements(points, base=BASE, source="s")
    assert fit.client_overhead_s == 0.0
    assert fit.timing.prefill_fixed_s == pytest.approx(TRUTH.prefill_fixed_s + 0.008, rel=1e-3)
    assert any("not separated" in note for note in fit.notes)


def test_noise_of_two_percent_moves_the_coefficients_by_a_few_percent_at_most() -> None:
    fit = fit_measurements(_points(TRUTH, noise=0.02, seed=7), base=BASE, source="s")
    assert fit.timing.decode_step_fixed_s == pytest.approx(TRUTH.decode_step_fixed_s, rel=0.03)
    assert fit.timing.prefill_per_token_s == pytest.approx(TRUTH.prefill_per_token_s, rel=0.05)


def test_one_wild_point_does_not_bend_the_line_and_is_counted() -> None:
    points = _points(TRUTH)
    wild = points.decode[3]
    points.decode[3] = dataclasses.replace(wild, step_s=wild.step_s * 3)
    fit = fit_measurements(points, base=BASE, source="s")
    assert fit.timing.decode_step_fixed_s == pytest.approx(TRUTH.decode_step_fixed_s, rel=0.01)
    assert fit.decode.quality.outliers == 1
    assert any("down-weighted" in note for note in fit.notes)


def test_padding_to_jetstreams_buckets_is_found_when_the_steps_show_it() -> None:
    padded = dataclasses.replace(TRUTH, prefill_buckets=(*(b for b in PREFILL_BUCKETS if b < 1024), 1024))
    fit = fit_measurements(_points(padded), base=BASE, source="s")
    assert fit.timing.prefill_buckets == padded.prefill_buckets
    assert fit.timing.prefill_per_token_s == pytest.approx(TRUTH.prefill_per_token_s, rel=1e-3)
    assert any("padded" in note for note in fit.notes)


def test_one_context_only_leaves_the_per_token_cost_unpinned_and_named() -> None:
    points = _points(TRUTH)
    points.decode = [dataclasses.replace(p, context_tokens=1000.0, step_s=TRUTH.decode_step_s(1000)) for p in
                     points.decode]  # fmt: skip
    fit = fit_measurements(points, base=BASE, source="s")
    assert fit.timing.decode_step_per_token_s == 0.0
    assert fit.timing.decode_step_fixed_s == pytest.approx(TRUTH.decode_step_s(1000))
    assert any("decode_step_per_token_s is 0" in note for note in fit.notes)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"decode": []}, "'decode' points must be measured", id="no-decode"),
        pytest.param({"prefill": []}, "'prefill' points must be measured", id="no-prefill"),
        pytest.param({"slots": 100_000}, "'slots' measured 100000 must fit", id="slots-do-not-fit"),
    ],
)
def test_points_that_cannot_be_fitted_are_one_clear_error(change: dict[str, object], message: str) -> None:
    points = _points(TRUTH)
    for key, value in change.items():
        setattr(points, key, value)
    with pytest.raises(ConfigError, match=message):
        fit_measurements(points, base=BASE, source="s")


def test_fit_line_keeps_both_coefficients_non_negative() -> None:
    line = fit_line([1, 2, 3, 4], [4.0, 3.0, 2.0, 1.0])  # falling: the best line with slope >= 0 is flat
    assert line.slope == pytest.approx(0.0, abs=1e-9) and line.fixed > 0


def test_steady_rate_ignores_the_first_answer_of_each_client() -> None:
    ends = [(1.0, 10), (1.0, 10), (2.0, 10), (3.0, 10), (4.0, 10), (5.0, 10)]
    assert steady_tokens_s(ends, 2) == pytest.approx(10.0)
    assert steady_tokens_s(ends[:3], 2) is None


def test_points_survive_their_json_file() -> None:
    points = _points(TRUTH)
    points.errors.append("HTTP 500: x")
    again = Measurements.from_json(points.to_json(), source="points.json")
    assert again == points
    with pytest.raises(ConfigError, match=r"'points\.json' must be a points file"):
        Measurements.from_json('{"version": 99}', source="points.json")


def test_a_config_with_measured_timing_drives_the_engine_by_it() -> None:
    config: ReplicaConfig = dataclasses.replace(BASE, timing=TRUTH)
    roofline = config.roofline()
    assert roofline.decode_step_s(1000) == pytest.approx(TRUTH.decode_step_s(1000))
    assert roofline.prefill_s(100) == pytest.approx(TRUTH.prefill_s(100))
