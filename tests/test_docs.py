"""The docs hold: links stay inside the repository, help texts name commands and flags that exist, the
examples compare what the docs say, and the README and docs/tune.md give one measured tune time."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main

from jetscale.cli import _register, app

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_links_resolve_inside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert "/work/" not in text and "../shared" not in text
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor in the same page
        path = (doc.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{doc.name}: {target} leaves the repository"
        assert path.exists(), f"{doc.name}: {target} does not exist"


def _commands() -> dict[str, Any]:
    """Every command by its path (``"hpa decide"``), with the group itself as ``""``."""
    _register()
    out: dict[str, Any] = {}

    def walk(node: Any, path: str) -> None:
        out[path] = node
        for name, child in (getattr(node, "commands", None) or {}).items():
            walk(child, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    return out


def _flags(command: Any) -> set[str]:
    return {opt for p in command.params for opt in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}


def _help_texts(command: Any) -> list[str]:
    texts = [command.help or ""]
    texts += [getattr(p, "help", None) or "" for p in command.params]
    return texts


def _references(text: str) -> list[tuple[list[str], list[str]]]:
    """(sub-command words, flags) of each ``jetscale ...`` a help text mentions, up to the end of its clause."""
    found = []
    for match in re.finditer(r"\bjetscale((?: [a-z][a-z0-9-]*)+)((?:[^.;)`]|\.\S)*)", text):
        words = match.group(1).split()
        flags = [f.split("=")[0] for f in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*(?:=\S+)?", match.group(2))]
        found.append((words, flags))
    return found


def test_help_texts_name_commands_and_flags_that_exist() -> None:
    commands = _commands()
    checked = 0
    for path, command in commands.items():
        for text in _help_texts(command):
            for words, flags in _references(text):
                resolved = ""
                for word in words:
                    if f"{resolved} {word}".strip() not in commands:
                        break
                    resolved = f"{resolved} {word}".strip()
                assert resolved, f"{path or 'jetscale'}: help names `jetscale {' '.join(words)}`, no such command"
                unknown = [f for f in flags if f not in _flags(commands[resolved])]
                assert not unknown, f"{path}: help names `jetscale {resolved} {' '.join(unknown)}`, no such flag"
                checked += 1
    assert checked >= 5  # the examples in simulate's, tune's and load's help were read


def test_the_check_catches_a_flag_that_does_not_exist() -> None:
    ((words, flags),) = _references("Replica preset (jetscale serve --list-presets).")
    assert words == ["serve"] and flags == ["--list-presets"]
    assert "--list-presets" not in _flags(_commands()["serve"])


def test_compare_over_the_examples_is_the_three_signals_of_each_server() -> None:
    stems = sorted(p.stem for p in (ROOT / "examples" / "hpa").glob("*.yaml"))
    assert stems == ["backlog", "hbm", "slots", "vllm-batch", "vllm-kv-cache", "vllm-queue"]
    simulate = (ROOT / "docs" / "simulate.md").read_text(encoding="utf-8")
    assert "--compare examples/hpa/{backlog,hbm,slots}.yaml" in simulate and "three rows" in simulate


def test_one_measured_tune_time() -> None:
    pattern = re.compile(r"(\d+) s on the 2 shared\s+cores")
    readme = pattern.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    tune = pattern.findall(" ".join((ROOT / "docs" / "tune.md").read_text(encoding="utf-8").split()))
    assert readme and tune and set(readme) == set(tune), (readme, tune)
