"""Reading a controller's config file: every error is one line naming the file, the field and the value.

``FieldReader(origin)`` raises ``ConfigError("<file>: '<field>' must be <constraint> (got <value>)")`` at
the first invalid field. Pure: callers pass the text (``load_documents``) or an already loaded mapping.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import NoReturn

from jetscale.errors import ConfigError
from jetscale.safeload import load_yaml_all
from jetscale.units import parse_duration_s

__all__ = ["FieldReader", "load_documents", "show"]

MAX_INT32 = 2**31 - 1


def show(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_documents(text: str, *, origin: str) -> list[Mapping[str, object]]:
    """The non-empty YAML documents of ``text``; each must be a mapping."""
    docs = [doc for doc in load_yaml_all(text, what=origin) if doc is not None]
    for index, doc in enumerate(docs):
        if not isinstance(doc, Mapping):
            raise ConfigError(f"{origin}: document {index + 1} must be a mapping (got {show(doc)})")
    return docs


class FieldReader:
    """Validates fields of one file; ``origin`` (the file name) starts every message."""

    def __init__(self, origin: str) -> None:
        self.origin = origin or "<config>"

    def fail(self, path: str, constraint: str, value: object) -> NoReturn:
        raise ConfigError(f"{self.origin}: '{path}' must be {constraint} (got {show(value)})")

    def mapping(self, value: object, path: str, fields: Sequence[str]) -> Mapping[str, object]:
        if not isinstance(value, Mapping):
            self.fail(path, "a mapping", value)
        for key in value:
            if key not in fields:
                close = difflib.get_close_matches(str(key), list(fields), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"one of {', '.join(fields)}"
                where = f"{path}.{key}" if path else str(key)
                raise ConfigError(f"{self.origin}: '{where}' is not a known field ({hint}) (got {show(value[key])})")
        return value

    def required(self, doc: Mapping[str, object], key: str, path: str) -> object:
        if key not in doc or doc[key] is None:
            where = f"{path}.{key}" if path else key
            raise ConfigError(f"{self.origin}: '{where}' is required (got nothing)")
        return doc[key]

    def integer(self, value: object, path: str, *, lo: int, hi: int = MAX_INT32) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, "an integer", value)
        if not lo <= value <= hi:
            self.fail(path, f"an integer in [{lo}, {hi}]", value)
        return value

    def number(self, value: object, path: str, *, lo: float = -math.inf, hi: float = math.inf) -> float:
        """A finite number, given as a YAML number or as a string (KEDA metadata and Knative annotations
        are strings)."""
        if isinstance(value, bool):
            self.fail(path, "a number", value)
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                self.fail(path, "a number", value)
        elif isinstance(value, (int, float)):
            number = float(value)
        else:
            self.fail(path, "a number", value)
        if not math.isfinite(number):
            self.fail(path, "a finite number", value)
        if not lo <= number <= hi:
            self.fail(path, f"a number in [{lo:g}, {hi:g}]", value)
        return number

    def int_string(self, value: object, path: str, *, lo: int, hi: int = MAX_INT32) -> int:
        """An integer, as a YAML integer or a string of one (Knative's strconv.ParseInt)."""
        if isinstance(value, str):
            try:
                value = int(value.strip(), 10)
            except ValueError:
                self.fail(path, "an integer", value)
        return self.integer(value, path, lo=lo, hi=hi)

    def text(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(path, "a non-empty string", value)
        return value

    def boolean(self, value: object, path: str) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        self.fail(path, "true or false", value)

    def choice(self, value: object, path: str, choices: Sequence[str]) -> str:
        if not isinstance(value, str) or value not in choices:
            self.fail(path, f"one of {', '.join(choices)}", value)
        return value

    def duration_s(self, value: object, path: str, *, lo: float = 0.0, hi: float = math.inf) -> float:
        """A Go duration (``60s``, ``1m30s``, ``500ms``)."""
        try:
            seconds = parse_duration_s(value, path)
        except ConfigError:
            self.fail(path, "a duration such as 60s, 1m30s or 500ms", value)
        if not lo <= seconds <= hi:
            self.fail(path, f"a duration in [{lo:g}s, {hi:g}s]", value)
        return seconds
