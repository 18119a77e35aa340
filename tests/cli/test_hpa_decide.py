"""`jetscale hpa decide`: the decision on flags, chained histories and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jetscale.cli import app, main

EXAMPLES = Path(__file__).parents[2] / "examples" / "hpa"
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    from jetscale.cli import _register

    _register()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["hpa", "decide", *args], terminal_width=200)
    return result.exit_code, result.output


def test_scale_up_shows_the_arithmetic() -> None:
    # backlog target 5: average (4+7+9)/3 = 6.666 -> ratio 1.333 -> ceil(1.333 x 3) = 4
    code, out = run(
        str(EXAMPLES / "backlog.yaml"), "--current", "3", "--metric", "jetstream_prefill_backlog_size=4,7,9"
    )
    assert code == 0, out
    assert "scale 3 -> 4 replicas" in out
    assert "ceil(1.333 x 3 ready pods) = 4" in out
    assert "[lowest of the last 0s" in out  # markup in the arithmetic is printed, not swallowed


def test_within_tolerance_holds() -> None:
    code, out = run(
        str(EXAMPLES / "backlog.yaml"), "--current", "2", "--metric", "jetstream_prefill_backlog_size=5,5.4"
    )
    assert code == 0, out
    assert "hold 2 -> 2" in out


def test_history_chains_and_stabilizes_scale_down(tmp_path: Path) -> None:
    history = tmp_path / "h.json"
    manifest = str(EXAMPLES / "backlog.yaml")
    code, out = run(
        manifest,
        "--current",
        "4",
        "--metric",
        "jetstream_prefill_backlog_size=10,10,10,10",
        "--save-history",
        str(history),
        "--now",
        "0",
    )
    assert code == 0, out
    assert "scale 4 -> 8" in out
    saved = json.loads(history.read_text())
    assert saved["recommendations"][-1]["replicas"] == 8
    # a minute later the backlog is gone, but the scale-down window keeps 8
    code, out = run(
        manifest,
        "--current",
        "8",
        "--metric",
        "jetstream_prefill_backlog_size=0,0,0,0,0,0,0,0",
        "--history",
        str(history),
        "--now",
        "60",
    )
    assert code == 0, out
    assert "hold 8 -> 8" in out
    assert "ScaleDownStabilized" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--current", "2", "--metric", "nope=1"], "'nope' is not a metric"),
        (["--current", "2", "--metric", "jetstream_prefill_backlog_size"], "--metric: must be NAME=V1,V2"),
        (["--current", "1", "--metric", "jetstream_prefill_backlog_size=1,2"], "2 values for 1 pods"),
        (["--current", "2", "--metric", "jetstream_prefill_backlog_size=x"], "must be a quantity"),
        (
            ["--current", "2", "--metric", "jetstream_prefill_backlog_size=1", "--history", "/nonexistent.json"],
            "no such file",
        ),
    ],
)
def test_bad_flags_give_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["hpa", "decide", str(EXAMPLES / "backlog.yaml"), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0
