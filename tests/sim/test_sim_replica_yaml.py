"""``--replica FILE`` on the command line: a custom model on a custom chip simulates, a bad field is one
line on stderr and exit 2, and ``jetscale presets --replica`` says where the setup's efficiency comes from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from jetscale.cli import main

ROOT = Path(__file__).resolve().parents[2]
HPA = ROOT / "examples" / "hpa" / "slots.yaml"
SHORT = ["--rate", "1", "--duration", "120", "--seed", "1", "--quiet", "--workload", "fixed:input=100,output=50",
         "--no-oracle"]  # fmt: skip
CUSTOM = {
    "name": "l4/mistral-7b",
    "accelerator": {
        "name": "nvidia-l4",
        "chips": 1,
        "hbm_bytes_per_chip": "24Gi",
        "hbm_bandwidth_bytes_s": "300G",
        "peak_bf16_flops": "121T",
        "peak_int8_ops": "242.5T",
    },
    "model": {
        "name": "mistral-7b",
        "params": 7241732096,
        "layers": 32,
        "hidden_size": 4096,
        "heads": 32,
        "kv_heads": 8,
        "vocab_size": 32000,
    },
    "decode_slots": 16,
    "max_prefill_length": 512,
    "max_target_length": 1024,
}


def _run(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_a_custom_model_on_a_custom_chip_simulates(tmp_path: Path) -> None:
    replica = tmp_path / "l4.yaml"
    replica.write_text(yaml.safe_dump(CUSTOM), encoding="utf-8")
    out = tmp_path / "run"
    assert _run(["simulate", "--hpa", str(HPA), "--replica", str(replica), *SHORT, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["done"] > 50
    assert summary["cost"]["chip_hours"] == pytest.approx(summary["cost"]["replica_hours"])  # one chip


@pytest.mark.parametrize("example", sorted((ROOT / "examples" / "replica").glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_replica_file_simulates(example: Path, tmp_path: Path) -> None:
    assert _run(["simulate", "--hpa", str(HPA), "--replica", str(example), *SHORT, "--out", str(tmp_path)]) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"decode_slots": 0}, "'decode_slots' must be an integer >= 1 (got 0)", id="slots"),
        pytest.param(
            {"accelerator": {**CUSTOM["accelerator"], "chips": "two"}},  # type: ignore[dict-item]
            "'accelerator.chips' must be a whole number > 0",
            id="chips",
        ),
        pytest.param(
            {"model": {**CUSTOM["model"], "heads": 31}},  # type: ignore[dict-item]
            "'model.kv_heads' must divide heads (31)",
            id="heads",
        ),
    ],
)
def test_a_bad_field_is_one_line_and_exit_2(
    change: dict[str, object], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replica = tmp_path / "bad.yaml"
    replica.write_text(yaml.safe_dump({**CUSTOM, **change}), encoding="utf-8")
    assert _run(["simulate", "--hpa", str(HPA), "--replica", str(replica), *SHORT, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(replica) in err


def test_a_file_that_is_not_yaml_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    replica = tmp_path / "broken.yaml"
    replica.write_text("accelerator: [tpu\nmodel: x\n", encoding="utf-8")
    assert _run(["simulate", "--hpa", str(HPA), "--replica", str(replica), *SHORT, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "invalid YAML" in err


def test_presets_shows_each_setups_efficiency_and_a_replica_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replica = tmp_path / "l4.yaml"
    replica.write_text(yaml.safe_dump(CUSTOM), encoding="utf-8")
    assert _run(["presets", "--replica", str(replica)]) == 0
    out = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    assert "calibrated [1]" in rows["v5e-8/llama2-7b"] and "preallocated" in rows["v5e-8/llama2-7b"]
    assert "borrowed [" in rows["v6e-8/llama3-8b"] and "borrowed [" in rows["l4.yaml"]
    assert "nvidia-l4" in rows["l4.yaml"]
    assert "[1] tpu-v5e/llama2-7b, calibrated on jetstream-pytorch" in out
    assert "fitted = from a measured profile (`jetscale profile`)" in out
