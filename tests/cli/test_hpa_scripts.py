"""``jetscale hpa`` for scripts: history written before printing, ``--json``, both metric spellings, and
fractions that are refused when written as percentages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jetscale.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "hpa"
LAUNCH = [sys.executable, "-c", "import sys; from jetscale.cli import main; main(sys.argv[1:])"]
BACKLOG = "jetstream_prefill_backlog_size"
SLOTS = "jetstream_slots_used_percentage"


def _run(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_save_history_is_written_even_when_the_reader_stops_early(tmp_path: Path) -> None:
    history = tmp_path / "h.json"
    # `jetscale hpa decide ... --save-history F | head -1` once head has gone: the pipe has no reader, so
    # the first line printed fails (EPIPE). The history must already be on disk by then.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [*LAUNCH, "hpa", "decide", str(EXAMPLES / "backlog.yaml"), "--current", "3", "--metric",
             f"{BACKLOG}=40,70,90", "--save-history", str(history)],
            stdout=write_end, stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.returncode != 0  # it could not print
    saved = json.loads(history.read_text())
    assert saved["recommendations"][0]["time_s"] == 0.0
    assert saved["scale_up_events"]  # the scale-up was recorded


def test_decide_json_is_one_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / "h.json"
    code = _run(["hpa", "decide", str(EXAMPLES / "backlog.yaml"), "--current", "3", "--metric",
                 f"{BACKLOG}=4,7,9", "--json", "--save-history", str(history)])  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["command"] == "hpa decide" and doc["current_replicas"] == 3 and doc["desired_replicas"] == 4
    assert doc["rescale"] is True and doc["metrics"][0]["replicas"] == 4 and doc["metrics"][0]["usage"] == "6666m"
    assert any("ceil(1.333 x 3 ready pods) = 4" in line for line in doc["explanation"])
    assert {c["type"] for c in doc["conditions"]} >= {"AbleToScale", "ScalingActive"}
    assert doc["history_saved"] == str(history) and history.is_file()


def test_explain_json_lists_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["hpa", "explain", str(EXAMPLES / "slots.yaml"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["command"] == "hpa explain" and doc["scale_target_ref"] == {"kind": "Deployment",
                                                                          "name": "jetstream-server"}  # fmt: skip
    fields = {row["field"]: row for row in doc["fields"]}
    assert fields["spec.maxReplicas"]["from"] == "manifest"
    assert "spec.behavior.scaleDown.tolerance" in fields


@pytest.mark.parametrize(
    ("manifest_name", "flag_name"),
    [
        pytest.param(SLOTS, f"prometheus.googleapis.com|{SLOTS}|gauge", id="plain-manifest-gke-flag"),
        pytest.param(f"prometheus.googleapis.com|{SLOTS}|gauge", SLOTS, id="gke-manifest-plain-flag"),
        pytest.param(f"prometheus.googleapis.com|{SLOTS}|gauge", f"prometheus.googleapis.com|{SLOTS}|gauge",
                     id="gke-both"),
    ],
)  # fmt: skip
def test_both_metric_spellings(
    manifest_name: str, flag_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "slots.yaml"
    manifest.write_text((EXAMPLES / "slots.yaml").read_text().replace(f"name: {SLOTS}", f"name: '{manifest_name}'"))
    assert _run(["hpa", "decide", str(manifest), "--current", "2", "--metric", f"{flag_name}=1,1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["desired_replicas"] == 3  # ceil(2 x 1 / 0.9)


def test_both_spellings_of_one_metric_at_once_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = _run(["hpa", "decide", str(EXAMPLES / "slots.yaml"), "--current", "1", "--metric", f"{SLOTS}=1",
                 "--metric", f"prometheus.googleapis.com|{SLOTS}|gauge=1"])  # fmt: skip
    assert code == 2
    assert "one metric given in both spellings" in capsys.readouterr().err


def test_a_percentage_for_a_fraction_metric_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = _run(["hpa", "decide", str(EXAMPLES / "slots.yaml"), "--current", "2", "--metric", f"{SLOTS}=95,0.5"])
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"'--metric {SLOTS}' must be a fraction in 0..1 (1 = every decode slot busy)" in err
    assert "not a percentage (got 95)" in err


@pytest.mark.parametrize("command", ["simulate", "hpa-decide"])
def test_a_percentage_target_on_a_fraction_metric_is_refused(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "slots90.yaml"
    manifest.write_text((EXAMPLES / "slots.yaml").read_text().replace("averageValue: 0.9 ", "averageValue: 90 "))
    args = (
        ["simulate", "--hpa", str(manifest), "--rate", "1", "--duration", "60", "--quiet", "--out", str(tmp_path)]
        if command == "simulate"
        else ["hpa", "decide", str(manifest), "--current", "1", "--metric", f"{SLOTS}=0.5"]
    )
    assert _run(args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"'spec.metrics[0]' target of {SLOTS} must be a fraction in 0..1" in err and "(got 90)" in err
