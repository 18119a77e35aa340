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
boundary where a prefill must start) the batch is fixed, so step ``j`` of the current *decode stretch*
reads a context of ``p + q j`` tokens' worth of time (contexts grow by one token per active slot per
step), and the time of ``k`` steps is an exact arithmetic series (``jetscale.engine.stretch``). A
request ends at the global step ``insert_step + output_tokens - 1``; a heap keyed by that step gives
the next end in O(log n). Events are computed from the stretch's anchor alone, so ``advance`` in many
small calls and in one big call give identical results.

Per request the engine makes one record and two events (``jetscale.engine.records``), cuts at most
one stretch (in ``submit``: the first step boundary after the arrival) and fires about three events
(``_run_until``: the prefill start, its end, the request's end). Those two methods are the hot path
of every simulation, written for CPython's speed: counters in locals, arithmetic inlined.
"""

from __future__ import annotations

import math
from collections import deque
from enum import Enum
from heapq import heappop, heappush
from typing import Any

from jetscale.engine.api import Completion, EngineRequest, EngineSnapshot, FirstToken, Refusal, Shed, Stage
from jetscale.engine.presets import HbmMode, ReplicaConfig
from jetscale.engine.records import (
    DRAFTS,
    CompletionDraft,
    FirstTokenDraft,
    RequestRecord,
    completion,
    first_token,
)
from jetscale.engine.stretch import DecodeStretch

__all__ = ["GENERATE_QUEUE_SIZE", "PREFILLED_CAPACITY", "TRANSFER_QUEUE_SIZE", "ReplicaEngine"]

# JetStream orchestrator.py (HEAD acd4f5a) L339-361, interleaved mode.
TRANSFER_QUEUE_SIZE = 1
GENERATE_QUEUE_SIZE = 1
# generate queue + transfer thread (blocked on put) + transfer queue + prefill thread (blocked on put)
PREFILLED_CAPACITY = GENERATE_QUEUE_SIZE + 1 + TRANSFER_QUEUE_SIZE + 1

_INF = math.inf


class _Phase(Enum):
    IDLE = 0
    LOADING = 1
    PREFILL = 2
    DECODE = 3


# module-level names for the members: the hot paths compare against globals, not class attributes
_IDLE, _LOADING, _PREFILL, _DECODE = _Phase.IDLE, _Phase.LOADING, _Phase.PREFILL, _Phase.DECODE


class ReplicaEngine:
    """The ``Engine`` protocol for one replica of ``config``; see the module docstring."""

    def __init__(self, config: ReplicaConfig) -> None:
        self.config = config
        timing = config.roofline()
        # decode step = g * max(alpha + beta * context, gamma) + o
        self._alpha = timing.weight_read_s + timing.cache_read_s
        self._beta = timing.kv_read_s_per_token
        self._stretch = DecodeStretch(
            gamma=timing.decode_compute_s, g=1.0 / timing.decode_efficiency, o=timing.decode_overhead_s
        )
        # prefill time by prompt length: the prompt is padded to its bucket, the last one max_prefill_length
        self._prefill_s: list[float] = []
        for bucket, bucket_s in zip(timing.buckets, timing.prefill_bucket_s, strict=True):
            self._prefill_s += [bucket_s] * (bucket + 1 - len(self._prefill_s))
        self._max_prefill = config.max_prefill_length
        self._max_target = config.max_target_length
        self._backlog_limit = config.prefill_backlog_limit
        self._max_wait_s = config.max_queue_wait_s
        self.last_refusal: Refusal | None = None
        self._slots = config.decode_slots
        self._kv_bytes = config.model.kv_bytes_per_token
        self._fixed_bytes = config.weight_bytes + config.reserve_bytes
        self._paged = config.hbm_mode is HbmMode.PAGED

        self._records: dict[int, RequestRecord] = {}
        self._backlog: deque[RequestRecord] = deque()
        self._backlog_prefill_s = 0.0  # sum of the backlog's prefill times, and of its output tokens
        self._backlog_output_tokens = 0
        self._prefilled: deque[RequestRecord] = deque()
        self._prefilled_tokens = 0
        self._free_slots: deque[int] = deque(range(config.decode_slots))
        self._ends: list[tuple[int, int, RequestRecord]] = []  # (end_step, seq, request)
        self._seq = 0
        self._first_tokens: list[FirstToken] = []
        self._completions: list[Completion] = []

        self._phase = _IDLE
        self._t = math.nan  # the model has run up to here (NaN until the first call)
        self._next_t = _INF  # time of the next internal event
        self._prefilling: RequestRecord | None = None
        self._ready_at_s: float | None = None
        # the batch: active slots and sum over them of (input - insert_step + 1), so that the context
        # read by global step s is _ctx_base + _active * s
        self._active = 0
        self._ctx_base = 0
        self._step = 0  # generate steps completed when the current stretch began
        self._seg_t0 = 0.0  # when the current decode stretch began (its arithmetic: self._stretch)
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
        if self._ready_at_s is not None or self._seq or self._phase is not _IDLE:
            raise RuntimeError("start() must be called once, before the first submit")
        self._touch(now_s)
        self._ready_at_s = now_s + self.config.model_load_s
        self._phase = _LOADING
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
        backlog = self._backlog
        if len(backlog) >= self._backlog_limit:
            return self._refuse(Shed.BACKLOG_FULL, now)
        if self._max_wait_s is not None and self._wait_estimate(now) > self._max_wait_s:
            return self._refuse(Shed.QUEUE_WAIT, now)
        rid = request.request_id
        records = self._records
        if rid in records:
            raise ValueError(f"'request_id' must be unique among requests in flight (got {rid})")
        n_in = request.input_tokens
        n_out = request.output_tokens
        if n_in < 1 or n_out < 1:
            raise ValueError(f"'input_tokens' and 'output_tokens' must be >= 1 (got {n_in}, {n_out})")
        if n_in > self._max_prefill:
            n_in = self._max_prefill
        if n_out > self._max_target - n_in:
            n_out = self._max_target - n_in
        records[rid] = record = RequestRecord()
        record.request_id = rid
        record.arrival_s = request.arrival_s
        record.input_tokens = n_in
        record.output_tokens = n_out
        record.prefill_s = self._prefill_s[n_in]
        record.seq = seq = self._seq
        self._seq = seq + 1
        record.prefill_start_s = record.first_token_s = record.insert_s = -1.0
        record.insert_step = record.slot = -1
        record.done = record.cancelled = False
        backlog.append(record)
        self._backlog_prefill_s += record.prefill_s
        self._backlog_output_tokens += n_out
        phase = self._phase
        if phase is _DECODE:
            if not self._cut and len(self._prefilled) < PREFILLED_CAPACITY:
                # a prefill is wanted while decoding: stop the stretch at the end of the running step
                self._cut = True
                self._cut_at_next_step(now)
        elif phase is _IDLE:
            self._next_t = now  # the chips are free now: the event loop decides what runs
            self._run_until(now)
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
        for event in done:
            del records[event.request_id]
        return firsts, done

    def cancel(self, request_id: int, now_s: float) -> Stage | None:
        """The client of ``request_id`` went away: drop it. Returns the stage it was in, or None when it is
        unknown or already finished (its completion stands).

        From a backlog it leaves at once. A running prefill cannot be stopped (JetStream's chips finish
        it), so the request is dropped when it ends, without a first token. In a decode slot it stops at
        the end of the running generate step (at once while a prefill holds the chips) and the slot goes
        to the next request. A cancelled request hands out no completion, and no first token after this.
        """
        now = self._touch(now_s)
        if self._next_t <= now:
            self._run_until(now)
        record = self._records.get(request_id)
        if record is None or record.done:
            return None  # unknown, or finished and its completion not handed out yet: it stands
        del self._records[request_id]
        record.cancelled = True
        if record is self._prefilling:
            return Stage.PREFILL
        if record.first_token_s < 0:
            self._backlog.remove(record)
            self._left_backlog(record)
            return Stage.PREFILL_BACKLOG
        if record.insert_step < 0:
            prefilled = self._prefilled
            position = prefilled.index(record)
            del prefilled[position]
            self._prefilled_tokens -= record.input_tokens
            if self._phase is _DECODE and self._backlog and not self._cut:
                self._cut = True  # room for one more prefilled request: prefill at the next step boundary
                self._cut_at_next_step(now)
            return Stage.GENERATE_BACKLOG if position < GENERATE_QUEUE_SIZE else Stage.TRANSFER_BACKLOG
        if self._phase is not _DECODE:  # a prefill holds the chips: no step is running, free the slot now
            record.done = True  # its entry in the end heap is skipped when popped
            self._free_slots.append(record.slot)
            self._active -= 1
            self._ctx_base -= record.input_tokens - record.insert_step + 1
            return Stage.DECODE
        cut = self._cut_at_next_step(now, run=False)
        if record.insert_step + record.output_tokens - 1 > cut:
            heappush(self._ends, (cut, record.seq, record))  # its old entry is skipped when popped (done)
        if self._next_t <= now:
            self._run_until(now)
        return Stage.DECODE

    def expected_wait_s(self, now_s: float) -> float:
        """Engine seconds a request submitted at ``now_s`` would wait for its prefill to start; see
        ``_wait_estimate``."""
        now = self._touch(now_s)
        if self._next_t <= now:
            self._run_until(now)
        return self._wait_estimate(now)

    def _wait_estimate(self, now: float) -> float:
        """The chips' work before a new request's prefill can start, from what the engine knows.

        Interleaved serving runs one thing at a time, so the wait is a sum: what is left of the running
        prefill (or of the model load), the prefills of the whole backlog, and the decode steps that must
        run first to free the slots the requests ahead of it need (a prefill may start only while fewer
        than ``PREFILLED_CAPACITY`` prefilled requests wait). The end steps of the requests in the slots
        are known exactly; slots beyond them turn over at the backlog's mean output length. Steps are
        priced at the running batch's current step time, so the figure is exact for the prefills and
        within the growth of the contexts for the decodes.
        """
        wait = self._backlog_prefill_s
        if self._phase is _PREFILL or self._phase is _LOADING:
            wait += max(0.0, self._next_t - now)
        backlog = len(self._backlog)
        ahead = len(self._prefilled) + (self._prefilling is not None) + backlog
        need = ahead - len(self._free_slots) - (PREFILLED_CAPACITY - 1)
        if need <= 0:
            return wait
        now_step = self._steps_at(now)
        live = sorted(end for end, _, record in self._ends if not record.done)
        if need <= len(live):
            steps: float = live[need - 1] - now_step
        else:
            mean_output = self._backlog_output_tokens / backlog if backlog else self._max_target / 2
            last = live[-1] - now_step if live else 0
            steps = last + (need - len(live)) / self._slots * mean_output
        active = self._active
        # nothing decoding yet (the model loads): price a full batch at half the cache length
        context = self._ctx_base + active * now_step if active else self._slots * self._max_target // 2
        stretch = self._stretch
        step_s = stretch.g * max(self._alpha + self._beta * context, stretch.gamma) + stretch.o
        return wait + steps * step_s

    def _refuse(self, reason: Shed, now: float) -> bool:
        wait = self._wait_estimate(now)
        if reason is Shed.BACKLOG_FULL:
            next_event = self.next_event_time()
            retry = next_event - now if next_event is not None else 0.0
        else:
            assert self._max_wait_s is not None
            retry = wait - self._max_wait_s
        self.last_refusal = Refusal(reason=reason, expected_wait_s=wait, retry_in_s=max(0.0, retry))
        return False

    def _left_backlog(self, record: RequestRecord) -> None:
        if self._backlog:
            self._backlog_prefill_s -= record.prefill_s
            self._backlog_output_tokens -= record.output_tokens
        else:  # start again from zero: no float drift across a long run
            self._backlog_prefill_s = 0.0
            self._backlog_output_tokens = 0

    def _cut_at_next_step(self, now: float, *, run: bool = True) -> int:
        """End the running decode stretch at its first step boundary at or after ``now``; returns that step.
        ``run``: fire the events that are due now (the cut itself may be)."""
        seg_t0 = self._seg_t0
        k, span = self._stretch.first_boundary(now - seg_t0)
        cut = self._step + k
        if cut < self._target:
            self._target = cut
            self._next_t = seg_t0 + span
        if run and self._next_t <= now:
            self._run_until(now)
        return cut

    def next_event_time(self) -> float | None:
        phase = self._phase
        if phase is _IDLE:
            return None
        if phase is _LOADING:
            return self._next_t + self._backlog[0].prefill_s if self._backlog else None
        if phase is _DECODE and self._ends[0][0] != self._target and self._backlog:
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
        """Fire every internal event at or before ``now`` in time order; after each, the chips are free
        and decide what runs next: insert prefilled requests into free slots, then prefill, else decode,
        else idle. The hot loop (about three events per request): the engine's counters live in locals
        until it returns, and the usual stretch and event arithmetic is inlined."""
        ends = self._ends
        free = self._free_slots
        backlog = self._backlog
        prefilled = self._prefilled
        completions = self._completions
        stretch = self._stretch
        phase = self._phase
        step = self._step
        target = self._target
        active = self._active
        ctx_base = self._ctx_base
        prefilled_tokens = self._prefilled_tokens
        prefilling = self._prefilling
        busy_since = self._busy_since
        drafts = DRAFTS
        next_t = self._next_t
        while next_t <= now:
            t = next_t  # the event at t
            if phase is _DECODE:
                step = target
                while ends and ends[0][0] == step:
                    record = heappop(ends)[2]
                    if record.done:
                        continue  # the old entry of a request cancelled earlier
                    free.append(record.slot)
                    active -= 1
                    ctx_base -= record.input_tokens - record.insert_step + 1
                    record.done = True
                    if record.cancelled:
                        continue
                    if not drafts:
                        completions.append(completion(record, t))
                        continue
                    c: Any = CompletionDraft()  # records.completion, inlined
                    c.request_id = record.request_id
                    c.input_tokens = record.input_tokens
                    c.output_tokens = record.output_tokens
                    c.arrival_s = record.arrival_s
                    c.prefill_start_s = record.prefill_start_s
                    c.first_token_s = record.first_token_s
                    c.insert_s = record.insert_s
                    c.end_s = t
                    c.__class__ = Completion
                    completions.append(c)
            elif phase is _PREFILL:
                assert prefilling is not None
                prefilling.first_token_s = t
                if prefilling.cancelled:
                    prefilling.done = True  # its client left during the prefill: no token, no slot
                else:
                    if drafts:
                        f: Any = FirstTokenDraft()  # records.first_token, inlined
                        f.request_id = prefilling.request_id
                        f.time_s = t
                        f.__class__ = FirstToken
                        self._first_tokens.append(f)
                    else:
                        self._first_tokens.append(first_token(prefilling.request_id, t))
                    if prefilling.output_tokens == 1:
                        prefilling.insert_s = t
                        prefilling.done = True
                        completions.append(completion(prefilling, t))
                    else:
                        prefilled.append(prefilling)
                        prefilled_tokens += prefilling.input_tokens
                prefilling = None
            # the chips are free at t
            while prefilled and free:
                record = prefilled.popleft()
                prefilled_tokens -= record.input_tokens
                record.insert_s = t
                record.insert_step = step
                record.slot = free.popleft()
                heappush(ends, (step + record.output_tokens - 1, record.seq, record))
                active += 1
                ctx_base += record.input_tokens - step + 1
            if backlog and len(prefilled) < PREFILLED_CAPACITY:
                prefilling = backlog.popleft()
                self._left_backlog(prefilling)
                prefilling.prefill_start_s = t
                phase = _PREFILL
                next_t = t + prefilling.prefill_s
            elif active:
                # a new decode stretch: step j of it reads p + q j (in seconds of HBM time)
                phase = _DECODE
                self._seg_t0 = t
                beta = self._beta
                p = self._alpha + beta * (ctx_base + active * step)
                q = beta * active
                while ends[0][2].done:
                    heappop(ends)  # old entries of cancelled requests
                target = ends[0][0]
                k = target - step
                if p >= stretch.gamma:  # past the compute floor from the first step: restart + span inlined
                    stretch.p = p
                    stretch.q = q
                    stretch.half_q = half_q = q * 0.5
                    stretch.flat = 0
                    next_t = t + (stretch.o * k + stretch.g * (p * k + half_q * (k * (k - 1))))
                else:
                    stretch.restart(p, q)
                    next_t = t + stretch.span(k)
            else:
                phase = _IDLE
                next_t = _INF
                if busy_since is not None:
                    self._busy_done_s += t - busy_since
                    busy_since = None
                break
            if busy_since is None:
                busy_since = t
        self._next_t = next_t
        self._phase = phase
        self._step = step
        self._target = target
        self._active = active
        self._ctx_base = ctx_base
        self._prefilled_tokens = prefilled_tokens
        self._prefilling = prefilling
        self._busy_since = busy_since
        self._cut = False

    def _steps_at(self, now: float) -> int:
        """Generate steps completed by ``now`` (the model has run up to ``now``)."""
        if self._phase is not _DECODE:
            return self._step
        return self._step + self._stretch.steps_in(now - self._seg_t0)
