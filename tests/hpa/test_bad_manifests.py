"""The bad-manifest corpus: each file in tests/data/bad_manifests holds one mistake (``many_errors.yaml``
several), and expected.yaml lists the exact field paths its ManifestError must name, no more, no fewer."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jetscale.errors import ConfigError, ManifestError
from jetscale.hpa.spec import parse_hpa

CORPUS = Path(__file__).parent.parent / "data" / "bad_manifests"
EXPECTED: dict[str, list[str]] = yaml.safe_load((CORPUS / "expected.yaml").read_text())
FILES = sorted(p.name for p in CORPUS.glob("*.yaml") if p.name != "expected.yaml")


def test_corpus_and_expectations_match() -> None:
    assert len(FILES) >= 30
    assert sorted(EXPECTED) == FILES


@pytest.mark.parametrize("name", FILES, ids=[name.removesuffix(".yaml") for name in FILES])
def test_bad_manifest_lists_exactly_its_paths(name: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_hpa((CORPUS / name).read_text(), origin=name)
    error = caught.value
    assert sorted(error.paths) == sorted(EXPECTED[name])
    assert error.source == name
    message = str(error)
    assert message.startswith(f"{name}: invalid HorizontalPodAutoscaler: ")
    for field_error in error.errors:
        assert field_error.message, field_error.path
        assert f"{field_error.path}: {field_error.message}" in message


def test_many_errors_are_reported_together() -> None:
    name = "many_errors.yaml"
    with pytest.raises(ManifestError) as caught:
        parse_hpa((CORPUS / name).read_text())
    assert len(caught.value.errors) == len(EXPECTED[name]) >= 5


def test_manifest_error_is_a_config_error_and_a_value_error() -> None:
    with pytest.raises(ConfigError):
        parse_hpa((CORPUS / "period_zero.yaml").read_text())
    with pytest.raises(
        ValueError,
        match=r"spec\.behavior\.scaleDown\.policies\[0\]\.periodSeconds: "
        r"must be in 1\.\.1800 \(got 0\)",
    ):
        parse_hpa((CORPUS / "period_zero.yaml").read_text())
