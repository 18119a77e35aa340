"""Every command that prints a result takes ``--json``; ``presets --json`` is one document."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer.main

from jetscale.cli import _register, app, main

RESULT_COMMANDS = ["simulate", "tune", "load", "presets", "demo", "hpa explain", "hpa decide", "k8s render",
                   "k8s dashboards", "k8s apply"]  # fmt: skip


def _command(path: str) -> Any:
    _register()
    node: Any = typer.main.get_command(app)
    for word in path.split():
        node = node.commands[word]
    return node


@pytest.mark.parametrize("path", RESULT_COMMANDS)
def test_every_result_command_has_json(path: str) -> None:
    flags = {opt for param in _command(path).params for opt in getattr(param, "opts", ())}
    assert "--json" in flags


def test_presets_json(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["presets", "--json"])
    assert exit_.value.code in (0, None)
    doc = json.loads(capsys.readouterr().out)
    names = [s["preset"] for s in doc["setups"]]
    assert "v5e-8/llama2-7b" in names
    first = doc["setups"][0]
    assert first["decode_slots"] > 0 and 0 < first["hbm_used_bytes"] <= first["hbm_total_bytes"]
