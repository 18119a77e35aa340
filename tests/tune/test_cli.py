"""``jetscale tune`` end to end on tiny traffic: the files it writes, an SLO it cannot meet, bad flags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jetscale.cli import main
from jetscale.hpa.spec import parse_hpa
from jetscale.load.records import Records
from jetscale.load.report import write_requests_csv

TINY = [
    "--workload",
    "fixed:input=100,output=100",
    "--batch-size",
    "1",
    "--startup",
    "provision=0s,pull=5s,load=10s,ready=0s",
    "--seeds",
    "1",
    "--jobs",
    "1",
    "--quiet",
    "--oracle-window",
    "60s",
]


def _run(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_a_tuning_writes_manifests_that_parse_and_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tune"
    code = _run(
        [
            "tune",
            *TINY,
            "--rate",
            "6",
            "--shape",
            "step:at=150s,base=0.3",
            "--duration",
            "420",
            "--signals",
            "backlog,slots",
            "--slo",
            "e2e_p99=3s",
            "--attainment",
            "0.8",
            "--max-replicas",
            "4",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    for name in (
        "hpa.yaml",
        "hpa-gke.yaml",
        "report.html",
        "tune.json",
        "candidates.csv",
        "replicas.png",
        "pareto-backlog.png",
        "pareto-slots.png",
        "winner/report.html",
    ):
        assert (out / name).is_file(), name
    doc = json.loads((out / "tune.json").read_text())
    plain = parse_hpa((out / "hpa.yaml").read_text())
    gke = parse_hpa((out / "hpa-gke.yaml").read_text())
    assert plain.metrics[0].name == gke.metrics[0].name == doc["winner"]["metric"]
    assert gke.metrics[0].raw_name == f"prometheus.googleapis.com|{doc['winner']['metric']}|gauge"
    assert plain.metrics[0].target.average_value_milli == round(1000 * doc["winner"]["target"])
    assert (plain.min_replicas, plain.max_replicas) == (1, 4)
    assert doc["met"] is True and doc["winner"]["meets"] is True
    assert {c["signal"] for c in doc["candidates"]} == {"backlog", "slots"}
    assert doc["gke_sample"]["target"] == 10.0 and doc["gke_sample"]["behavior"] == "none"
    page = (out / "report.html").read_text()
    assert "Pareto front" in page and "GKE&#x27;s sample HPA" in page and "oracle" in page
    assert "recommended" in capsys.readouterr().out


def test_an_slo_that_cannot_be_met_exits_1_with_the_best_reachable_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(
        [
            "tune",
            *TINY,
            "--rate",
            "20",
            "--shape",
            "constant",
            "--duration",
            "300",
            "--signals",
            "slots",
            "--slo",
            "e2e_p99=2s",
            "--max-replicas",
            "1",
            "--no-oracle",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 1
    printed = " ".join(capsys.readouterr().out.split())
    assert "the SLO cannot be met" in printed and "best reachable point: slots" in printed
    assert json.loads((tmp_path / "tune.json").read_text())["met"] is False
    assert parse_hpa((tmp_path / "hpa.yaml").read_text()).max_replicas == 1


def test_a_recorded_load_run_can_be_replayed(tmp_path: Path) -> None:
    n = 400
    times = np.sort(np.random.default_rng(3).uniform(0, 200, n))
    records = Records.from_columns(
        {
            "scheduled_s": times,
            "sent_s": times,
            "first_token_s": times + 0.1,
            "done_s": times + 1.0,
            "input_tokens": np.full(n, 100),
            "max_tokens": np.full(n, 100),
            "output_tokens": np.full(n, 100),
            "outcome": np.zeros(n),
            "code": np.zeros(n),
        }
    )
    write_requests_csv(records, tmp_path / "requests.csv")
    code = _run(
        [
            "tune",
            *TINY,
            "--load-run",
            str(tmp_path),
            "--signals",
            "slots",
            "--slo",
            "e2e_p99=3s",
            "--no-oracle",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    assert (tmp_path / "out" / "hpa.yaml").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--signals", "cpu"], "'--signals'", id="unknown-signal"),
        pytest.param(["--attainment", "1.5"], "'--attainment'", id="attainment-above-one"),
        pytest.param(["--attainment", "most"], "'--attainment'", id="attainment-not-a-number"),
        pytest.param(["--seeds", "0"], "'--seeds'", id="no-seeds"),
        pytest.param(["--min-replicas", "5", "--max-replicas", "2"], "'--max-replicas'", id="max-below-min"),
        pytest.param(["--batch-size", "huge"], "'--batch-size'", id="bad-batch"),
        pytest.param(["--batch-size", "99"], "'decode_slots' must fit in HBM", id="batch-does-not-fit"),
        pytest.param(["--slo", "latency=2s"], "'--slo'", id="bad-slo"),
        pytest.param(["--slo", ""], "'--slo'", id="no-slo"),
        pytest.param(["--rate", "5", "--trace", "t.jsonl"], "exactly one traffic mode", id="two-traffic-modes"),
        pytest.param(["--load-run", "x.csv", "--rate", "3"], "'--load-run'", id="load-run-and-rate"),
        pytest.param(["--load-run", "missing/requests.csv"], "cannot be read", id="load-run-missing"),
        pytest.param(["--preset", "tpu-v9/unknown"], "'preset'", id="unknown-preset"),
        pytest.param(["--jobs", "0"], "'--jobs'", id="no-jobs"),
        pytest.param(["--name", "Bad_Name"], "metadata.name", id="bad-hpa-name"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["tune", "--quiet", "--duration", "60", *args]) == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split())
    assert err.strip().startswith("error:") and len(err.strip().splitlines()) <= 2
