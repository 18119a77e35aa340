"""What a replica keeps per request, and the events it hands out: one record and two events per
request, never anything per token, built as cheaply as CPython allows.

At 100k+ requests per second the cost of making these objects shows. A class call with no
``__init__`` is the cheapest way to make an instance, so:

* ``RequestRecord`` has slots and no ``__init__``: the engine's ``submit`` sets every field.
* A ``Completion`` or ``FirstToken`` is filled in as a writable *draft* that has exactly the event's
  slots, then given the event's class (``__class__`` assignment, which CPython allows between classes
  of the same layout). The result is the very object the keyword constructor makes (equal, same repr
  and hash, frozen) at about a sixth of the cost. ``DRAFTS`` says whether the drafts match the events'
  shapes in ``api.py``; if that file changes them, it is False and ``completion``/``first_token`` fall
  back to the keyword constructors. The engine's event loop inlines the draft branch of both.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jetscale.engine.api import Completion, FirstToken

__all__ = ["DRAFTS", "CompletionDraft", "FirstTokenDraft", "RequestRecord", "completion", "first_token"]


class RequestRecord:
    """A request in a replica, from ``submit`` until its completion has been handed out."""

    __slots__ = (
        "arrival_s",
        "cancelled",
        "done",
        "first_token_s",
        "input_tokens",
        "insert_s",
        "insert_step",
        "output_tokens",
        "prefill_s",
        "prefill_start_s",
        "request_id",
        "seq",
        "slot",
    )
    request_id: int
    arrival_s: float
    input_tokens: int  # cut to max_prefill_length
    output_tokens: int  # cut to what the slot's cache holds
    prefill_s: float  # its prefill's duration (the prompt padded to its bucket)
    seq: int  # submission order: breaks ties between requests that end at the same step
    prefill_start_s: float
    first_token_s: float  # < 0: prefill not ended
    insert_s: float
    insert_step: int  # the global generate step it took its slot at; < 0: not in a slot
    slot: int
    done: bool
    cancelled: bool  # its client went away: it ends at the next step and hands out no completion


_COMPLETION_FIELDS = (
    "request_id",
    "input_tokens",
    "output_tokens",
    "arrival_s",
    "prefill_start_s",
    "first_token_s",
    "insert_s",
    "end_s",
)
_FIRST_TOKEN_FIELDS = ("request_id", "time_s")


class CompletionDraft:
    """A ``Completion`` being filled in (same slots, writable)."""

    __slots__ = _COMPLETION_FIELDS


class FirstTokenDraft:
    """A ``FirstToken`` being filled in (same slots, writable)."""

    __slots__ = _FIRST_TOKEN_FIELDS


def _drafts_work() -> bool:
    """Whether the drafts have the events' exact fields and layout (checked once, at import)."""
    for event, draft, names in (
        (Completion, CompletionDraft, _COMPLETION_FIELDS),
        (FirstToken, FirstTokenDraft, _FIRST_TOKEN_FIELDS),
    ):
        fields = tuple(f.name for f in dataclasses.fields(event))
        if fields != names or event.__dict__.get("__slots__") != names or hasattr(event, "__post_init__"):
            return False
        trial: Any = draft()
        try:
            trial.__class__ = event
        except TypeError:
            return False
    return True


DRAFTS = _drafts_work()


def completion(record: RequestRecord, end_s: float) -> Completion:
    """The ``Completion`` of ``record``, which ended at ``end_s``."""
    if not DRAFTS:
        return Completion(
            request_id=record.request_id,
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            arrival_s=record.arrival_s,
            prefill_start_s=record.prefill_start_s,
            first_token_s=record.first_token_s,
            insert_s=record.insert_s,
            end_s=end_s,
        )
    c: Any = CompletionDraft()
    c.request_id = record.request_id
    c.input_tokens = record.input_tokens
    c.output_tokens = record.output_tokens
    c.arrival_s = record.arrival_s
    c.prefill_start_s = record.prefill_start_s
    c.first_token_s = record.first_token_s
    c.insert_s = record.insert_s
    c.end_s = end_s
    c.__class__ = Completion
    return c  # type: ignore[no-any-return]


def first_token(request_id: int, time_s: float) -> FirstToken:
    """The ``FirstToken`` of ``request_id``, produced at ``time_s``."""
    if not DRAFTS:
        return FirstToken(request_id=request_id, time_s=time_s)
    f: Any = FirstTokenDraft()
    f.request_id = request_id
    f.time_s = time_s
    f.__class__ = FirstToken
    return f  # type: ignore[no-any-return]
