"""The deployable bundle ``jetscale tune`` writes: the HPA *and* the replica shape it was tuned at.

An HPA on slots or backlog holds its promise only at the batch size, prompt and cache lengths and HBM
mode it was tuned at, so tune writes them next to the manifests::

    DIR/bundle.yaml     kind jetscale-tune-bundle: the files below, the shape (for people) and the result
    DIR/hpa.yaml        the recommended HPA (hpa-gke.yaml: its GKE spelling)
    DIR/replica.yaml    the replica shape, a replica YAML (docs/replica.md)

``replica.yaml`` is the truth; ``bundle.yaml``'s ``shape`` must agree with it (an edited bundle is
refused, naming both values). ``jetscale k8s render --bundle DIR`` checks the deploy config against
the shape (``jetscale.k8s.tuned``), and ``jetscale simulate --hpa DIR/hpa.yaml`` replays the HPA at it.
``find_bundle`` finds the bundle an HPA file belongs to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from jetscale.engine.presets import ReplicaConfig, replica_config_from_mapping, replica_config_to_mapping
from jetscale.errors import ConfigError
from jetscale.k8s.tuned import ReplicaShape, replica_shape
from jetscale.safeload import load_yaml

__all__ = ["BUNDLE_FILE", "BUNDLE_KIND", "Bundle", "find_bundle", "hpa_and_bundle", "load_bundle", "write_bundle"]

BUNDLE_FILE = "bundle.yaml"
BUNDLE_KIND = "jetscale-tune-bundle"
_FIELDS = ("kind", "version", "hpa", "hpa_gke", "replica", "shape", "tuned")


@dataclass(frozen=True, slots=True, kw_only=True)
class Bundle:
    manifest: Path  # DIR/bundle.yaml
    hpa: Path
    hpa_gke: Path | None
    replica_file: Path
    replica: ReplicaConfig

    @property
    def shape(self) -> ReplicaShape:
        return replica_shape(self.replica)


def write_bundle(
    out_dir: Path, replica: ReplicaConfig, *, hpa: Path, hpa_gke: Path, tuned: Mapping[str, object]
) -> tuple[Path, Path]:
    """Write ``replica.yaml`` and ``bundle.yaml`` under ``out_dir``; (replica file, bundle file)."""
    shape = replica_shape(replica)
    replica_path, bundle_path = out_dir / "replica.yaml", out_dir / BUNDLE_FILE
    replica_path.write_text(
        "# The replica shape the HPA next to it was tuned at (jetscale tune). A replica YAML: docs/replica.md.\n"
        "# Deploy it with that HPA: `jetscale k8s render --bundle DIR --config deploy.yaml` checks the server's\n"
        "# arguments against it; `jetscale simulate --hpa DIR/hpa.yaml` replays the HPA at this shape.\n"
        + yaml.safe_dump(replica_config_to_mapping(replica), sort_keys=False),
        encoding="utf-8",
    )
    doc = {
        "kind": BUNDLE_KIND,
        "version": 1,
        "hpa": hpa.name,
        "hpa_gke": hpa_gke.name,
        "replica": replica_path.name,
        "shape": shape.as_mapping(),
        "tuned": dict(tuned),
    }
    bundle_path.write_text(
        "# jetscale tune's recommendation: the HPA and the replica shape it holds at. Deploy both:\n"
        "#   jetscale k8s render --target gke --bundle DIR --config deploy.yaml --out OUT\n"
        f"# which refuses a deploy config that contradicts the shape ({shape.describe()}).\n"
        + yaml.safe_dump(doc, sort_keys=False),
        encoding="utf-8",
    )
    return replica_path, bundle_path


def _read_yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return load_yaml(text, what=str(path))  # ConfigError naming the file: not YAML, or past safeload's limits


def load_bundle(path: Path) -> Bundle:
    """The bundle in directory ``path`` (or the ``bundle.yaml`` at ``path``); ConfigError naming the field."""
    manifest = path / BUNDLE_FILE if path.is_dir() else path
    doc = _read_yaml(manifest)
    if not isinstance(doc, Mapping) or doc.get("kind") != BUNDLE_KIND:
        got = doc.get("kind") if isinstance(doc, Mapping) else type(doc).__name__
        raise ConfigError(f"{manifest}: 'kind' must be {BUNDLE_KIND} (got {got!r})")
    unknown = sorted(str(k) for k in doc if k not in _FIELDS)
    if unknown:
        raise ConfigError(f"{manifest}: '{unknown[0]}' must be one of the bundle fields {', '.join(_FIELDS)}")
    if doc.get("version") != 1:
        raise ConfigError(f"{manifest}: 'version' must be 1 (got {doc.get('version')!r})")

    def file(key: str, *, required: bool = True) -> Path | None:
        name = doc.get(key)
        if name is None and not required:
            return None
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise ConfigError(f"{manifest}: '{key}' must be a file name next to it (got {name!r})")
        return manifest.parent / name

    hpa, hpa_gke, replica_file = file("hpa"), file("hpa_gke", required=False), file("replica")
    assert hpa is not None and replica_file is not None
    data = _read_yaml(replica_file)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{replica_file}: must hold a mapping of replica fields (got {type(data).__name__})")
    try:
        replica = replica_config_from_mapping(data)
    except ConfigError as exc:
        raise ConfigError(f"{replica_file}: {exc}") from None
    bundle = Bundle(manifest=manifest, hpa=hpa, hpa_gke=hpa_gke, replica_file=replica_file, replica=replica)
    written = doc.get("shape")
    if written is not None:
        actual = bundle.shape.as_mapping()
        if not isinstance(written, Mapping):
            raise ConfigError(f"{manifest}: 'shape' must be a mapping (got {written!r})")
        for key, value in written.items():
            if actual.get(str(key)) != value:
                raise ConfigError(
                    f"{manifest}: 'shape.{key}' must be what {replica_file.name} says, {actual.get(str(key))!r} "
                    f"(got {value!r}): one of the two files was edited"
                )
    return bundle


def find_bundle(path: Path) -> Bundle | None:
    """The bundle ``path`` belongs to: a bundle directory, its ``bundle.yaml``, or an HPA file it names."""
    if path.is_dir():
        return load_bundle(path) if (path / BUNDLE_FILE).is_file() else None
    if path.name == BUNDLE_FILE:
        return load_bundle(path)
    sibling = path.parent / BUNDLE_FILE
    if not sibling.is_file():
        return None
    bundle = load_bundle(sibling)
    named = {bundle.hpa.resolve(), bundle.hpa_gke.resolve() if bundle.hpa_gke else None}
    return bundle if path.resolve() in named else None


def hpa_and_bundle(hpa: Path | None, bundle: Path | None) -> tuple[Path, Bundle | None]:
    """``--hpa FILE`` and/or ``--bundle DIR`` as (the HPA manifest, its bundle if it has one)."""
    if bundle is not None:
        found = load_bundle(bundle)
        if hpa is not None and hpa.resolve() not in (found.hpa.resolve(), (found.hpa_gke or found.hpa).resolve()):
            raise ConfigError(f"'--hpa' must be one of the bundle's manifests, {found.hpa} (got {str(hpa)!r})")
        return (hpa or found.hpa), found
    if hpa is None:
        raise ConfigError("give the HPA: '--hpa FILE' or '--bundle DIR' (a jetscale tune output) (got neither)")
    if hpa.is_dir():
        found = load_bundle(hpa)
        return found.hpa, found
    return hpa, find_bundle(hpa)
