"""Honest figures from ``jetscale simulate``: throughput beside latency, what the workload offered and
what was served, and prompts longer than ``max_prefill_length`` counted and warned about (the replica
cuts them; the summary must not state the uncut length as served)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jetscale.cli import main

HPA = "examples/hpa/backlog.yaml"


def _simulate(workload: str, tmp_path: object, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    try:
        main(["simulate", "--hpa", HPA, "--preset", "v5e-8/llama2-7b", "--rate", "1", "--duration", "120",
              "--workload", workload, "--seed", "3", "--out", str(tmp_path), "--quiet", *extra])  # fmt: skip
    except SystemExit as exit_:
        assert not exit_.code
    return json.loads(capsys.readouterr().out) if "--json" in extra else {"console": capsys.readouterr().out}


def test_prompts_over_the_prefill_length_are_counted_and_served_cut(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _simulate("fixed:input=1500,output=100", tmp_path, capsys, "--json")["runs"][0]
    sizes, done = run["sizes"], run["counts"]["done"]
    assert done == run["counts"]["arrived"] > 50
    assert sizes["prompts_cut"] == run["counts"]["arrived"]
    assert sizes["offered_input_tokens"] == 1500 * run["counts"]["arrived"]
    assert sizes["served_input_tokens"] == 1024 * done  # the preset's max_prefill_length
    assert run["throughput"]["requests_s"] == pytest.approx(done / 120)
    assert run["throughput"]["output_tokens_s"] == pytest.approx(100 * done / 120)


def test_the_console_warns_only_when_prompts_were_cut(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    cut = _simulate("fixed:input=1500,output=100", tmp_path, capsys)["console"]
    assert "WARNING:" in cut and "longer than max_prefill_length 1024" in cut
    assert "offered 1,500.0 in / 100.0 out; served 1,024.0 in / 100.0 out" in cut
    whole = _simulate("fixed:input=200,output=100", tmp_path, capsys)["console"]
    assert "WARNING:" not in whole and "served 200.0 in / 100.0 out" in whole
    assert "req/s" in whole and "output tokens/s" in whole
