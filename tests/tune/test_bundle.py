"""tune's deployable bundle: the HPA with the replica shape it was tuned at, rendered only where the deploy
config agrees (or loudly with --force), replayed by ``simulate --hpa`` at that shape."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from jetscale.cli import main
from jetscale.engine.presets import resolve_preset
from jetscale.errors import ConfigError
from jetscale.sim.options import replica_option
from jetscale.tune.bundle import find_bundle, load_bundle

ROOT = Path(__file__).resolve().parents[2]
GKE_DEPLOY = ROOT / "examples" / "deploy" / "gke-v5e.yaml"  # per_device_batch_size=4
TUNE = ["tune", "--workload", "fixed:input=100,output=100", "--batch-size", "2", "--startup",
        "provision=0s,pull=5s,load=10s,ready=0s", "--seeds", "1", "--jobs", "1", "--quiet", "--rate", "6",
        "--shape", "constant", "--duration", "300", "--signals", "slots", "--slo", "e2e_p99=3s",
        "--attainment", "0.8", "--max-replicas", "4", "--no-oracle", "--namespace", "llm"]  # fmt: skip


def _run(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tuned")
    assert _run([*TUNE, "--out", str(out)]) == 0
    return out


def _deploy(tmp_path: Path, drop: str | None = None, **replace: str) -> Path:
    """examples/deploy/gke-v5e.yaml with the MaxText argument ``drop`` removed and others replaced."""
    doc = yaml.safe_load(GKE_DEPLOY.read_text())
    args = [a for a in doc["args"] if drop is None or not a.startswith(f"{drop}=")]
    doc["args"] = [next((f"{k}={v}" for k, v in replace.items() if a.startswith(f"{k}=")), a) for a in args]
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def _container_args(out: Path) -> list[str]:
    docs = list(yaml.safe_load_all((out / "jetstream.yaml").read_text()))
    deployment = next(d for d in docs if d and d["kind"] == "Deployment")
    return list(deployment["spec"]["template"]["spec"]["containers"][0]["args"])


def test_tune_writes_the_hpa_and_the_shape_it_was_tuned_at(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir)
    assert (bundle.hpa, bundle.replica_file) == (bundle_dir / "hpa.yaml", bundle_dir / "replica.yaml")
    assert bundle.replica == resolve_preset("v5e-8/llama2-7b", decode_slots=16)  # --batch-size 2 on 8 chips
    shape = bundle.shape
    assert (shape.per_device_batch_size, shape.max_prefill_length, shape.hbm_mode.value) == (2, 1024, "preallocated")
    doc = yaml.safe_load((bundle_dir / "bundle.yaml").read_text())
    assert doc["kind"] == "jetscale-tune-bundle" and doc["shape"]["decode_slots"] == 16
    assert doc["tuned"]["met"] is True and doc["tuned"]["slo"] == ["e2e_p99<=3s"]
    assert find_bundle(bundle_dir / "hpa.yaml") == find_bundle(bundle_dir / "hpa-gke.yaml") == bundle


def test_an_edited_bundle_is_refused_naming_both_values(bundle_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("hpa.yaml", "hpa-gke.yaml", "replica.yaml", "bundle.yaml"):
        (copy / name).write_text((bundle_dir / name).read_text())
    replica = yaml.safe_load((copy / "replica.yaml").read_text())
    (copy / "replica.yaml").write_text(yaml.safe_dump({**replica, "decode_slots": 32}))
    with pytest.raises(ConfigError, match=r"'shape.decode_slots' must be what replica.yaml says, 32 \(got 16\)"):
        load_bundle(copy)


def test_render_refuses_a_deploy_config_that_contradicts_the_bundle(
    bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = _run(["k8s", "render", "--target", "gke", "--bundle", str(bundle_dir), "--config", str(GKE_DEPLOY),
                 "--out", str(out), "--no-validate"])  # fmt: skip
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "'args: per_device_batch_size' must be 2, as tuned: 16 slots on 8 chips (got 4)" in err
    assert str(GKE_DEPLOY) in err and "--force" in err
    assert not out.exists()


def test_render_refuses_through_the_hpa_file_of_a_bundle_too(
    bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(["k8s", "render", "--target", "gke", "--hpa", str(bundle_dir / "hpa.yaml"), "--config",
                 str(GKE_DEPLOY), "--out", str(tmp_path), "--no-validate"])  # fmt: skip
    assert code == 2 and "(got 4)" in capsys.readouterr().err


def test_force_renders_the_deploy_config_as_it_is_and_warns_loudly(
    bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(["k8s", "render", "--target", "gke", "--bundle", str(bundle_dir), "--config", str(GKE_DEPLOY),
                 "--out", str(tmp_path), "--no-validate", "--force"])  # fmt: skip
    assert code == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "WARNING (--force): 'args: per_device_batch_size' must be 2" in err and "(got 4)" in err
    assert "the promised cost and SLO do not hold" in err
    assert "per_device_batch_size=4" in _container_args(tmp_path)


def test_the_happy_path_renders_the_tuned_batch_size_into_the_deployment(
    bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy = _deploy(tmp_path, drop="per_device_batch_size")
    out = tmp_path / "out"
    code = _run(["k8s", "render", "--target", "gke", "--bundle", str(bundle_dir), "--config", str(deploy),
                 "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    args = _container_args(out)
    assert args.count("per_device_batch_size=2") == 1
    assert "max_prefill_predict_length=1024" in args and "max_target_length=2048" in args
    hpa = next(d for d in yaml.safe_load_all((out / "stackdriver-adapter" / "hpa.yaml").read_text()) if d)
    tuned = yaml.safe_load((bundle_dir / "hpa.yaml").read_text())
    assert hpa["spec"]["metrics"][0]["pods"]["target"] == tuned["spec"]["metrics"][0]["pods"]["target"]


def test_an_agreeing_deploy_config_renders_unchanged(bundle_dir: Path, tmp_path: Path) -> None:
    deploy = _deploy(tmp_path, per_device_batch_size="2")
    out = tmp_path / "out"
    code = _run(["k8s", "render", "--target", "gke", "--bundle", str(bundle_dir), "--config", str(deploy),
                 "--out", str(out), "--no-validate"])  # fmt: skip
    assert code == 0
    assert _container_args(out) == yaml.safe_load(deploy.read_text())["args"]


def test_simulate_replays_the_hpa_at_the_shape_it_was_tuned_at(bundle_dir: Path, tmp_path: Path) -> None:
    replayed = replica_option(None, None, hpa=bundle_dir / "hpa.yaml")
    assert replayed.decode_slots == 16
    assert replica_option(None, None, hpa=bundle_dir).decode_slots == 16  # the bundle directory itself
    assert replica_option(None, None, hpa=ROOT / "examples" / "hpa" / "slots.yaml").decode_slots == 88
    out = tmp_path / "sim"
    code = _run(["simulate", "--hpa", str(bundle_dir / "hpa.yaml"), "--rate", "2", "--duration", "60", "--quiet",
                 "--workload", "fixed:input=100,output=50", "--no-oracle", "--out", str(out)])  # fmt: skip
    assert code == 0
    with (out / "timeline.csv").open() as f:
        first = next(csv.DictReader(f))
    expected = (replayed.weight_bytes + replayed.kv_cache_bytes + replayed.reserve_bytes) / replayed.hbm_total_bytes
    assert float(first["hbm_usage"]) == pytest.approx(expected, abs=1e-5)  # 16 slots' caches, not the preset's 88
    assert json.loads((out / "summary.json").read_text())["counts"]["done"] > 0


def test_simulate_refuses_a_preset_that_contradicts_the_bundle(
    bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(["simulate", "--hpa", str(bundle_dir / "hpa.yaml"), "--preset", "v5e-8/llama2-7b", "--rate", "2",
                 "--duration", "60", "--quiet", "--no-oracle", "--out", str(tmp_path)])  # fmt: skip
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "'--preset' v5e-8/llama2-7b (llama2-7b on tpu-v5e-8, 11 per device (88 slots" in err
    assert "tuned at llama2-7b on tpu-v5e-8, 2 per device (16 slots on 8 chips)" in err
