"""The virtual clock: a heap of events ordered by (time, priority, sequence), as SimPy orders them.

``now`` only moves when an event is taken, and jumps straight to it: nothing is stepped. Two events at
the same instant run in ``Priority`` order (what happened first in the world: a request that ends at
``t`` is done before a request arriving at ``t`` is routed, and both before the scrape at ``t``), and
two of the same priority in the order they were scheduled (the sequence number), so runs are
deterministic. Events can be cancelled lazily: whoever owns one keeps a token and compares it when the
event comes out (see ``jetscale.sim.simulator``).

Arrivals of an open loop are not pushed here one by one: they are a sorted array that the simulator
merges with the heap under the same ordering (``ARRIVAL`` priority, before any later-scheduled event
of equal time and priority), which saves a push and a pop per request.
"""

from __future__ import annotations

import heapq
from enum import IntEnum

__all__ = ["EventKind", "EventQueue", "Priority"]


class Priority(IntEnum):
    """Order of events at one instant."""

    ENGINE = 0  # a replica's next first token or completion
    LIFECYCLE = 1  # a replica scheduled, started, ready or gone
    ARRIVAL = 2  # a request arrives and is routed
    SCRAPE = 3  # metrics are read from every replica
    SYNC = 4  # the HPA reconciles
    SAMPLE = 5  # a timeline row is written


class EventKind(IntEnum):
    """What an event is (the simulator dispatches on it)."""

    ENGINE = 0  # payload: the replica
    SCHEDULED = 1  # payload: (replica, token): it got a node
    STARTED = 2  # its container started: the engine loads the model
    READY = 3  # its readiness probe passed
    SCRAPE = 4
    SYNC = 5
    SAMPLE = 6
    MINUTE = 7
    USER = 8  # payload: a closed-loop user who sends now


class EventQueue:
    """A heap of ``(time_s, priority, seq, kind, payload)``; ``now_s`` is the time of the last event taken."""

    __slots__ = ("_heap", "_seq", "now_s")

    def __init__(self, start_s: float = 0.0) -> None:
        self._heap: list[tuple[float, int, int, int, object]] = []
        self._seq = 0
        self.now_s = start_s

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, time_s: float, priority: int, kind: int, payload: object = None) -> None:
        """Schedule an event; ``kind`` says what it is to the caller, ``payload`` carries its data."""
        if time_s < self.now_s:
            raise ValueError(f"'time_s' must be >= now ({self.now_s}) (got {time_s})")
        self._seq += 1
        heapq.heappush(self._heap, (time_s, priority, self._seq, kind, payload))

    def peek(self) -> tuple[float, int]:
        """The (time, priority) of the next event; (inf, 0) when there is none."""
        heap = self._heap
        if not heap:
            return (float("inf"), 0)
        head = heap[0]
        return (head[0], head[1])

    def pop(self) -> tuple[float, int, int, object]:
        """Take the next event and move ``now_s`` to it: returns (time, priority, kind, payload)."""
        time_s, priority, _, kind, payload = heapq.heappop(self._heap)
        self.now_s = time_s
        return time_s, priority, kind, payload
