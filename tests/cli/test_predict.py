"""``jetscale predict``: the engine's figures for a setup, as a table or one JSON document; bad flags are
one line (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from jetscale.cli import main
from jetscale.engine.presets import modeled_peak, resolve_preset


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_json_document_is_the_engines_peak_at_the_given_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["predict", "--preset", "v5e-8/llama2-7b", "--slots", "64", "--input-tokens", "300",
                         "--output-tokens", "200", "--json"], capsys)  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    peak = modeled_peak(resolve_preset("v5e-8/llama2-7b", decode_slots=64), input_tokens=300, output_tokens=200)
    assert doc["decode_slots"] == 64 and (doc["input_tokens"], doc["output_tokens"]) == (300, 200)
    assert doc["peak_output_tokens_s"] == pytest.approx(peak.output_tokens_s)
    assert doc["peak_requests_s"] == pytest.approx(peak.output_tokens_s / 200)
    assert doc["timing_source"].startswith("calibrated")


def test_a_setup_no_preset_names_is_the_presets_with_the_flags_applied(capsys: pytest.CaptureFixture[str]) -> None:
    """ "What does Llama-3-8B int8 with 256 slots on v5e-8 give me?", and on jetstream-pytorch, data parallel."""
    args = ["predict", "--preset", "v5e-8/llama2-7b", "--model", "llama3-8b-int8", "--slots", "256", "--json"]
    code, out, _ = _run(args, capsys)
    assert code == 0
    doc = json.loads(out)
    expected = resolve_preset("v5e-8/llama2-7b", model="llama3-8b-int8", decode_slots=256)
    assert (doc["model"], doc["decode_slots"], doc["stack"]) == ("llama3-8b-int8", 256, "jetstream-maxtext")
    assert doc["peak_output_tokens_s"] == pytest.approx(modeled_peak(expected).output_tokens_s)
    assert "int8" in doc["timing_source"] and doc["setup"].endswith("with model=llama3-8b-int8, decode_slots=256")
    code, out, _ = _run([*args[:-1], "--stack", "jetstream-pytorch", "--cache-length", "1280", "--json"], capsys)
    faster = json.loads(out)
    assert code == 0 and (faster["cache_length"], faster["stack"]) == (1280, "jetstream-pytorch")
    assert faster["peak_output_tokens_s"] > doc["peak_output_tokens_s"]
    code, out, _ = _run(["predict", "--preset", "v5e-8/gemma-2b-pytorch", "--data-parallel", "4", "--json"], capsys)
    assert code == 0 and json.loads(out)["data_parallel"] == 4


def test_a_workload_is_served_cut_to_the_prefill_length_and_says_how_many_were_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replica = tmp_path / "short.yaml"
    replica.write_text(yaml.safe_dump({"preset": "v5e-8/llama2-7b", "max_prefill_length": 128,
                                       "max_target_length": 512}))  # fmt: skip
    code, out, _ = _run(["predict", "--replica", str(replica), "--workload", "sharegpt-like", "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert 0.2 < doc["prompts_cut_share"] < 0.9
    assert doc["input_tokens"] <= 128 and doc["input_tokens"] + doc["output_tokens"] <= 512


def test_a_profiled_replica_says_its_timing_is_fitted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    timing = {"decode_step_fixed_s": 0.02, "decode_step_per_token_s": 0.0, "prefill_fixed_s": 0.01,
              "prefill_per_token_s": 0.0, "source": "profile of http://127.0.0.1:9"}  # fmt: skip
    replica = tmp_path / "profile.yaml"
    replica.write_text(yaml.safe_dump({"preset": "v5e-8/llama2-7b", "decode_slots": 10, "timing": timing,
                                       "profile": {"target": "http://127.0.0.1:9"}}))  # fmt: skip
    code, out, _ = _run(["predict", "--replica", str(replica), "--input-tokens", "100", "--output-tokens", "101"],
                        capsys)  # fmt: skip
    assert code == 0
    assert "fitted: profile of http://127.0.0.1:9" in out
    assert "20.0 ms" in out  # TPOT at full batch: the fitted step
    # 10 slots x 101 tokens per (100 steps x 20 ms + 10 prefills x 10 ms)
    assert f"{10 * 101 / (100 * 0.02 + 10 * 0.01):,.0f}" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--slots", "0"], "'--slots' must be an integer >= 1 (got 0)", id="slots"),
        pytest.param(
            ["--workload", "sharegpt-like", "--input-tokens", "5"], "'--workload' must not be given", id="both-shapes"
        ),
        pytest.param(
            ["--input-tokens", "2000", "--output-tokens", "100"], "must fit in max_target_length", id="too-long"
        ),
        pytest.param(["--slots", "100000"], "'decode_slots' must fit in HBM", id="no-room"),
        pytest.param(["--model", "gpt-9"], "'model' must be one of gemma-7b", id="model"),
        pytest.param(["--accelerator", "tpu-v9"], "'accelerator' must be one of tpu-v5e-1", id="accelerator"),
        pytest.param(["--cache-length", "9000"], "'cache_length' must be a whole number of tokens", id="cache"),
        pytest.param(["--data-parallel", "3"], "'data_parallel' must divide the chips (8)", id="dp"),
        pytest.param(["--stack", "tgi"], "'stack' must be one of jetstream-maxtext", id="stack"),
    ],
)
def test_a_bad_flag_is_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["predict", "--preset", "v5e-8/llama2-7b", *args], capsys)
    assert code == 2 and message in err and out == ""
    assert len(err.strip().splitlines()) == 1
