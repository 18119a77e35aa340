"""One vLLM replica (the v1 engine's scheduler) as a state machine with no clock.

vLLM schedules one **step** at a time under a token budget (``max_num_batched_tokens``), FCFS:

1. ``submit`` puts a request in the **waiting** queue (refused beyond ``prefill_backlog_limit``, vLLM's
   ``--max-num-queued-reqs``, or when its expected wait is over ``max_queue_wait_s``).
2. Each step first gives the **running** requests, in admission order, the tokens they need: one for a
   request decoding, the rest of its prompt for one prefilling, cut to what is left of the budget
   (**chunked prefill**: a long prompt takes several steps, sharing them with the decodes; with
   ``enable_chunked_prefill`` off a prompt is admitted only when the step's budget holds all of it).
3. A token needs room in the **paged KV cache**: ``block_size``-token blocks out of a pool that
   ``gpu_memory_utilization`` of HBM leaves after the weights. When a running request cannot get its
   next block, the most recently admitted running request is **preempted**: its blocks are freed and
   it goes back to the front of the waiting queue, to be recomputed (prompt and the tokens it had
   produced) when admitted again. A step that preempted admits nothing new.
4. Then waiting requests are **admitted** in order while the budget lasts, fewer than ``max_num_seqs``
   (``decode_slots``) run, and the blocks for their first chunk are free; the first that does not fit
   stops admission (head of line).
5. When a request's computed tokens reach its prompt (plus what it had produced), the step samples a
   token: its **first token** at the end of the step that finishes its prompt, then one per step. It
   finishes after ``output_tokens`` tokens and frees its blocks. With prefix caching on, a newly
   admitted prompt finds ``prefix_hit_rate`` of its tokens (whole blocks) already computed.

A step reads the weights and the KV of every scheduled token's context and computes every scheduled
token: ``max(read / decode efficiency, 2 x params x tokens / peak / prefill efficiency) + overhead``,
from the same roofline as JetStream's (``jetscale.engine.accelerator``), or from a profile's measured
timing (``decode_step_fixed_s + decode_step_per_token_s x context + prefill_per_token_s x prefill
tokens``). vLLM's CPU work per scheduled request (``decode_overhead_s_per_slot``, fitted) overlaps the
device's (async scheduling): a step takes at least that times the requests it schedules.

Cost: while every running request decodes, nothing waits that could be admitted and no block runs out,
the steps form a **decode stretch** whose times are an exact arithmetic series
(``jetscale.engine.stretch``): the engine jumps to the next completion, block shortage or arrival in
O(running) instead of stepping. ``stretches=False`` steps one by one (the reference the tests compare).
"""

from __future__ import annotations

import math
from collections import deque

from jetscale.engine.api import Completion, EngineRequest, EngineSnapshot, FirstToken, Refusal, Shed, Stage
from jetscale.engine.config import ReplicaConfig, ServerKind
from jetscale.engine.stretch import DecodeStretch
from jetscale.engine.vllm_cost import StepCost
from jetscale.errors import ConfigError

__all__ = ["VllmEngine"]

_INF = math.inf


class _Seq:
    """One request inside the engine."""

    __slots__ = (
        "arrival_s",
        "blocks",
        "cancelled",
        "computed",
        "first_token_s",
        "generated",
        "output",
        "prompt",
        "request_id",
        "scheduled_s",
        "seq",
    )

    def __init__(self, request: EngineRequest, prompt: int, output: int, seq: int) -> None:
        self.request_id = request.request_id
        self.arrival_s = request.arrival_s
        self.prompt = prompt
        self.output = output
        self.seq = seq
        self.computed = 0  # tokens whose KV is in the cache
        self.generated = 0  # output tokens produced
        self.blocks = 0
        self.scheduled_s = -1.0  # first scheduled (vLLM's queue time ends here)
        self.first_token_s = -1.0
        self.cancelled = False

    @property
    def need(self) -> int:
        """Tokens to compute before the next token is sampled (1 while decoding)."""
        return self.prompt + self.generated - self.computed


class VllmEngine:
    """The ``Engine`` protocol for one vLLM replica of ``config``; see the module docstring."""

    def __init__(self, config: ReplicaConfig, *, stretches: bool = True) -> None:
        if config.kind is not ServerKind.VLLM:
            raise ConfigError(f"'stack' must be vllm for VllmEngine (got {config.stack.value})")
        self.config = config
        settings = config.vllm_settings
        self._cost = StepCost.of(config)
        self._budget = config.max_num_batched_tokens
        self._max_seqs = config.decode_slots
        self._block = settings.block_size
        self._total_blocks = config.kv_blocks
        self._free_blocks = self._total_blocks
        self._hit_rate = settings.prefix_hit_rate if settings.enable_prefix_caching else 0.0
        self._chunked = settings.enable_chunked_prefill
        self._max_len = config.max_target_length
        self._stretches = stretches
        self.last_refusal: Refusal | None = None

        self._records: dict[int, _Seq] = {}
        self._waiting: deque[_Seq] = deque()
        self._running: list[_Seq] = []
        self._seq = 0
        self._first_tokens: list[FirstToken] = []
        self._completions: list[Completion] = []
        self.preemptions = 0
        self.prefix_queries = 0
        self.prefix_hits = 0

        self._t = math.nan  # the model has run up to here
        self._ready_at_s: float | None = None
        # the work in flight: one step (``_plan`` of (seq, tokens)) or a stretch of ``_stretch_steps``
        # decode steps of every running request, started at ``_start_t``; it ends at ``_next_t``
        self._plan: list[tuple[_Seq, int]] = []
        self._stretch = DecodeStretch(gamma=0.0, g=self._cost.g, o=self._cost.overhead_s)
        self._stretch_steps = 0
        self._start_t = 0.0
        self._next_t = _INF
        self._busy = False
        # duty cycle
        self._origin_t: float | None = None
        self._busy_done_s = 0.0
        self._snap_t: float | None = None
        self._snap_busy_s = 0.0

    # --- lifecycle -------------------------------------------------------------------------------------
    @property
    def ready_at_s(self) -> float | None:
        return self._ready_at_s

    def start(self, now_s: float) -> float:
        """Begin loading the model at ``now_s``; requests wait until it is loaded. Returns the ready time."""
        if self._ready_at_s is not None or self._seq:
            raise RuntimeError("start() must be called once, before the first submit")
        self._touch(now_s)
        self._ready_at_s = now_s + self.config.model_load_s
        self._next_t = self._ready_at_s
        return self._ready_at_s

    def is_ready(self, now_s: float) -> bool:
        return self._ready_at_s is None or now_s >= self._ready_at_s

    # --- the Engine protocol ---------------------------------------------------------------------------
    def submit(self, request: EngineRequest, now_s: float) -> bool:
        now = self._touch(now_s)
        self._run_until(now)
        if len(self._waiting) >= self.config.prefill_backlog_limit:
            return self._refuse(Shed.BACKLOG_FULL, now)
        bound = self.config.max_queue_wait_s
        if bound is not None and self._wait_estimate(now) > bound:
            return self._refuse(Shed.QUEUE_WAIT, now)
        if request.request_id in self._records:
            raise ValueError(f"'request_id' must be unique among requests in flight (got {request.request_id})")
        if request.input_tokens < 1 or request.output_tokens < 1:
            raise ValueError(
                f"'input_tokens' and 'output_tokens' must be >= 1 (got {request.input_tokens}, {request.output_tokens})"
            )
        prompt = min(request.input_tokens, self._max_len - 1)
        output = min(request.output_tokens, self._max_len - prompt)
        record = _Seq(request, prompt, output, self._seq)
        self._seq += 1
        self._records[request.request_id] = record
        self._waiting.append(record)
        if not self._busy and self._next_t == _INF:
            self._schedule(now)  # idle: it starts now (while the model loads, the load's end schedules it)
        elif self._stretch_steps and len(self._running) < self._max_seqs:
            self._cut_stretch(now)  # it may be admitted at the next step boundary
        return True

    def advance(self, now_s: float) -> tuple[list[FirstToken], list[Completion]]:
        self._run_until(self._touch(now_s))
        firsts, self._first_tokens = self._first_tokens, []
        done, self._completions = self._completions, []
        return firsts, done

    def cancel(self, request_id: int, now_s: float) -> Stage | None:
        """The client went away: a waiting request leaves at once; a running one (vLLM aborts it) at the
        end of the step in flight, freeing its blocks. None when unknown or finished."""
        now = self._touch(now_s)
        self._run_until(now)
        record = self._records.pop(request_id, None)
        if record is None:
            return None
        record.cancelled = True
        if record in self._waiting:
            self._waiting.remove(record)
            return Stage.PREFILL_BACKLOG
        stage = Stage.DECODE if record.generated else Stage.PREFILL
        if self._stretch_steps:
            self._cut_stretch(now)
        elif not self._busy:
            self._drop(record)
        return stage

    def next_event_time(self) -> float | None:
        return None if self._next_t == _INF else self._next_t

    def expected_wait_s(self, now_s: float) -> float:
        now = self._touch(now_s)
        self._run_until(now)
        return self._wait_estimate(now)

    def tokens_generated(self, request_id: int, now_s: float) -> int:
        now = self._touch(now_s)
        self._run_until(now)
        record = self._records.get(request_id)
        if record is None:
            return 0
        if self._stretch_steps and record in self._running:
            return record.generated + min(self._stretch_steps, self._stretch.steps_in(now - self._start_t))
        return record.generated

    def snapshot(self, now_s: float) -> EngineSnapshot:
        now = self._touch(now_s)
        self._run_until(now)
        busy = self._busy_done_s + (now - self._start_t if self._busy else 0.0)
        since = self._snap_t if self._snap_t is not None else self._origin_t
        span = now - since if since is not None else 0.0
        duty = (busy - self._snap_busy_s) / span if span > 0.0 else (1.0 if self._busy else 0.0)
        self._snap_t, self._snap_busy_s = now, busy
        used_blocks = self._total_blocks - self._free_blocks
        if self._stretch_steps:  # the blocks the stretch has taken by now
            used_blocks += self._stretch_blocks(min(self._stretch_steps, self._stretch.steps_in(now - self._start_t)))
        config = self.config
        return EngineSnapshot(
            prefill_backlog=len(self._waiting),
            transfer_backlog=0,
            generate_backlog=0,
            slots_used=len(self._running),
            decode_slots=self._max_seqs,
            hbm_used_bytes=config.weight_bytes + config.kv_cache_bytes + config.reserve_bytes,
            hbm_total_bytes=config.hbm_total_bytes,
            duty_cycle=min(1.0, max(0.0, duty)),
            kv_cache_usage=used_blocks / self._total_blocks if self._total_blocks else 0.0,
            preemptions=self.preemptions,
            prefix_cache_queries=self.prefix_queries,
            prefix_cache_hits=self.prefix_hits,
        )

    # --- the loop --------------------------------------------------------------------------------------
    def _touch(self, now_s: float) -> float:
        """The caller's ``now``, never behind what the model has already run (clocks may jitter)."""
        if self._origin_t is None:
            self._origin_t = now_s
        if math.isnan(self._t) or now_s >= self._t:
            self._t = now_s
            return now_s
        return self._t

    def _refuse(self, reason: Shed, now: float) -> bool:
        wait = self._wait_estimate(now)
        bound = self.config.max_queue_wait_s
        retry = max(0.0, wait - bound) if reason is Shed.QUEUE_WAIT and bound is not None else self._step_estimate()
        self.last_refusal = Refusal(reason=reason, expected_wait_s=wait, retry_in_s=max(retry, 1e-3))
        return False

    def _run_until(self, now: float) -> None:
        """Finish every step (or stretch) that ends at or before ``now``, scheduling the next each time."""
        while self._next_t <= now:
            end = self._next_t
            if self._busy:
                self._finish(end)
            self._schedule(end)

    def _finish(self, end: float) -> None:
        """Apply the work in flight, ending at ``end``."""
        self._busy_done_s += end - self._start_t
        self._busy = False
        if self._stretch_steps:
            self._apply_stretch(self._stretch_steps, end)
            self._stretch_steps = 0
            return
        for record, tokens in self._plan:
            self._advance_seq(record, tokens, end)
        self._plan = []

    def _advance_seq(self, record: _Seq, tokens: int, end: float) -> None:
        record.computed += tokens
        if record.cancelled:
            self._drop(record)
            return
        if record.computed < record.prompt + record.generated:
            return  # a chunk of a prompt: no token yet
        record.generated += 1
        if record.generated == 1 and record.first_token_s < 0.0:
            record.first_token_s = end
            self._first_tokens.append(FirstToken(request_id=record.request_id, time_s=end))
        if record.generated >= record.output:
            self._complete(record, end)

    def _complete(self, record: _Seq, end: float) -> None:
        self._drop(record)
        del self._records[record.request_id]
        self._completions.append(
            Completion(
                request_id=record.request_id,
                input_tokens=record.prompt,
                output_tokens=record.output,
                arrival_s=record.arrival_s,
                prefill_start_s=record.scheduled_s,
                first_token_s=record.first_token_s,
                insert_s=record.scheduled_s,
                end_s=end,
            )
        )

    def _drop(self, record: _Seq) -> None:
        """Take ``record`` out of the running set and free its blocks."""
        if record in self._running:
            self._running.remove(record)
        self._free_blocks += record.blocks
        record.blocks = 0

    def _blocks_for(self, tokens: int) -> int:
        return -(-tokens // self._block)

    def _schedule(self, now: float) -> None:
        """The chips are free at ``now``: plan the next step (or stretch), or go idle."""
        self._next_t = _INF
        if self._ready_at_s is not None and now < self._ready_at_s:
            self._next_t = self._ready_at_s
            return
        if not self._running and not self._waiting:
            return
        if self._stretches and self._can_stretch():
            steps = self._stretch_length()
            if steps > 1:
                self._begin_stretch(now, steps)
                return
        plan = self._plan_step(now)
        if not plan:
            return  # nothing fits (a waiting request larger than the whole pool cannot occur: configs refuse it)
        context = sum(record.computed + tokens for record, tokens in plan)
        new_tokens = sum(tokens for _, tokens in plan)
        self._plan = plan
        self._start_t = now
        self._busy = True
        self._next_t = now + self._cost.step_s(context, new_tokens, len(plan))

    def _plan_step(self, now: float) -> list[tuple[_Seq, int]]:
        """vLLM's schedule for one step: the running requests first (preempting from the back when
        blocks run out), then admissions from the waiting queue."""
        budget = self._budget
        plan: list[tuple[_Seq, int]] = []
        running = self._running
        preempted = False
        i = 0
        while i < len(running) and budget > 0:
            record = running[i]
            tokens = min(record.need, budget)
            extra = self._blocks_for(record.computed + tokens) - record.blocks
            gone = False
            while extra > self._free_blocks:
                victim = running[-1]
                self._preempt(victim)
                preempted = True
                if victim is record:
                    gone = True
                    break
            if gone:
                break
            self._free_blocks -= extra
            record.blocks += extra
            plan.append((record, tokens))
            budget -= tokens
            i += 1
        if preempted:
            return plan
        waiting = self._waiting
        while waiting and budget > 0 and len(running) < self._max_seqs:
            record = waiting[0]
            hits = 0
            if record.computed == 0 and record.scheduled_s < 0.0 and self._hit_rate:
                hits = min(int(record.prompt * self._hit_rate) // self._block * self._block, record.prompt - 1)
            tokens = min(record.need - hits, budget)
            if tokens < record.need - hits and not self._chunked:
                break  # the whole prompt in one step, or wait for a step with the budget for it
            extra = self._blocks_for(hits + tokens)
            if extra > self._free_blocks:
                break
            waiting.popleft()
            if self._hit_rate and record.scheduled_s < 0.0:
                self.prefix_queries += record.prompt
                self.prefix_hits += hits
            record.computed = hits
            self._free_blocks -= extra
            record.blocks = extra
            if record.scheduled_s < 0.0:
                record.scheduled_s = now
            running.append(record)
            plan.append((record, tokens))
            budget -= tokens
        return plan

    def _preempt(self, record: _Seq) -> None:
        """vLLM's preemption by recompute: free the blocks, back to the front of the waiting queue."""
        self._running.remove(record)
        self._free_blocks += record.blocks
        record.blocks = 0
        record.computed = 0
        self._waiting.appendleft(record)
        self.preemptions += 1

    # --- decode stretches ------------------------------------------------------------------------------
    def _can_stretch(self) -> bool:
        """Every running request decodes, all fit one step's budget, and no waiting one can be admitted
        before a completion frees a seat or blocks."""
        running = self._running
        if not running or len(running) > self._budget:
            return False
        if any(record.need != 1 or record.cancelled for record in running):
            return False
        if not self._waiting or len(running) >= self._max_seqs:
            return True
        head = self._waiting[0]
        # the head waits for blocks: decodes only take more of them until a completion
        return self._blocks_for(min(head.need, self._budget - len(running))) > self._free_blocks

    def _stretch_blocks(self, steps: int) -> int:
        """Blocks the running requests take over ``steps`` decode steps."""
        return sum(self._blocks_for(r.computed + steps) - r.blocks for r in self._running)

    def _stretch_length(self) -> int:
        """Steps until the first completion, or the last step whose blocks are free (then a step runs
        one by one and preempts)."""
        steps = min(record.output - record.generated for record in self._running)
        if self._stretch_blocks(steps) <= self._free_blocks:
            return steps
        lo, hi = 0, steps  # the most steps whose blocks fit: lo fits, hi does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._stretch_blocks(mid) <= self._free_blocks:
                lo = mid
            else:
                hi = mid
        return lo

    def _begin_stretch(self, now: float, steps: int) -> None:
        cost = self._cost
        n = len(self._running)
        context = sum(record.computed + 1 for record in self._running)
        fixed = cost.fixed_s + cost.per_context_token_s * context
        if cost.additive:  # a profile's fit: read + compute, every step the same n tokens
            self._stretch.gamma = 0.0
            fixed += cost.per_new_token_s * n
        else:  # g x max(read, floor / g) = max(g x read, compute, host): the floor is fixed over the stretch
            self._stretch.gamma = max(cost.per_new_token_s * n, cost.host_s_per_seq * n) / cost.g
        self._stretch.restart(fixed, cost.per_context_token_s * n)
        self._stretch_steps = steps
        self._start_t = now
        self._busy = True
        self._next_t = now + self._stretch.span(steps)

    def _cut_stretch(self, now: float) -> None:
        """End the stretch at its first step boundary at or after ``now``."""
        k, _ = self._stretch.first_boundary(now - self._start_t)
        k = max(1, min(k, self._stretch_steps))
        self._stretch_steps = k
        self._next_t = self._start_t + self._stretch.span(k)

    def _apply_stretch(self, steps: int, end: float) -> None:
        """``steps`` decode steps of every running request, ending at ``end``."""
        extra = self._stretch_blocks(steps)
        self._free_blocks -= extra
        finished = []
        for record in self._running:
            record.computed += steps
            record.generated += steps
            record.blocks = self._blocks_for(record.computed)
            if record.cancelled or record.generated >= record.output:
                finished.append(record)
        for record in finished:
            if record.cancelled:
                self._drop(record)
            else:
                self._complete(record, end)

    # --- estimates -------------------------------------------------------------------------------------
    def _step_estimate(self) -> float:
        context = sum(record.computed + 1 for record in self._running)
        n = max(1, len(self._running))
        return self._cost.step_s(context, n, n)

    def _wait_estimate(self, now: float) -> float:
        """Engine seconds before a request submitted now is first scheduled: the rest of the model load
        or of the step in flight, then, when the seats are taken, the steps until enough running
        requests finish (their remaining tokens are known), each priced at the current step time."""
        wait = max(0.0, self._next_t - now) if self._next_t < _INF else 0.0
        ahead = len(self._waiting) + 1
        seats = self._max_seqs - len(self._running)
        if ahead <= seats:
            return wait
        remaining = sorted(record.output - record.generated for record in self._running)
        need = ahead - seats
        if need <= len(remaining):
            steps = float(remaining[need - 1])
        else:
            mean = sum(r.output for r in self._waiting) / len(self._waiting) if self._waiting else self._max_len / 2
            steps = (remaining[-1] if remaining else 0) + (need - len(remaining)) / self._max_seqs * mean
        return wait + steps * self._step_estimate()
