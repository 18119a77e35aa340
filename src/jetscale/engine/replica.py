"""One JetStream replica in interleaved mode, as an event-driven state machine with no clock.

A request's life (JetStream ``orchestrator.py``, interleaved: prefill and decode share the chips):

1. ``submit`` puts it in the **prefill backlog** (refused beyond ``prefill_backlog_limit``).
2. The chips run **one prefill at a time**, the prompt padded to its bucket. Its end produces the
   request's **first token** (JetStream emits it before the request has a slot).
3. The prefilled request waits in the **transfer** then **generate backlog**. JetStream's queues there
   hold 1 each in interleaved mode, and the transfer and prefill threads each hold one more while they
   block, so at most ``PREFILLED_CAPACITY`` = 4 prefilled requests wait; then prefill stops.
4. It is **inserted** into the first free decode slot (free slots are a FIFO queue of ints).
5. Each **generate step** advances every slot by one token; the request finishes after
   ``output_tokens - 1`` steps (its first token came from the prefill) and its slot goes to the back
   of the free queue. A one-token request finishes at its prefill end and never takes a slot.

Scheduling: whenever the chips are free, prefilled requests take free slots; then, if the prefill
backlog is not empty and fewer than 4 prefilled requests wait, a prefill runs; otherwise a generate
step runs if any slot is active. So prefill is favoured (with free slots JetStream's generate thread
blocks while anything waits for prefill), and a prefill delays the decodes: a request that arrives
during a generate step is prefilled when that step ends, and the next step waits for the prefill.

Cost. Nothing is done per step or per slot. Between two events (a prefill end, a request end, a step
boundary where a prefill must start) the batch is fixed, so step ``j`` of the current stretch reads a
context of ``p + q j`` tokens' worth of time (contexts grow by one token per active slot per step), and
the time of ``k`` steps is an exact arithmetic series. A request ends at the global step
``insert_step + output_tokens - 1``; a heap keyed by that step gives the next end in O(log n).
Events are computed from the stretch's anchor alone, so ``advance`` in many small calls and in one
big call give identical results.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Any

from jetscale.engine.api import Completion, EngineRequest, EngineSnapshot, FirstToken
from jetscale.engine.presets import HbmMode, ReplicaConfig

__all__ = ["GENERATE_QUEUE_SIZE", "PREFILLED_CAPACITY", "TRANSFER_QUEUE_SIZE", "ReplicaEngine"]

# JetStream orchestrator.py (HEAD acd4f5a) L339-361, interleaved mode.
TRANSFER_QUEUE_SIZE = 1
GENERATE_QUEUE_SIZE = 1
# generate queue + transfer thread (blocked on put) + transfer queue + prefill thread (blocked on put)
PREFILLED_CAPACITY = GENERATE_QUEUE_SIZE + 1 + TRANSFER_QUEUE_SIZE + 1

_INF = math.inf
_NEVER = 1 << 62  # a step count no stretch reaches


def _slot_setters(cls: type[Any], names: tuple[str, ...]) -> tuple[Callable[[object, object], None], ...] | None:
    """The slot setters of a frozen, slotted dataclass whose fields are exactly ``names``, else None."""
    fields = tuple(f.name for f in dataclasses.fields(cls))
    if fields != names or "__slots__" not in cls.__dict__ or hasattr(cls, "__post_init__"):
        return None
    return tuple(cls.__dict__[name].__set__ for name in names)


# Completions and first tokens are built by setting their slots directly: the same objects as the
# keyword constructor makes (equal, same repr and hash) at about a third of the cost, which matters at
# 100k+ requests per second. Falls back to the constructor if api.py changes their shape.
_COMPLETION_SETTERS = _slot_setters(
    Completion,
    (
        "request_id",
        "input_tokens",
        "output_tokens",
        "arrival_s",
        "prefill_start_s",
        "first_token_s",
        "insert_s",
        "end_s",
    ),
)
_FIRST_TOKEN_SETTERS = _slot_setters(FirstToken, ("request_id", "time_s"))
_new = object.__new__


def _completion(record: _Request, end_s: float) -> Completion:
    if _COMPLETION_SETTERS is None:
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
    c: Completion = _new(Completion)
    s0, s1, s2, s3, s4, s5, s6, s7 = _COMPLETION_SETTERS
    s0(c, record.request_id)
    s1(c, record.input_tokens)
    s2(c, record.output_tokens)
    s3(c, record.arrival_s)
    s4(c, record.prefill_start_s)
    s5(c, record.first_token_s)
    s6(c, record.insert_s)
    s7(c, end_s)
    return c


def _first_token(request_id: int, time_s: float) -> FirstToken:
    if _FIRST_TOKEN_SETTERS is None:
        return FirstToken(request_id=request_id, time_s=time_s)
    f: FirstToken = _new(FirstToken)
    s0, s1 = _FIRST_TOKEN_SETTERS
    s0(f, request_id)
    s1(f, time_s)
    return f


class _Phase(Enum):
    IDLE = 0
    LOADING = 1
    PREFILL = 2
    DECODE = 3


class _Request:
    """The engine's record of one request (one per request, never per token)."""

    __slots__ = (
        "arrival_s",
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

    def __init__(
        self, request: EngineRequest, input_tokens: int, output_tokens: int, prefill_s: float, seq: int
    ) -> None:
        self.request_id = request.request_id
        self.arrival_s = request.arrival_s
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.prefill_s = prefill_s
        self.seq = seq
        self.prefill_start_s = -1.0
        self.first_token_s = -1.0  # < 0: prefill not ended
        self.insert_s = -1.0
        self.insert_step = -1  # < 0: not in a slot
        self.slot = -1
        self.done = False


class ReplicaEngine:
    """The ``Engine`` protocol for one replica of ``config``; see the module docstring."""

    def __init__(self, config: ReplicaConfig) -> None:
        self.config = config
        timing = config.roofline()
        # decode step = g * max(alpha + beta * context, gamma) + o
        self._alpha = timing.weight_read_s
        self._beta = timing.kv_read_s_per_token
        self._gamma = timing.decode_compute_s
        self._g = 1.0 / timing.decode_efficiency
        self._o = timing.decode_overhead_s
        self._buckets = timing.buckets
        self._prefill_s = timing.prefill_bucket_s
        self._max_prefill = config.max_prefill_length
        self._max_target = config.max_target_length
        self._backlog_limit = config.prefill_backlog_limit
        self._slots = config.decode_slots
        self._kv_bytes = config.model.kv_bytes_per_token
        self._fixed_bytes = config.weight_bytes + config.reserve_bytes
        self._paged = config.hbm_mode is HbmMode.PAGED

        self._records: dict[int, _Request] = {}
        self._backlog: deque[_Request] = deque()
        self._prefilled: deque[_Request] = deque()
        self._prefilled_tokens = 0
        self._free_slots: deque[int] = deque(range(config.decode_slots))
        self._ends: list[tuple[int, int, _Request]] = []  # (end_step, seq, request)
        self._seq = 0
        self._first_tokens: list[FirstToken] = []
        self._completions: list[Completion] = []

        self._phase = _Phase.IDLE
        self._t = math.nan  # the model has run up to here (NaN until the first call)
        self._next_t = _INF  # time of the next internal event
        self._prefilling: _Request | None = None
        self._ready_at_s: float | None = None
        # the batch: active slots and sum over them of (input - insert_step + 1), so that the context
        # read by global step s is _ctx_base + _active * s
        self._active = 0
        self._ctx_base = 0
        self._step = 0  # generate steps completed when the current stretch began
        # the current decode stretch
        self._seg_t0 = 0.0
        self._seg_p = 0.0
        self._seg_q = 0.0
        self._seg_flat = _NEVER  # steps at the compute floor before the KV read takes over
        self._target = 0  # global step of the stretch's next event
        self._cut = False  # a prefill waits for the end of the running step
        # duty cycle
        self._origin_t: float | None = None
        self._busy_done_s = 0.0
        self._busy_since: float | None = None
        self._snap_t: float | None = None
        self._snap_busy_s = 0.0

    # --- lifecycle -------------------------------------------------------------------------------------
    @property
    def ready_at_s(self) -> float | None:
        """When the model is loaded; None when ``start`` was not called (no startup is modeled)."""
        return self._ready_at_s

    def start(self, now_s: float) -> float:
        """Begin loading the model at ``now_s``; requests wait until it is loaded. Returns the ready time."""
        if self._ready_at_s is not None or self._seq or self._phase is not _Phase.IDLE:
            raise RuntimeError("start() must be called once, before the first submit")
        self._touch(now_s)
        self._ready_at_s = now_s + self.config.model_load_s
        self._phase = _Phase.LOADING
        self._next_t = self._ready_at_s
        return self._ready_at_s

    def is_ready(self, now_s: float) -> bool:
        return self._ready_at_s is None or now_s >= self._ready_at_s

    # --- the Engine protocol ---------------------------------------------------------------------------
    def submit(self, request: EngineRequest, now_s: float) -> bool:
        if now_s > self._t:
            self._t = now = now_s
        else:
            now = self._touch(now_s)
        if self._next_t <= now:
            self._run_until(now)
        if len(self._backlog) >= self._backlog_limit:
            return False
        rid = request.request_id
        if rid in self._records:
            raise ValueError(f"'request_id' must be unique among requests in flight (got {rid})")
        if request.input_tokens < 1 or request.output_tokens < 1:
            raise ValueError(
                f"'input_tokens' and 'output_tokens' must be >= 1 (got {request.input_tokens}, {request.output_tokens})"
            )
        n_in = min(request.input_tokens, self._max_prefill)
        n_out = min(request.output_tokens, self._max_target - n_in)
        record = _Request(request, n_in, n_out, self._prefill_s[bisect_left(self._buckets, n_in)], self._seq)
        self._seq += 1
        self._records[rid] = record
        self._backlog.append(record)
        phase = self._phase
        if phase is _Phase.IDLE:
            self._decide(now)
        elif phase is _Phase.DECODE and not self._cut and len(self._prefilled) < PREFILLED_CAPACITY:
            self._cut_at_step_end(now)
        return True

    def advance(self, now_s: float) -> tuple[list[FirstToken], list[Completion]]:
        if now_s > self._t:
            self._t = now = now_s
        else:
            now = self._touch(now_s)
        if self._next_t <= now:
            self._run_until(now)
        firsts, self._first_tokens = self._first_tokens, []
        done, self._completions = self._completions, []
        records = self._records
        for completion in done:
            del records[completion.request_id]
        return firsts, done

    def next_event_time(self) -> float | None:
        phase = self._phase
        if phase is _Phase.IDLE:
            return None
        if phase is _Phase.LOADING:
            return self._next_t + self._backlog[0].prefill_s if self._backlog else None
        if phase is _Phase.DECODE and self._ends[0][0] != self._target:
            # the stretch stops early for a prefill; its first token is the next output
            return self._next_t + self._backlog[0].prefill_s
        return self._next_t

    def tokens_generated(self, request_id: int, now_s: float) -> int:
        """Tokens produced by ``now_s``. Known until its Completion has been returned by ``advance``."""
        now = self._touch(now_s)
        if self._next_t <= now:
            self._run_until(now)
        record = self._records.get(request_id)
        if record is None:
            raise KeyError(f"unknown request_id {request_id} (never submitted, or its completion was returned)")
        if record.done:
            return record.output_tokens
        if record.first_token_s < 0:
            return 0
        if record.insert_step < 0:
            return 1
        return 1 + self._steps_at(now) - record.insert_step

    def slot_of(self, request_id: int) -> int | None:
        """The decode slot ``request_id`` holds (None when it holds none), for logs and tests."""
        record = self._records.get(request_id)
        if record is None or record.done or record.insert_step < 0:
            return None
        return record.slot

    def snapshot(self, now_s: float) -> EngineSnapshot:
        """The gauges at ``now_s``. Paged HBM counts the KV of the active slots' tokens and of the
        prefilled prompts waiting for a slot; preallocated HBM counts every slot at full length."""
        now = self._touch(now_s)
        if self._next_t <= now:
            self._run_until(now)
        waiting = len(self._prefilled)
        generate_backlog = min(waiting, GENERATE_QUEUE_SIZE)
        if self._paged:
            active = self._active
            live = self._ctx_base - active + active * self._steps_at(now) + self._prefilled_tokens
            used = self._fixed_bytes + live * self._kv_bytes
        else:
            used = self._fixed_bytes + self.config.kv_cache_bytes
        busy = self._busy_done_s + (now - self._busy_since if self._busy_since is not None else 0.0)
        since = self._snap_t if self._snap_t is not None else self._origin_t
        span = now - since if since is not None else 0.0
        busy_now = 1.0 if self._busy_since is not None else 0.0
        duty = (busy - self._snap_busy_s) / span if span > 0.0 else busy_now
        self._snap_t = now
        self._snap_busy_s = busy
        return EngineSnapshot(
            prefill_backlog=len(self._backlog),
            transfer_backlog=waiting - generate_backlog,
            generate_backlog=generate_backlog,
            slots_used=self._slots - len(self._free_slots),
            decode_slots=self._slots,
            hbm_used_bytes=used,
            hbm_total_bytes=self.config.hbm_total_bytes,
            duty_cycle=min(1.0, max(0.0, duty)),
        )

    # --- the event loop --------------------------------------------------------------------------------
    def _touch(self, now_s: float) -> float:
        """The caller's ``now``, never behind what the model has already run (clocks may jitter).

        Callers take the fast path themselves when ``now_s > self._t``; ``_t`` starts as NaN so that
        the first call always lands here and records the origin of the duty cycle.
        """
        if self._origin_t is None:
            self._origin_t = now_s
        elif now_s < self._t:
            return self._t
        self._t = now_s
        return now_s

    def _run_until(self, now: float) -> None:
        """Fire every internal event at or before ``now``, in time order (the hot loop: kept flat)."""
        ends = self._ends
        free = self._free_slots
        completions = self._completions
        while self._next_t <= now:
            t = self._next_t
            phase = self._phase
            if phase is _Phase.DECODE:
                step = self._step = self._target
                while ends and ends[0][0] == step:
                    record = heapq.heappop(ends)[2]
                    free.append(record.slot)
                    self._active -= 1
                    self._ctx_base -= record.input_tokens - record.insert_step + 1
                    record.done = True
                    completions.append(_completion(record, t))
            elif phase is _Phase.PREFILL:
                prefilled = self._prefilling
                assert prefilled is not None
                self._prefilling = None
                prefilled.first_token_s = t
                self._first_tokens.append(_first_token(prefilled.request_id, t))
                if prefilled.output_tokens == 1:
                    prefilled.insert_s = t
                    prefilled.done = True
                    completions.append(_completion(prefilled, t))
                else:
                    self._prefilled.append(prefilled)
                    self._prefilled_tokens += prefilled.input_tokens
            self._decide(t)

    def _decide(self, t: float) -> None:
        """The chips are free at ``t``: insert, then prefill, else decode, else idle."""
        prefilled = self._prefilled
        free = self._free_slots
        step = self._step
        while prefilled and free:
            record = prefilled.popleft()
            self._prefilled_tokens -= record.input_tokens
            record.insert_s = t
            record.insert_step = step
            record.slot = free.popleft()
            heapq.heappush(self._ends, (step + record.output_tokens - 1, record.seq, record))
            self._active += 1
            self._ctx_base += record.input_tokens - step + 1
        self._cut = False
        busy_since = self._busy_since
        if self._backlog and len(prefilled) < PREFILLED_CAPACITY:
            record = self._backlog.popleft()
            record.prefill_start_s = t
            self._prefilling = record
            self._phase = _Phase.PREFILL
            self._next_t = t + record.prefill_s
        elif self._active:
            # a new decode stretch: step j of it reads p + q j (in seconds of HBM time)
            self._phase = _Phase.DECODE
            self._seg_t0 = t
            p = self._seg_p = self._alpha + self._beta * (self._ctx_base + self._active * step)
            q = self._seg_q = self._beta * self._active
            gamma = self._gamma
            if p >= gamma:
                self._seg_flat = 0
            elif q <= 0.0:
                self._seg_flat = _NEVER
            else:
                self._seg_flat = math.ceil((gamma - p) / q)
            target = self._target = self._ends[0][0]
            self._next_t = t + self._span(target - step)
        else:
            self._phase = _Phase.IDLE
            self._next_t = _INF
            if busy_since is not None:
                self._busy_done_s += t - busy_since
                self._busy_since = None
            return
        if busy_since is None:
            self._busy_since = t

    # --- decode stretches: exact sums of step times ----------------------------------------------------
    def _span(self, k: int) -> float:
        """Time of the first ``k`` steps of the stretch: sum over j < k of g * max(p + q j, gamma) + o."""
        m = k if k < self._seg_flat else self._seg_flat
        linear = self._seg_p * (k - m) + self._seg_q * 0.5 * (k * (k - 1) - m * (m - 1))
        return self._o * k + self._g * (self._gamma * m + linear)

    def _estimate_steps(self, tau: float) -> int:
        """About the number of steps that fit in ``tau`` seconds (exact up to float rounding, >= 0)."""
        g, o = self._g, self._o
        flat = self._seg_flat
        flat_step = g * self._gamma + o
        if flat > 0 and flat_step * flat >= tau:
            return max(0, int(tau / flat_step))
        # past the compute floor, span(k) = a k^2 + b k + c
        p, q = self._seg_p, self._seg_q
        m = 0 if flat >= _NEVER else flat
        a = 0.5 * g * q
        b = o + g * (p - 0.5 * q)
        c = g * (self._gamma * m - p * m - 0.5 * q * (m * m - m))
        root = (-b + math.sqrt(b * b + 4.0 * a * (tau - c))) / (2.0 * a) if a > 0.0 else (tau - c) / b
        return max(0, int(root))

    def _steps_in(self, tau: float) -> int:
        """Steps of the stretch completed within ``tau`` seconds of its start (largest k: span(k) <= tau)."""
        if tau <= 0.0:
            return 0
        k = self._estimate_steps(tau)
        span = self._span
        if span(k) > tau:
            k -= 1
            while k > 0 and span(k) > tau:
                k -= 1
            return k
        while span(k + 1) <= tau:
            k += 1
        return k

    def _first_boundary(self, tau: float) -> tuple[int, float]:
        """The first step boundary at or after ``tau``: (steps from the stretch start, its span)."""
        span = self._span
        k = self._estimate_steps(tau)
        s = span(k)
        if s >= tau:
            while k > 0:
                before = span(k - 1)
                if before < tau:
                    break
                k, s = k - 1, before
            return k, s
        k += 1
        s = span(k)
        while s < tau:
            k += 1
            s = span(k)
        return k, s

    def _steps_at(self, now: float) -> int:
        """Generate steps completed by ``now`` (the model has run up to ``now``)."""
        if self._phase is not _Phase.DECODE:
            return self._step
        return self._step + self._steps_in(now - self._seg_t0)

    def _cut_at_step_end(self, now: float) -> None:
        """A prefill is wanted while decoding: stop the stretch at the end of the running step."""
        self._cut = True
        k, span = self._first_boundary(now - self._seg_t0)
        cut = self._step + k
        if cut < self._target:
            self._target = cut
            self._next_t = self._seg_t0 + span
        if self._next_t <= now:
            self._run_until(now)
