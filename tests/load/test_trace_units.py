"""Trace times in seconds or milliseconds: detected (epoch milliseconds, ``*_ms`` columns) or declared."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from jetscale.errors import ConfigError
from jetscale.load.trace import parse_trace

EPOCH_MS = 1_700_000_000_000  # 2023-11-14 in milliseconds since 1970


def _jsonl(times: list[object], key: str = "t") -> list[str]:
    return [f'{{"{key}": {t}, "input_tokens": 5, "output_tokens": 6}}' for t in times]


@pytest.mark.parametrize(
    ("lines", "unit", "times"),
    [
        pytest.param(_jsonl([EPOCH_MS, EPOCH_MS + 1500, EPOCH_MS + 284_000]), "auto", [0.0, 1.5, 284.0],
                     id="epoch-ms-detected"),
        pytest.param(_jsonl([1_700_000_000, 1_700_000_001.5]), "auto", [0.0, 1.5], id="epoch-seconds-stay-seconds"),
        pytest.param(_jsonl([0, 250, 1000]), "ms", [0.0, 0.25, 1.0], id="relative-ms-declared"),
        pytest.param(_jsonl([0, 250, 1000]), "auto", [0.0, 250.0, 1000.0], id="small-numbers-are-seconds"),
        pytest.param(_jsonl([0, 250, 1000], key="t_ms"), "auto", [0.0, 0.25, 1.0], id="ms-column"),
        pytest.param(["timestamp_ms,input_tokens,output_tokens", "100,1,2", "600,1,2"], "auto", [0.0, 0.5],
                     id="ms-column-csv"),
        pytest.param(_jsonl([EPOCH_MS, EPOCH_MS + 2000]), "s", [0.0, 2000.0], id="seconds-declared"),
    ],
)  # fmt: skip
def test_time_units(lines: list[str], unit: str, times: list[float]) -> None:
    trace = parse_trace(lines, source="t.jsonl", time_unit=unit)
    assert trace.times_s.tolist() == pytest.approx(times)


def test_iso_times_ignore_the_numeric_unit() -> None:
    lines = ['{"t": "2023-11-16T18:15:46Z", "input_tokens": 1, "output_tokens": 2}',
             '{"t": "2023-11-16T18:15:50Z", "input_tokens": 1, "output_tokens": 2}']  # fmt: skip
    assert parse_trace(lines, source="t", time_unit="ms").times_s.tolist() == [0.0, 4.0]


@pytest.mark.parametrize(
    ("lines", "unit", "message"),
    [
        pytest.param(_jsonl([0, 1]), "minutes", "'--time-unit' must be one of auto, s, ms (got 'minutes')", id="bad"),
        pytest.param(_jsonl([0, 1], key="t_ms"), "s", "'--time-unit s' contradicts its millisecond column",
                     id="contradiction"),
    ],
)  # fmt: skip
def test_bad_time_units(lines: list[str], unit: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_trace(lines, source="t", time_unit=unit)


def test_an_epoch_millisecond_trace_keeps_its_length_in_simulate_and_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from jetscale.cli import main
    from jetscale.load.config import build_plan, parse_options

    trace = tmp_path / "azure-ms.jsonl"
    times = [EPOCH_MS + 1000 * t for t in range(0, 285, 4)]  # 284 s of traffic, in epoch milliseconds
    trace.write_text("\n".join(_jsonl(times)) + "\n")
    hpa = Path(__file__).resolve().parents[2] / "examples" / "hpa" / "backlog.yaml"
    with pytest.raises(SystemExit):
        main(["simulate", "--hpa", str(hpa), "--trace", str(trace), "--no-oracle", "--quiet", "--json",
              "--out", str(tmp_path / "sim")])  # fmt: skip
    (run,) = json.loads(capsys.readouterr().out)["runs"]
    assert run["duration_s"] == pytest.approx(285.0)  # to the last request and one second more, not 283,689 s
    assert run["counts"]["arrived"] == len(times)
    config = parse_options(target="http://127.0.0.1:9", trace=str(trace), time_unit="ms", out_dir=str(tmp_path))
    plan = build_plan(config, lambda path: Path(path).read_text().splitlines())
    assert plan.times_s is not None and float(plan.times_s[-1]) == pytest.approx(284.0)
