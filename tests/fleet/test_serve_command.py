"""How the fleet starts a replica: ``jetscale serve`` with the preset, or with a replica file (a replica
YAML or a profile.yaml) passed by its absolute path, since replicas run in another directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from jetscale.fleet import ServeCommand


def test_a_preset_replica_is_started_with_its_preset() -> None:
    argv = ServeCommand(preset="v6e-8/llama3-8b", batch_size=64).argv("jetstream-0")
    assert argv[argv.index("--preset") + 1] == "v6e-8/llama3-8b" and "--replica" not in argv
    assert argv[argv.index("--batch-size") + 1] == "64" and argv[argv.index("--server-id") + 1] == "jetstream-0"


def test_a_replica_file_is_passed_by_its_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ServeCommand(replica_file=Path("prof/profile.yaml")).argv("jetstream-1")
    assert "--preset" not in argv
    assert argv[argv.index("--replica") + 1] == str(tmp_path / "prof" / "profile.yaml")
