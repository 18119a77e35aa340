"""Flag validation (one clear line per mistake), config round trip, and the seeded plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jetscale.errors import ConfigError
from jetscale.load.config import LoadConfig, Mode, build_plan, is_loopback_literal, parse_options
from jetscale.load.launch import read_lines

TARGET = "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param({"duration": "10s"}, "give exactly one traffic mode", id="no-mode"),
        pytest.param({"rate": "5", "users": "2", "duration": "1s"}, "(got --rate, --users)", id="two-modes"),
        pytest.param({"rate": "5"}, "every run needs a bound", id="unbounded"),
        pytest.param({"rate": "fast", "duration": "1s"}, "'--rate' must be a number (got 'fast')", id="rate-nan"),
        pytest.param({"rate": "0", "duration": "1s"}, "'--rate' must be > 0 (got '0')", id="rate-zero"),
        pytest.param({"users": "2.5", "duration": "1s"}, "'--users' must be a whole number", id="users-fraction"),
        pytest.param({"users": "2", "duration": "soon"}, "'--duration'", id="bad-duration"),
        pytest.param({"users": "2", "duration": "0s"}, "'--duration' must be > 0", id="zero-duration"),
        pytest.param(
            {"users": "2", "shape": "ramp", "duration": "1s"}, "'--shape' applies to an open loop", id="shape-closed"
        ),
        pytest.param({"rate": "2", "think_time": "1s", "duration": "1s"}, "apply to a closed loop", id="think-open"),
        pytest.param(
            {"users": "2", "think": "random", "duration": "1s"}, "'--think' must be fixed or exponential", id="think"
        ),
        pytest.param({"users": "2", "api": "grpc", "duration": "1s"}, "'--api' must be one of", id="api"),
        pytest.param({"users": "2", "max_requests": "-3"}, "'--max-requests' must be > 0", id="negative-cap"),
        pytest.param({"users": "2", "duration": "1s", "slo": "p95=1s"}, "'--slo' must be like", id="slo"),
        pytest.param({"users": "2", "duration": "1s", "target": "http://192.0.2.7:80"}, "not on loopback", id="remote"),
        pytest.param({"users": "2", "duration": "1s", "interval": "0s"}, "'--interval' must be > 0", id="interval"),
    ],
)
def test_bad_flags_give_one_line_naming_the_flag(flags: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_options(**{"target": TARGET, **flags})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_remote_targets_need_the_flag() -> None:
    config = parse_options(target="http://192.0.2.7:80", users="1", duration="1s", allow_remote=True)
    assert config.target.host == "192.0.2.7"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("10.0.0.1", False),
        ("example.org", None),
    ],
)
def test_loopback_literals(host: str, loopback: bool | None) -> None:
    assert is_loopback_literal(host) is loopback


@pytest.mark.parametrize(
    ("flags", "mode"),
    [
        pytest.param({"rate": "3", "duration": "2s"}, Mode.OPEN, id="open"),
        pytest.param({"users": "3", "max_requests": "9"}, Mode.CLOSED, id="closed"),
        pytest.param({"shape": "csv:r.csv", "duration": "2s"}, Mode.OPEN, id="csv-shape-alone"),
    ],
)
def test_modes_and_json_round_trip(flags: dict[str, str], mode: Mode) -> None:
    config = parse_options(target=TARGET, **flags)
    assert config.mode is mode
    assert LoadConfig.from_json(config.to_json()) == config


def test_open_loop_plan_is_seeded_and_sizes_do_not_depend_on_the_rate() -> None:
    slow = build_plan(parse_options(target=TARGET, rate="10", duration="60s", seed="4"), read_lines)
    again = build_plan(parse_options(target=TARGET, rate="10", duration="60s", seed="4"), read_lines)
    fast = build_plan(parse_options(target=TARGET, rate="20", duration="60s", seed="4"), read_lines)
    other = build_plan(parse_options(target=TARGET, rate="10", duration="60s", seed="5"), read_lines)
    assert slow.sizes is not None and again.sizes is not None and fast.sizes is not None and other.sizes is not None
    assert np.array_equal(slow.times_s, again.times_s)
    assert np.array_equal(slow.sizes.input_tokens, again.sizes.input_tokens)
    n = min(len(slow.times_s), len(fast.times_s))
    assert np.array_equal(slow.sizes.input_tokens[:n], fast.sizes.input_tokens[:n])  # separate random streams
    assert not np.array_equal(slow.times_s[:50], other.times_s[:50])


def test_max_requests_caps_the_plan() -> None:
    plan = build_plan(parse_options(target=TARGET, rate="100", duration="60s", max_requests="25"), read_lines)
    assert len(plan.times_s) == 25


def test_trace_plan_keeps_prompts_and_respects_the_bounds(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text(
        '{"t": 0, "input_tokens": 3, "output_tokens": 4, "prompt": "a b c"}\n'
        '{"t": 1, "input_tokens": 5, "output_tokens": 6}\n'
        '{"t": 9, "input_tokens": 7, "output_tokens": 8}\n'
    )
    plan = build_plan(parse_options(target=TARGET, trace=str(trace), duration="5s"), read_lines)
    assert plan.mode is Mode.TRACE and plan.sizes is not None
    assert plan.times_s.tolist() == [0.0, 1.0]
    assert plan.sizes.output_tokens.tolist() == [4, 6]
    assert plan.sizes.prompt_index.tolist() == [0, -1]
    assert plan.prompt(0) == "a b c"


def test_missing_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        build_plan(parse_options(target=TARGET, trace=str(tmp_path / "none.jsonl")), read_lines)


def test_the_cli_side_never_imports_locust_or_gevent() -> None:
    import subprocess
    import sys

    code = (
        "import sys, jetscale.load, jetscale.load.launch, jetscale.load.report, jetscale.load.plots, jetscale.cli.load;"
        "print(sorted(m for m in ('locust', 'gevent') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_public_names_exist() -> None:
    import jetscale.load

    assert all(hasattr(jetscale.load, name) for name in jetscale.load.__all__)
    assert sorted(jetscale.load.__all__) == list(jetscale.load.__all__)
