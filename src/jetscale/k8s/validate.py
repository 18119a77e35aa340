"""Checking a rendering before anything reaches a cluster (this module does I/O: schemas, ``promtool``).

- Kubernetes objects against the API's own JSON schemas for a chosen minor version, offline, with the
  ``kubernetes-validate`` package in strict mode (an unknown field is an error, as ``kubectl`` does it).
- Custom resources (GMP's ``PodMonitoring``, KEDA's ``ScaledObject``) against the schemas kept in
  ``jetscale/k8s/schemas`` with ``jsonschema``.
- The Prometheus config and recording rules with ``promtool check config`` / ``check rules``, and each
  prometheus-adapter query, expanded from its template, as a recording rule with ``promtool check rules``.

Every failure is a ``ConfigError`` naming the file, the object and the field.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate

from jetscale.errors import ConfigError
from jetscale.k8s.bundle import FileKind, RenderedFile
from jetscale.k8s.prometheus import dump_yaml

__all__ = [
    "CUSTOM_RESOURCES",
    "PROMTOOL_INSTALL",
    "ValidationReport",
    "adapter_check_rules",
    "find_promtool",
    "promtool_check_config",
    "promtool_check_rules",
    "validate_custom_resource",
    "validate_object",
    "validate_rendering",
]

PROMTOOL_INSTALL = "apt-get install -y prometheus"
SCHEMAS = Path(__file__).with_name("schemas")
# (apiVersion, kind) -> schema file of a custom resource
CUSTOM_RESOURCES: Mapping[tuple[str, str], str] = {
    ("monitoring.googleapis.com/v1", "PodMonitoring"): "podmonitoring.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.json",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationReport:
    """What was checked: object counts and the promtool runs (0 when promtool was not asked for)."""

    kubernetes_version: str
    kubernetes_objects: int
    custom_resources: int
    promtool_checks: int


def _describe(doc: Mapping[str, Any], origin: str) -> str:
    meta = doc.get("metadata") or {}
    name = meta.get("name", "?") if isinstance(meta, Mapping) else "?"
    where = f"{origin}: " if origin else ""
    return f"{where}{doc.get('kind', '?')}/{name}"


def _field(path: Iterable[object]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def validate_object(doc: Mapping[str, Any], *, kubernetes_version: str, origin: str = "") -> None:
    """A built-in Kubernetes object against the schemas of ``kubernetes_version`` (strict)."""
    try:
        kubernetes_validate.validate(dict(doc), kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise ConfigError(
            f"{_describe(doc, origin)}: '{_field(exc.path)}' is invalid for Kubernetes {kubernetes_version}: "
            f"{exc.message}"
        ) from None
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.utils.VersionNotSupportedError) as exc:
        raise ConfigError(f"{_describe(doc, origin)}: {exc.message}") from None


@cache
def _crd_validator(filename: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / filename).read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator: jsonschema.protocols.Validator = validator_class(schema)
    return validator


def validate_custom_resource(doc: Mapping[str, Any], *, origin: str = "") -> None:
    """A PodMonitoring or ScaledObject against jetscale's schema of its CRD."""
    key = (str(doc.get("apiVersion")), str(doc.get("kind")))
    if key not in CUSTOM_RESOURCES:
        known = ", ".join(f"{api}/{kind}" for api, kind in CUSTOM_RESOURCES)
        raise ConfigError(f"{_describe(doc, origin)}: custom resource must be one of {known} (got {key[0]}/{key[1]})")
    errors = sorted(_crd_validator(CUSTOM_RESOURCES[key]).iter_errors(dict(doc)), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        raise ConfigError(f"{_describe(doc, origin)}: '{_field(first.path)}' is invalid: {first.message}")


def find_promtool(candidates: Sequence[str | None] | None = None) -> str:
    """``/usr/bin/promtool`` or the first on PATH; ``ConfigError`` saying how to install it otherwise."""
    if candidates is None:
        candidates = ("/usr/bin/promtool", shutil.which("promtool"))
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigError(f"'promtool' must be installed to check Prometheus files (got none): run `{PROMTOOL_INSTALL}`")


def _run(promtool: str, args: list[str], cwd: str, what: str) -> None:
    result = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        detail = " ".join((result.stderr or result.stdout).split())
        raise ConfigError(f"{what}: promtool {' '.join(args)} failed: {detail}")


def promtool_check_config(config: Mapping[str, Any], rules_text: str, *, promtool: str, origin: str = "") -> None:
    """``promtool check config`` on a prometheus.yml whose ``rule_files`` is ``rules.yml`` (checked too).

    Debian's promtool is built without Kubernetes service discovery and refuses ``kubernetes_sd_configs``;
    then those blocks are checked here (role, namespaces) and promtool checks the rest with each one
    replaced by a ``file_sd_configs`` block.
    """
    what = origin or "prometheus.yml"
    with tempfile.TemporaryDirectory(prefix="jetscale-promtool-") as tmp:
        Path(tmp, "rules.yml").write_text(rules_text, encoding="utf-8")
        Path(tmp, "targets.json").write_text("[]", encoding="utf-8")
        Path(tmp, "prometheus.yml").write_text(dump_yaml(dict(config)), encoding="utf-8")
        try:
            _run(promtool, ["check", "config", "prometheus.yml"], tmp, what)
        except ConfigError as exc:
            if "kubernetes_sd_configs not found" not in str(exc):
                raise
            Path(tmp, "prometheus.yml").write_text(dump_yaml(_without_kubernetes_sd(config, what)), encoding="utf-8")
            _run(promtool, ["check", "config", "prometheus.yml"], tmp, what)


_SD_ROLES = frozenset({"node", "pod", "service", "endpoints", "endpointslice", "ingress"})
_SD_KEYS = frozenset({"role", "namespaces", "selectors", "api_server", "kubeconfig_file", "attach_metadata"})


def _without_kubernetes_sd(config: Mapping[str, Any], what: str) -> dict[str, Any]:
    jobs: list[Any] = []
    for index, job in enumerate(config.get("scrape_configs") or []):
        blocks = job.get("kubernetes_sd_configs")
        if blocks is None:
            jobs.append(job)
            continue
        for number, block in enumerate(blocks):
            where = f"{what}: 'scrape_configs[{index}].kubernetes_sd_configs[{number}]"
            unknown = sorted(set(block) - _SD_KEYS)
            if unknown:
                raise ConfigError(f"{where}' has unknown fields (got {unknown})")
            if block.get("role") not in _SD_ROLES:
                raise ConfigError(f"{where}.role' must be one of {sorted(_SD_ROLES)} (got {block.get('role')!r})")
            names = (block.get("namespaces") or {}).get("names", [])
            if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
                raise ConfigError(f"{where}.namespaces.names' must be a list of namespaces (got {names!r})")
        rest = {key: value for key, value in job.items() if key != "kubernetes_sd_configs"}
        jobs.append(rest | {"file_sd_configs": [{"files": ["targets.json"]}]})
    return dict(config) | {"scrape_configs": jobs}


def promtool_check_rules(rules_text: str, *, promtool: str, origin: str = "") -> None:
    with tempfile.TemporaryDirectory(prefix="jetscale-promtool-") as tmp:
        Path(tmp, "rules.yml").write_text(rules_text, encoding="utf-8")
        _run(promtool, ["check", "rules", "rules.yml"], tmp, origin or "rules.yml")


_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)")


def adapter_check_rules(adapter_config: Mapping[str, Any]) -> dict[str, Any]:
    """prometheus-adapter's ``metricsQuery`` templates expanded with sample values, as a rules file.

    ``<<.Series>>`` becomes the series of ``seriesQuery``, ``<<.LabelMatchers>>`` matchers on every label the
    rule's ``resources`` map, ``<<.GroupBy>>`` those labels: what the adapter sends to Prometheus.
    """
    rules: list[dict[str, str]] = []
    for section in ("rules", "externalRules"):
        for index, rule in enumerate(adapter_config.get(section) or []):
            match = _SERIES.match(str(rule.get("seriesQuery", "")))
            if match is None:
                raise ConfigError(f"'{section}[{index}].seriesQuery' must start with a series name (got {rule!r})")
            labels = list((rule.get("resources") or {}).get("overrides", {}))
            matchers = ",".join(f'{label}="sample"' for label in labels)
            expr = (
                str(rule.get("metricsQuery", ""))
                .replace("<<.Series>>", match.group(1))
                .replace("<<.LabelMatchers>>", matchers)
                .replace("<<.GroupBy>>", ",".join(labels))
            )
            if "<<" in expr:
                raise ConfigError(f"'{section}[{index}].metricsQuery' uses an unknown template (got {expr!r})")
            rules.append({"record": f"jetscale:adapter_{section.lower()}_{index}", "expr": expr})
    return {"groups": [{"name": "prometheus-adapter-queries", "rules": rules}]}


def validate_rendering(
    files: Iterable[RenderedFile], *, kubernetes_version: str, promtool: str | None
) -> ValidationReport:
    """Every object and config of a rendering; promtool checks run only when ``promtool`` is given."""
    files = list(files)
    objects = custom = checks = 0
    for file in files:
        if file.kind is not FileKind.MANIFESTS:
            continue
        for doc in file.documents:
            if (str(doc.get("apiVersion")), str(doc.get("kind"))) in CUSTOM_RESOURCES:
                validate_custom_resource(doc, origin=file.path)
                custom += 1
            else:
                validate_object(doc, kubernetes_version=kubernetes_version, origin=file.path)
                objects += 1
    if promtool is not None:
        by_kind: dict[FileKind, list[RenderedFile]] = {}
        for file in files:
            by_kind.setdefault(file.kind, []).append(file)
        rules = by_kind.get(FileKind.PROMETHEUS_RULES, [])
        for config in by_kind.get(FileKind.PROMETHEUS_CONFIG, []):
            rules_text = rules[0].text if rules else "groups: []\n"
            promtool_check_config(config.documents[0], rules_text, promtool=promtool, origin=config.path)
            checks += 1
        for rule_file in rules:
            promtool_check_rules(rule_file.text, promtool=promtool, origin=rule_file.path)
            checks += 1
        for adapter in by_kind.get(FileKind.ADAPTER_CONFIG, []):
            expanded = adapter_check_rules(adapter.documents[0])
            promtool_check_rules(dump_yaml(expanded), promtool=promtool, origin=adapter.path)
            checks += 1
    return ValidationReport(
        kubernetes_version=kubernetes_version,
        kubernetes_objects=objects,
        custom_resources=custom,
        promtool_checks=checks,
    )
