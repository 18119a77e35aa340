"""The one way jetscale reads JSON and YAML that a user or a client wrote: parsing with limits.

``json.loads`` and ``yaml.safe_load`` trust their input: JSON nested 100,000 deep is a
``RecursionError``, a 5,000-digit integer a ``ValueError`` (CPython's limit on int conversion), YAML
nested 5,000 deep a traceback from the composer, and a few YAML aliases can stand for a billion nodes.
Here every such input is refused before it can do harm, with a ``ConfigError`` naming the source:

* **depth**: JSON at most ``JSON_MAX_DEPTH`` (64) arrays/objects deep, YAML at most ``YAML_MAX_DEPTH``
  (100) sequences/mappings deep, aliases expanded. JSON's depth is counted on the text (strings
  skipped) before the parser recurses; YAML's on the node stream, as the composer descends.
* **numbers**: at most ``MAX_NUMBER_LENGTH`` (100) characters, so no integer conversion can be
  expensive or fail; a JSON number must be finite (``1e999``, ``NaN`` and ``Infinity`` are refused).
* **YAML aliases**: a document may stand for at most ``YAML_MAX_NODES`` (1,000,000) nodes once its
  aliases are expanded ("billion laughs").

Nothing here reads a file: callers pass the text. Errors: ``ParseError`` (not JSON/YAML at all) and
``LimitError`` (parsed, but past a limit), both ``LoadError``, a ``ConfigError``. Each carries
``constraint`` and ``value`` so that a server can answer with them field by field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from jetscale.errors import ConfigError

__all__ = [
    "JSON_MAX_DEPTH",
    "MAX_NUMBER_LENGTH",
    "YAML_MAX_DEPTH",
    "YAML_MAX_NODES",
    "LimitError",
    "LimitedLoader",
    "LoadError",
    "ParseError",
    "load_json",
    "load_yaml",
    "load_yaml_all",
]

JSON_MAX_DEPTH = 64  # a request body or a JSONL row: jetscale's own formats nest at most 4 deep
YAML_MAX_DEPTH = 100  # a manifest, replica or price file: Kubernetes objects nest about 15 deep
MAX_NUMBER_LENGTH = 100  # characters; an int64 takes 20, a float64 written exactly about 25
YAML_MAX_NODES = 1_000_000  # nodes once aliases are expanded; a large manifest has a few thousand

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_LONG_NUMBER = re.compile(rf"-?[0-9][0-9.eE+\-]{{{MAX_NUMBER_LENGTH},}}")


class LoadError(ConfigError):
    """Text that could not be read as JSON or YAML within the limits; the message names the source."""

    def __init__(self, message: str, *, what: str, constraint: str, value: str) -> None:
        self.what = what
        self.constraint = constraint
        self.value = value
        super().__init__(message)


class ParseError(LoadError):
    """Not JSON or YAML: ``<what>: [line L, column C: ]invalid JSON|YAML: <problem>``."""

    def __init__(self, *, what: str, kind: str, problem: str, where: str = "") -> None:
        problem = " ".join(problem.split())
        super().__init__(
            f"{what}: {where}invalid {kind}: {problem}", what=what, constraint=f"valid {kind}", value=problem
        )


class LimitError(LoadError):
    """Past a limit: ``<what>: [line L, column C: ]must be <constraint> (got <value>)``."""

    def __init__(self, *, what: str, constraint: str, value: str, where: str = "") -> None:
        super().__init__(
            f"{what}: {where}must be {constraint} (got {value})", what=what, constraint=constraint, value=value
        )


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}... ({len(text)} characters)"


# --- JSON -------------------------------------------------------------------------------------------------


def _json_depth(structure: str) -> int:
    """The deepest nesting of ``[``/``{`` in ``structure`` (strings already removed); an upper bound
    for text that is not JSON, which the parser then refuses anyway."""
    brackets = _NOT_BRACKET.sub("", structure).encode("ascii")
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max())


def load_json(data: str | bytes, *, what: str, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """The value of JSON ``data`` (bytes in UTF-8, -16 or -32, as ``json.loads`` takes them).

    Raises ``ParseError`` for text that is not JSON (``NaN`` and ``Infinity`` included) and
    ``LimitError`` for nesting deeper than ``max_depth``, a number longer than ``MAX_NUMBER_LENGTH``
    characters or one too large for a float. ``what`` names the source in the message.
    """
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode(json.detect_encoding(data), "surrogatepass")
        except UnicodeDecodeError as exc:
            problem = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
            raise ParseError(what=what, kind="JSON", problem=problem) from None
    else:
        text = data
    structure = _JSON_STRING.sub('""', text)
    depth = _json_depth(structure)
    if depth > max_depth:
        raise LimitError(what=what, constraint=f"nested at most {max_depth} levels deep", value=f"{depth} levels")
    long_number = _LONG_NUMBER.search(structure)
    if long_number is not None:
        raise LimitError(
            what=what,
            constraint=f"made of numbers of at most {MAX_NUMBER_LENGTH} characters",
            value=_short(long_number.group()),
        )
    try:
        return json.loads(text, parse_float=_finite_float(what), parse_constant=_no_constant(what))
    except json.JSONDecodeError as exc:
        raise ParseError(what=what, kind="JSON", problem=str(exc)) from None
    except RecursionError:  # not reachable within the depth limit; kept so that no input can be a traceback
        raise LimitError(what=what, constraint=f"nested at most {max_depth} levels deep", value="deeper") from None


def _finite_float(what: str) -> Any:
    def parse(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise LimitError(what=what, constraint="made of numbers a float can hold", value=_short(text))
        return value

    return parse


def _no_constant(what: str) -> Any:
    def parse(name: str) -> float:
        raise ParseError(what=what, kind="JSON", problem=f"{name} is not a JSON number")

    return parse


# --- YAML -------------------------------------------------------------------------------------------------


class LimitedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that counts, as the composer descends, the nesting (aliases expanded), the
    expanded node count and the length of numbers, and raises ``LimitError`` past a limit.

    Subclass it to add checks of your own (``hpa.spec`` refuses duplicate keys); pass the subclass to
    ``load_yaml``/``load_yaml_all``, which set ``what`` and the limits on each instance.
    """

    what: str = "YAML"
    max_depth: int = YAML_MAX_DEPTH
    max_nodes: int = YAML_MAX_NODES

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0  # collections open around the node being composed
        self._nodes = 0  # nodes composed so far in this document, aliases counted expanded
        self._shape: dict[int, tuple[int, int]] = {}  # id(node) -> (collections deep, nodes) below it

    def compose_document(self) -> Node | None:
        self._nodes = 0
        self._shape = {}
        return Composer.compose_document(self)

    def _limit(self, constraint: str, value: str, mark: Any) -> LimitError:
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        return LimitError(what=self.what, constraint=constraint, value=value, where=where)

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent):
            target = self.anchors.get(event.anchor)  # an unknown anchor: the base class says so
            if target is not None:
                height, size = self._shape.get(id(target), (0, 1))
                if self._depth + height > self.max_depth:
                    raise self._limit(
                        f"nested at most {self.max_depth} levels deep",
                        f"{self._depth + height} levels with alias *{event.anchor} expanded",
                        event.start_mark,
                    )
                self._count(size, event.start_mark)
            return Composer.compose_node(self, parent, index)
        opens = isinstance(event, SequenceStartEvent | MappingStartEvent)
        if opens:
            self._depth += 1
            if self._depth > self.max_depth:
                raise self._limit(
                    f"nested at most {self.max_depth} levels deep", f"{self._depth} levels", event.start_mark
                )
        try:
            node = Composer.compose_node(self, parent, index)
        finally:
            if opens:
                self._depth -= 1
        if node is not None:
            self._measure(node)
        return node

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except ConfigError:
            raise
        except ValueError as exc:  # a scalar that matched a tag but cannot be one (``2001-13-01``)
            raise yaml.constructor.ConstructorError(None, None, str(exc), node.start_mark) from None

    def _count(self, size: int, mark: Any) -> None:
        self._nodes += size
        if self._nodes > self.max_nodes:
            raise self._limit(
                f"at most {self.max_nodes:,} nodes with its aliases expanded", f"{self._nodes:,} so far", mark
            )

    def _measure(self, node: Node) -> None:
        if isinstance(node, ScalarNode):
            if node.tag in (_INT_TAG, _FLOAT_TAG) and len(node.value) > MAX_NUMBER_LENGTH:
                raise self._limit(
                    f"made of numbers of at most {MAX_NUMBER_LENGTH} characters", _short(node.value), node.start_mark
                )
            self._count(1, node.start_mark)
            return
        children: list[Node]
        if isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, SequenceNode):
            children = list(node.value)
        else:
            children = []
        shapes = [self._shape.get(id(child), (0, 1)) for child in children]
        # the children were counted as they were composed (aliases by their expanded size): add this node
        self._count(1, node.start_mark)
        self._shape[id(node)] = (1 + max((h for h, _ in shapes), default=0), 1 + sum(s for _, s in shapes))


def _loader(text: str, what: str, loader: type[LimitedLoader], max_depth: int) -> LimitedLoader:
    instance = loader(text)
    instance.what = what
    instance.max_depth = max_depth
    return instance


def _parse_error(what: str, exc: yaml.YAMLError) -> ParseError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        return ParseError(what=what, kind="YAML", problem=str(exc.problem or exc.context), where=where)
    return ParseError(what=what, kind="YAML", problem=str(exc))


def _documents(instance: LimitedLoader) -> Iterator[Any]:
    try:
        while instance.check_data():  # type: ignore[no-untyped-call]
            yield instance.get_data()
    finally:
        instance.dispose()


def load_yaml(
    text: str, *, what: str, loader: type[LimitedLoader] = LimitedLoader, max_depth: int = YAML_MAX_DEPTH
) -> Any:
    """The one document of YAML ``text`` (None when empty); ``ParseError`` or ``LimitError`` naming ``what``
    (and the line and column) otherwise."""
    instance = _loader(text, what, loader, max_depth)
    try:
        return instance.get_single_data()
    except yaml.YAMLError as exc:
        raise _parse_error(what, exc) from None
    finally:
        instance.dispose()


def load_yaml_all(
    text: str, *, what: str, loader: type[LimitedLoader] = LimitedLoader, max_depth: int = YAML_MAX_DEPTH
) -> list[Any]:
    """Every document of YAML ``text``, empty ones as None; errors as ``load_yaml``."""
    try:
        return list(_documents(_loader(text, what, loader, max_depth)))
    except yaml.YAMLError as exc:
        raise _parse_error(what, exc) from None
