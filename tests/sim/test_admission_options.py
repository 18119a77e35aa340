"""``--max-queue-wait`` and ``--prefill-backlog-limit``: the engine's admission bounds over every replica of
a simulation, and the requests shed counted by reason. Outcomes worked out by hand on the toy replica."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from simhelp import PRESET, replica
from toysim import PREFILL_S, burst, one_replica, toy

from jetscale.cli import main
from jetscale.engine.presets import ReplicaConfig
from jetscale.errors import ConfigError
from jetscale.sim.options import admission_option
from jetscale.sim.result import OUTCOMES, SimResult
from jetscale.sim.simulator import simulate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hpa"


def _outcomes(result: SimResult) -> list[str]:
    assert result.records is not None
    return [OUTCOMES[code] for code in result.records.sorted().outcome]


# --- the options -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("max_queue_wait", "limit", "expected_wait_s", "expected_limit"),
    [
        pytest.param(None, None, None, 1024, id="neither"),
        pytest.param("5s", None, 5.0, 1024, id="wait"),
        pytest.param("250ms", "16", 0.25, 16, id="both"),
        pytest.param(None, "1", None, 1, id="limit-of-one"),
    ],
)
def test_the_options_set_the_replica_fields(
    max_queue_wait: str | None, limit: str | None, expected_wait_s: float | None, expected_limit: int
) -> None:
    base = replica()
    config = admission_option(base, max_queue_wait=max_queue_wait, prefill_backlog_limit=limit)
    assert (config.max_queue_wait_s, config.prefill_backlog_limit) == (expected_wait_s, expected_limit)
    assert (config.name, config.decode_slots, config.accelerator) == (base.name, base.decode_slots, base.accelerator)
    if max_queue_wait is None and limit is None:
        assert config is base


@pytest.mark.parametrize(
    ("max_queue_wait", "limit", "message"),
    [
        pytest.param("abc", None, "'--max-queue-wait': must be a duration such as 15s", id="wait-not-a-duration"),
        pytest.param("0", None, "'--max-queue-wait' must be > 0 (got '0')", id="wait-zero"),
        pytest.param("-1s", None, "'--max-queue-wait': must be a duration", id="wait-negative"),
        pytest.param(None, "0", "'--prefill-backlog-limit' must be >= 1 (got '0')", id="limit-zero"),
        pytest.param(None, "many", "'--prefill-backlog-limit' must be a whole number (got 'many')", id="limit-word"),
        pytest.param(None, "2.5", "'--prefill-backlog-limit' must be a whole number (got '2.5')", id="limit-fraction"),
    ],
)
def test_bad_options_are_refused_by_name(max_queue_wait: str | None, limit: str | None, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        admission_option(replica(), max_queue_wait=max_queue_wait, prefill_backlog_limit=limit)
    assert message in str(error.value)


# --- outcomes by hand -------------------------------------------------------------------------------------
def _toy(max_queue_wait: str | None = None, limit: str | None = None, **fields: object) -> ReplicaConfig:
    return admission_option(toy(**fields), max_queue_wait=max_queue_wait, prefill_backlog_limit=limit)


@pytest.mark.parametrize(
    ("config", "timeout_s", "done", "by_reason", "by_stage"),
    [
        # request 0 is prefilled at once (it leaves the backlog), 1..3 fill a backlog of 3, 4..9 are shed
        pytest.param(_toy(limit="3"), None, 4, (6, 0, 0), (0, 0, 0), id="backlog-limit"),
        # the engine's wait estimate for request k is k x 16 ms (the rest of request 0's prefill and the
        # prefills queued ahead; 4 slots, so no decode step is waited for): 0..3 wait at most 48 ms,
        # 4..9 would wait 64 ms
        pytest.param(_toy("50ms", decode_slots=4), None, 4, (0, 6, 0), (0, 0, 0), id="queue-wait"),
        pytest.param(_toy("65ms", decode_slots=4), None, 5, (0, 5, 0), (0, 0, 0), id="queue-wait-one-more"),
        # shed beyond the backlog of 3, then at 20 ms request 0 has ended (16 ms), request 1 is being
        # prefilled (16..32 ms) and 2 and 3 wait: their clients give up
        pytest.param(_toy(limit="3"), 0.020, 1, (6, 0, 0), (2, 1, 0), id="shed-then-abandoned"),
    ],
)
def test_a_burst_of_ten_on_one_replica(
    config: ReplicaConfig,
    timeout_s: float | None,
    done: int,
    by_reason: tuple[int, int, int],
    by_stage: tuple[int, int, int],
) -> None:
    result = simulate(one_replica(burst(10), config, client_timeout_s=timeout_s))
    c = result.counts
    assert (c.arrived, c.done, c.rejected, c.abandoned, c.in_flight) == (10, done, sum(by_reason), sum(by_stage), 0)
    assert tuple(c.rejected_by_reason[r] for r in ("backlog_full", "queue_wait", "not_ready")) == by_reason
    assert tuple(c.abandoned_by_stage[s] for s in ("backlog", "prefill_transfer", "decode")) == by_stage
    outcomes = _outcomes(result)
    assert outcomes[:done] == ["completed"] * done
    shed = [o for o in outcomes if o.startswith("shed:")]
    assert len(shed) == sum(by_reason) and set(outcomes[-len(shed) :]) <= {"shed:backlog_full", "shed:queue_wait"}


def test_the_queue_wait_bound_is_the_engines_estimate() -> None:
    """The accepted requests of the queue-wait case end 16 ms apart, as without any bound."""
    result = simulate(one_replica(burst(10), _toy("50ms", decode_slots=4)))
    assert result.records is not None
    ends = result.records.sorted().end_s[:4]
    assert ends == pytest.approx([PREFILL_S * k for k in range(1, 5)])


def test_without_a_ready_replica_every_request_is_shed_as_not_ready() -> None:
    result = simulate(one_replica(burst(5), initial_replicas=0))
    c = result.counts
    assert (c.rejected, c.rejected_by_reason["not_ready"]) == (5, 5)
    assert _outcomes(result) == ["shed:not_ready"] * 5
    assert result.records is not None and (result.records.replica == -1).all()


# --- the flags end to end ---------------------------------------------------------------------------------
SHORT = ["simulate", "--hpa", str(EXAMPLES / "backlog.yaml"), "--rate", "4", "--shape", "step:at=60s,base=0.3",
         "--duration", "120", "--seed", "1", "--quiet", "--workload", "uniform:input=50..200,output=20..200",
         "--no-oracle"]  # fmt: skip


def _run(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_the_flags_are_in_the_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--max-queue-wait", "1ms", "--prefill-backlog-limit", "64", "--json", "--out", str(tmp_path)]
    assert _run([*SHORT, *args]) == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert (run["max_queue_wait_s"], run["prefill_backlog_limit"]) == (0.001, 64)
    counts = run["counts"]
    # a wait of 1 ms is less than any prefill: a request arriving while another is prefilled is shed
    assert counts["rejected"] > 0 and counts["rejected_by_reason"]["queue_wait"] == counts["rejected"]
    assert set(counts["rejected_by_reason"]) == {"backlog_full", "queue_wait", "not_ready"}
    assert json.loads((tmp_path / "summary.json").read_text())["max_queue_wait_s"] == 0.001


def test_without_the_flags_the_preset_decides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run([*SHORT, "--json", "--out", str(tmp_path)]) == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert (run["max_queue_wait_s"], run["prefill_backlog_limit"]) == (None, 1024)
    assert run["preset"] == PRESET


def test_the_console_shows_the_refusals_by_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run([*SHORT, "--prefill-backlog-limit", "1", "--max-queue-wait", "1ms", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "refused by reason" in printed and "queue wait" in printed
    assert "prefill backlog limit 1, max queue wait 0.001s per replica; client timeout none" in printed


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        pytest.param("--max-queue-wait", "abc", "'--max-queue-wait': must be a duration", id="wait-abc"),
        pytest.param("--max-queue-wait", "0s", "'--max-queue-wait' must be > 0 (got '0s')", id="wait-zero"),
        pytest.param("--prefill-backlog-limit", "0", "'--prefill-backlog-limit' must be >= 1", id="limit-zero"),
        pytest.param("--prefill-backlog-limit", "x", "'--prefill-backlog-limit' must be a whole number", id="limit-x"),
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2(
    flag: str, value: str, message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert _run([*SHORT, flag, value, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
