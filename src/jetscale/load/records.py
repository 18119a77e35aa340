"""Per-request records of a load run: when each request was due, sent, answered, and how it ended.

``RecordBuffer`` is what the load generator writes while it runs: one row per request sent, appended at
send time with the outcome ``UNFINISHED`` and completed when the response ends. A request that is cut
off at the end of the run therefore stays ``UNFINISHED``; nothing is lost or counted twice.
``Records`` is the frozen, columnar (numpy) form that statistics and reports read.

Times are seconds since the start of the run on the generator's monotonic clock; NaN where a time does
not exist (``scheduled_s`` in a closed loop, ``first_token_s`` of a non-streamed response).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

__all__ = ["COLUMNS", "Outcome", "RecordBuffer", "Records"]


class Outcome(IntEnum):
    OK = 0
    HTTP = 1  # a non-2xx status; ``code`` is the status
    TIMEOUT = 2
    CONNECTION = 3  # refused, reset or closed before the response ended
    PROTOCOL = 4  # a response that could not be understood
    GRPC = 5  # a gRPC status other than OK; ``code`` is its number
    UNFINISHED = 6  # still running when the run ended

    def label(self, code: int) -> str:
        """The error's name as the summary shows it (``http 503``, ``grpc RESOURCE_EXHAUSTED``, ``timeout``)."""
        if self is Outcome.HTTP:
            return f"http {code}"
        if self is Outcome.GRPC:
            return f"grpc {_GRPC_NAMES.get(code, str(code))}"
        return self.name.lower()


_GRPC_NAMES = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
}

# name -> numpy dtype, in file order
COLUMNS: dict[str, str] = {
    "scheduled_s": "f8",
    "sent_s": "f8",
    "first_token_s": "f8",
    "done_s": "f8",
    "input_tokens": "i8",
    "max_tokens": "i8",
    "output_tokens": "i8",
    "outcome": "i8",
    "code": "i8",
}


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Records:
    """Columns of equal length, one row per request sent."""

    scheduled_s: np.ndarray
    sent_s: np.ndarray
    first_token_s: np.ndarray
    done_s: np.ndarray
    input_tokens: np.ndarray
    max_tokens: np.ndarray
    output_tokens: np.ndarray
    outcome: np.ndarray
    code: np.ndarray

    def __len__(self) -> int:
        return len(self.sent_s)

    @classmethod
    def from_columns(cls, columns: dict[str, np.ndarray]) -> Records:
        missing = [name for name in COLUMNS if name not in columns]
        if missing:
            raise ValueError(f"records lack column(s) {', '.join(missing)}")
        return cls(**{name: np.asarray(columns[name], dtype=dtype) for name, dtype in COLUMNS.items()})

    def columns(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in COLUMNS}

    @property
    def ok(self) -> np.ndarray:
        result: np.ndarray = self.outcome == Outcome.OK
        return result

    @property
    def finished(self) -> np.ndarray:
        result: np.ndarray = self.outcome != Outcome.UNFINISHED
        return result

    @property
    def ttft_s(self) -> np.ndarray:
        result: np.ndarray = self.first_token_s - self.sent_s
        return result

    @property
    def e2e_s(self) -> np.ndarray:
        result: np.ndarray = self.done_s - self.sent_s
        return result

    @property
    def tpot_s(self) -> np.ndarray:
        """Time per output token after the first: (end - first token) / (tokens - 1); NaN below 2 tokens."""
        rest = self.output_tokens - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            tpot: np.ndarray = np.where(rest > 0, (self.done_s - self.first_token_s) / np.maximum(rest, 1), np.nan)
        return tpot

    @property
    def lateness_s(self) -> np.ndarray:
        result: np.ndarray = self.sent_s - self.scheduled_s
        return result


class RecordBuffer:
    """Append-only columns for a running generator: ``begin`` at send, ``finish`` at the response's end."""

    __slots__ = ("_cols",)

    def __init__(self) -> None:
        self._cols: dict[str, Any] = {
            name: array("d") if dtype == "f8" else array("q") for name, dtype in COLUMNS.items()
        }

    def __len__(self) -> int:
        return len(self._cols["sent_s"])

    def begin(self, *, scheduled_s: float, sent_s: float, input_tokens: int, max_tokens: int) -> int:
        c = self._cols
        c["scheduled_s"].append(scheduled_s)
        c["sent_s"].append(sent_s)
        c["first_token_s"].append(float("nan"))
        c["done_s"].append(float("nan"))
        c["input_tokens"].append(input_tokens)
        c["max_tokens"].append(max_tokens)
        c["output_tokens"].append(0)
        c["outcome"].append(int(Outcome.UNFINISHED))
        c["code"].append(0)
        return len(c["sent_s"]) - 1

    def finish(
        self,
        row: int,
        *,
        first_token_s: float,
        done_s: float,
        output_tokens: int,
        outcome: Outcome,
        code: int = 0,
        input_tokens: int | None = None,
    ) -> None:
        c = self._cols
        c["first_token_s"][row] = first_token_s
        c["done_s"][row] = done_s
        c["output_tokens"][row] = output_tokens
        c["outcome"][row] = int(outcome)
        c["code"][row] = code
        if input_tokens is not None:
            c["input_tokens"][row] = input_tokens

    def column(self, name: str) -> Any:
        """The live column ``name`` (read it, do not change it)."""
        return self._cols[name]

    def snapshot(self) -> Records:
        """A copy of the rows so far."""
        return Records.from_columns({name: np.array(col, dtype=COLUMNS[name]) for name, col in self._cols.items()})
