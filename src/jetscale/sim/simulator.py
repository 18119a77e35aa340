"""The discrete-event simulator: many JetStream replicas, the router, the metrics pipeline and the HPA
on one virtual clock.

Events (``jetscale.sim.clock``), at each instant in this order:

* **engine**: a replica's next first token or completion (``ReplicaEngine.next_event_time``);
* **lifecycle**: a new replica got a node, started its container (the engine begins loading the model),
  or passed its readiness probe (it joins the router);
* **client timeout** (with ``Scenario.client_timeout_s``): the client of a request not finished by its
  deadline (arrival + timeout) gives up, and the request is cancelled in its engine as the live server
  cancels it when a client hangs up: it leaves the prefill backlog at once, or its decode slot at the
  next step (``ReplicaEngine.cancel``). A client gives up before every other event of its instant; the
  engine's own events up to that instant run first (inside ``cancel``), so a request that ends exactly
  at its deadline has finished;
* **arrival**: a request is routed to a ready replica and submitted; refused when none is ready or the
  replica refuses it (its prefill backlog is full, or its expected wait is over ``max_queue_wait_s``);
* **scrape** (every ``scrape_interval_s``): every loaded replica's gauges, visible to the HPA after
  ``metrics_lag_s``;
* **sync** (every ``sync_period_s``): one ``HorizontalController.step`` on the pods and readings as
  Kubernetes would list them; a rescale creates replicas (their start-up delays drawn from the seed) or
  deletes them (a deleted ready replica leaves the router, finishes its requests, then is gone);
* **sample** (every scrape interval) and **minute**: a timeline row and a row of per-minute latency.

The engine is advanced lazily. An engine computes its events from its own state whenever it is called,
and gives identical results whether ``advance`` is called at every event or once for a whole stretch
(``jetscale.engine.replica``), so the simulator only schedules engine events for replicas whose
completions something waits for: a draining replica (to know when it is gone), every replica under
least-outstanding routing (the counts must be current at each arrival) and in a closed loop (a user
sends again when its request ends). Other replicas are advanced at each scrape, sample and minute,
which returns the same completions with the same timestamps at a fraction of the cost.

Client deadlines are not pushed on the heap either: requests are submitted in time order, so their
deadlines (arrival + one timeout) are too, and a deque of them is merged with the heap and the arrivals
as the arrivals are. A deadline is taken before anything that could run an engine past it, so the
cancel sees the engine exactly as it was at the deadline; a request that finished earlier costs one
``cancel`` that finds nothing to do.
"""

from __future__ import annotations

import gc
import math
import time
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

from jetscale.engine.api import Completion, Stage
from jetscale.hpa.controller import Decision, HorizontalController, Observation
from jetscale.load.config import streams
from jetscale.load.stats import Metric
from jetscale.report.timeline import Sample, ScalingEvent, Timeline
from jetscale.sim.clock import EventKind, EventQueue, Priority
from jetscale.sim.deployment import Deployment
from jetscale.sim.fleet import Replica, ReplicaState, Router, RouterPolicy, make_request, parse_router
from jetscale.sim.observe import Scrape, fleet_average, metric_names, readings, scrape
from jetscale.sim.recorder import Recorder
from jetscale.sim.result import NOT_READY, MinuteRow, RequestCounts, SimResult, SizeCounts, SyncRow
from jetscale.sim.scenario import CLOSED_SIZE_CHUNK, ArrivalChunk, ClosedTraffic, Scenario
from jetscale.sim.signals import HBM_USAGE, PREFILL_BACKLOG, SLOTS_USED

__all__ = ["Progress", "Simulator", "SyncHook", "simulate"]

Progress = Callable[[float, float], None]  # (simulated seconds done, simulated seconds in all)
SyncHook = Callable[[float, Observation, Decision], None]  # (now, what the HPA saw, what it decided)

_ENGINE, _READY, _SCRAPE, _SYNC, _SAMPLE, _MINUTE, _USER = (
    int(k) for k in (EventKind.ENGINE, EventKind.READY, EventKind.SCRAPE, EventKind.SYNC, EventKind.SAMPLE,
                     EventKind.MINUTE, EventKind.USER)
)  # fmt: skip
_TIMELINE_COLUMNS = {PREFILL_BACKLOG: "prefill_backlog", SLOTS_USED: "slots_used", HBM_USAGE: "hbm_usage"}
_INF = math.inf
_Deadline = tuple[float, int, Replica, float, int, int]  # (deadline, request id, replica, arrival, in, out)
_SLICE = 1 << 16  # arrivals turned into Python lists at a time
_GC_GEN0 = 50_000  # allocations between collections of the youngest generation during a run


def simulate(scenario: Scenario, *, progress: Progress | None = None) -> SimResult:
    """Run ``scenario`` to the end; see the module docstring."""
    return Simulator(scenario, progress=progress).run()


class Simulator:
    """One run of a ``Scenario``. The constructor only checks and stores; ``run`` does the work (once).

    ``on_sync`` sees every reconcile (for parity checks against the live fleet and for tests);
    ``eager_engine_events`` schedules every replica's engine events, not only those waited for (the
    results are identical; it only costs more).
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        progress: Progress | None = None,
        on_sync: SyncHook | None = None,
        eager_engine_events: bool = False,
    ) -> None:
        self.scenario = scenario
        self.policy = parse_router(scenario.router)
        self._progress = progress
        self._on_sync = on_sync
        sc = scenario
        self.q = EventQueue()
        self.router: Router[Replica] = Router(self.policy)
        self.deployment = Deployment(
            name=sc.hpa.scale_target_ref.name if sc.hpa is not None else "replica",
            config=sc.replica,
            startup=sc.startup,
            rng=np.random.default_rng(np.random.SeedSequence(sc.seed, spawn_key=(3,))),
            router=self.router,
            queue=self.q,
            finished=self._finished,
        )
        self.controller = HorizontalController(sc.hpa, sc.controller) if sc.hpa is not None else None
        self.recorder = Recorder(sc.slos, keep_records=sc.records)
        self._closed = isinstance(sc.traffic, ClosedTraffic)
        self._watch_all = eager_engine_events or self._closed or self.policy is RouterPolicy.LEAST_OUTSTANDING
        self._names = metric_names(sc.hpa, _TIMELINE_COLUMNS)
        self._pending: deque[Scrape] = deque()
        self._visible: Scrape | None = None
        self._latest: Scrape | None = None
        self.arrived = 0
        self.submitted = 0
        self._offered_in = self._offered_out = self._prompts_cut = 0
        self._timeout = sc.client_timeout_s
        self._deadlines: deque[_Deadline] = deque()  # of the requests submitted, in submission (= time) order
        self._horizon = sc.duration_s + sc.drain_after_s  # deadlines later than this are never reached
        self._sampled_arrivals = 0
        self._minute_start = 0.0
        self.events = 0
        self.timeline = Timeline(title=sc.name, targets=self._targets())
        self.minutes: list[MinuteRow] = []
        self.metric_rows: list[dict[str, float]] = []
        self.syncs: list[SyncRow] = []
        self._user_of: dict[int, int] = {}
        self._user_rngs: list[np.random.Generator] = []
        self._sizes: tuple[list[int], list[int]] = ([], [])
        self._rng_sizes = np.random.default_rng(0)  # replaced by the closed loop's own stream
        self._send_again = True  # closed-loop users send again when a request ends (not in the tail)
        self._ran = False

    # --- the run ------------------------------------------------------------------------------------------
    def run(self) -> SimResult:
        if self._ran:
            raise RuntimeError("a Simulator runs once; make another for another run")
        self._ran = True
        wall = time.perf_counter()
        thresholds = gc.get_threshold()
        # Every request allocates a few short-lived objects, none in a reference cycle: collect the
        # youngest generation less often during the run (about 7 % faster) and restore the setting after.
        gc.set_threshold(max(thresholds[0], _GC_GEN0), *thresholds[1:])
        try:
            return self._run(wall)
        finally:
            gc.set_threshold(*thresholds)

    def result_so_far(self, *, wall_s: float = 0.0) -> SimResult:
        """What a run stopped early (Ctrl-C in ``run``) has produced: every request handled up to the last
        event taken, cost counted to that time (``duration_s``); requests still running stay in flight."""
        self.recorder.flush()
        result = self._result(wall_s)
        result.duration_s = min(self.q.now_s, self.scenario.duration_s)
        return result

    def _run(self, wall: float) -> SimResult:
        sc = self.scenario
        end = sc.duration_s
        self.deployment.start(sc.start_replicas)
        q = self.q
        q.push(0.0, Priority.SCRAPE, _SCRAPE)
        q.push(0.0, Priority.SAMPLE, _SAMPLE)
        q.push(min(60.0, end), Priority.SAMPLE, _MINUTE)
        if self.controller is not None:
            q.push(0.0, Priority.SYNC, _SYNC)
        if isinstance(sc.traffic, ClosedTraffic):
            self._start_users(sc.traffic)
        else:
            longest = sc.replica.max_prefill_length
            for chunk in sc.traffic.chunks(end):
                self._offered(chunk.input_tokens, chunk.output_tokens, longest)
                self._arrivals(chunk)
        self._run_events(end, Priority.SAMPLE + 1)
        self._tail(end + sc.drain_after_s)
        return self._result(time.perf_counter() - wall)

    def _offered(self, inputs: np.ndarray, outputs: np.ndarray, longest: int) -> None:
        """Count what the workload offered (a chunk at a time, in numpy: not on the per-request path)."""
        self._offered_in += int(inputs.sum())
        self._offered_out += int(outputs.sum())
        self._prompts_cut += int(np.count_nonzero(inputs > longest))

    def _arrivals(self, chunk: ArrivalChunk) -> None:
        """The open loop's hot path: merge the chunk's arrivals with the event queue (as Python lists, a
        slice at a time: numbers are faster to read from a list, and a slice bounds the memory). Without
        engine events to schedule, routing and submitting are inlined (``_arrive`` does the same), and so is
        the merge with the client deadlines that come before any event."""
        q = self.q
        deadlines = self._deadlines
        timeout = self._timeout
        horizon = self._horizon
        give_up = self._give_up
        heap_t = q.peek()[0]  # no event on the heap is earlier (if one is later, _run_events finds nothing)
        next_t = deadlines[0][0] if deadlines and deadlines[0][0] < heap_t else heap_t
        arrive, pick, reject = self._arrive, self.router.pick, self.recorder.reject
        lean = not self._watch_all
        rid = chunk.first_id
        for start in range(0, len(chunk), _SLICE):
            times = chunk.times_s[start : start + _SLICE].tolist()
            inputs = chunk.input_tokens[start : start + _SLICE].tolist()
            outputs = chunk.output_tokens[start : start + _SLICE].tolist()
            refused = 0
            for j in range(len(times)):
                t = times[j]
                if t >= next_t:
                    self.arrived = rid
                    while deadlines and deadlines[0][0] <= t and deadlines[0][0] <= heap_t:
                        if give_up(deadlines.popleft()):
                            heap_t = q.peek()[0]
                    if heap_t <= t:
                        self._run_events(t, Priority.ARRIVAL)
                        heap_t = q.peek()[0]
                    next_t = deadlines[0][0] if deadlines and deadlines[0][0] < heap_t else heap_t
                if lean:
                    replica = pick()
                    if replica is None:
                        reject(rid, t, inputs[j], outputs[j], NOT_READY)
                        refused += 1
                    elif not replica.engine.submit(make_request(rid, inputs[j], outputs[j], t), t):  # type: ignore[union-attr]
                        reject(rid, t, inputs[j], outputs[j], _shed_reason(replica))
                        refused += 1
                    elif timeout is not None and t + timeout <= horizon:
                        deadline = t + timeout
                        deadlines.append((deadline, rid, replica, t, inputs[j], outputs[j]))
                        if deadline < next_t:
                            next_t = deadline
                else:
                    wake = arrive(rid, inputs[j], outputs[j], t)
                    if wake < heap_t:
                        heap_t = wake  # perhaps a deadline, not an event: then _run_events finds nothing
                        if wake < next_t:
                            next_t = wake
                rid += 1
            if lean:
                self.submitted += len(times) - refused
        self.arrived = rid

    def _arrive(self, rid: int, n_in: int, n_out: int, t: float) -> float:
        """Route and submit one request; returns the earliest time of what it scheduled (an engine event,
        its client's deadline), else inf."""
        replica = self.router.pick()
        if replica is None:
            self.recorder.reject(rid, t, n_in, n_out, NOT_READY)
            return _INF
        engine = replica.engine
        assert engine is not None
        if not engine.submit(make_request(rid, n_in, n_out, t), t):
            self.recorder.reject(rid, t, n_in, n_out, _shed_reason(replica))
            return _INF
        self.submitted += 1
        wake = _INF
        if self._timeout is not None and t + self._timeout <= self._horizon:
            wake = t + self._timeout
            self._deadlines.append((wake, rid, replica, t, n_in, n_out))
        if not self._watch_all:
            return wake
        self.router.started(replica)
        nxt = engine.next_event_time()
        if nxt is not None and self.deployment.watch(replica, nxt) and nxt < wake:
            return nxt
        return wake

    def _run_events(self, t: float, before: int) -> None:
        """Handle every event earlier than (t, before), and every client deadline up to t, in time order
        (a deadline before the events of its instant)."""
        q = self.q
        deadlines = self._deadlines
        while True:
            when, priority = q.peek()
            if deadlines:
                due = deadlines[0][0]
                if due <= when and due <= t:
                    self._give_up(deadlines.popleft())
                    continue
            if when > t or (when == t and priority >= before):
                return
            now, _, kind, payload = q.pop()
            self.events += 1
            if kind == _ENGINE:
                self.deployment.engine_event(payload, now, keep_watching=self._watch_all)  # type: ignore[arg-type]
            elif kind == _USER:
                self._user_sends(payload, now)  # type: ignore[arg-type]
            elif kind <= _READY:
                self.deployment.lifecycle(kind, payload, now)  # type: ignore[arg-type]
            elif kind == _SCRAPE:
                self._scrape(now)
            elif kind == _SYNC:
                self._sync(now)
            elif kind == _SAMPLE:
                self._sample(now)
            else:
                self._minute(now)

    def _tail(self, limit_s: float) -> None:
        """After the run: let the requests in flight finish until ``limit_s`` (their clients still give up
        at their deadlines); no one sends or scales."""
        self._send_again = False
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= limit_s:
            self._give_up(deadlines.popleft())
        self.deployment.advance_all(limit_s)
        self.recorder.flush()

    def _give_up(self, deadline: _Deadline) -> bool:
        """The client of a request gives up at its deadline: cancel the request unless it has finished.
        True when an event may have been queued."""
        now, rid, replica, arrival_s, n_in, n_out = deadline
        engine = replica.engine
        if engine is None:
            return False  # the replica is gone, so every request it took has finished
        stage: Stage | None = engine.cancel(rid, now)
        if stage is None:
            return False  # it finished by now (its completion is collected as any other)
        self.recorder.abandon(rid, replica.index, arrival_s, n_in, n_out, stage)
        if self._watch_all:
            self.router.finished(replica)
        if self._closed:
            user = self._user_of.pop(rid)
            if self._send_again:
                self._user_later(user, now)
        watched = self._watch_all or replica.state is ReplicaState.DRAINING
        if watched:
            # its next event may be earlier now (a freed slot), and a draining replica may be done
            self.deployment.settle(replica, now, keep_watching=self._watch_all)
        return watched or self._closed

    # --- engines ------------------------------------------------------------------------------------------
    def _finished(self, replica: Replica, done: Sequence[Completion], now: float) -> None:
        recorder = self.recorder
        recorder.done.extend(done)
        if recorder.keep_records:
            recorder.done_replica.extend([replica.index] * len(done))
        if self._watch_all:
            self.router.finished(replica, len(done))
        if self._closed:
            for completion in done:
                user = self._user_of.pop(completion.request_id)
                if self._send_again:
                    self._user_later(user, completion.end_s)

    def _scale(self, now: float, desired: int, reason: str) -> None:
        events = self.timeline.events
        events.append(ScalingEvent(t_s=now, from_replicas=self.deployment.desired, to_replicas=desired, reason=reason))
        self.deployment.scale(now, desired)

    # --- closed loop --------------------------------------------------------------------------------------
    def _start_users(self, traffic: ClosedTraffic) -> None:
        _, self._rng_sizes, rng_users = streams(traffic.seed)
        seeds = rng_users.integers(0, 2**63, size=traffic.loop.users)
        self._user_rngs = [np.random.default_rng(int(s)) for s in seeds]
        for user, offset in enumerate(traffic.loop.start_offsets_s().tolist()):
            if offset < self.scenario.duration_s:
                self.q.push(offset, Priority.ARRIVAL, _USER, user)

    def _user_later(self, user: int, after_s: float) -> None:
        traffic = self.scenario.traffic
        assert isinstance(traffic, ClosedTraffic)
        t = after_s + traffic.loop.think_time(self._user_rngs[user])
        if t < self.scenario.duration_s:
            self.q.push(t, Priority.ARRIVAL, _USER, user)

    def _user_sends(self, user: int, now: float) -> None:
        traffic = self.scenario.traffic
        assert isinstance(traffic, ClosedTraffic)
        if traffic.max_requests is not None and self.arrived >= traffic.max_requests:
            return
        inputs, outputs = self._sizes
        if not inputs:
            sizes = traffic.workload.sample(self._rng_sizes, CLOSED_SIZE_CHUNK)
            inputs, outputs = self._sizes = (sizes.input_tokens.tolist()[::-1], sizes.output_tokens.tolist()[::-1])
        self._offered_in += inputs[-1]
        self._offered_out += outputs[-1]
        self._prompts_cut += inputs[-1] > self.scenario.replica.max_prefill_length
        rid = self.arrived
        self.arrived += 1
        self._user_of[rid] = user
        submitted = self.submitted
        self._arrive(rid, inputs.pop(), outputs.pop(), now)
        if self.submitted == submitted:  # refused: the user thinks, then tries again
            del self._user_of[rid]
            self._user_later(user, now)

    # --- observation --------------------------------------------------------------------------------------
    def _scrape(self, now: float) -> None:
        sc = self.scenario
        self.deployment.advance_all(now)
        scraped = scrape(self.deployment.replicas, self._names, now, sc.metrics_lag_s)
        self._pending.append(scraped)
        self._latest = scraped
        self.metric_rows.append({"t_s": now, **{name: fleet_average(scraped, name) for name in self._names}})
        if now + sc.scrape_interval_s <= sc.duration_s:
            self.q.push(now + sc.scrape_interval_s, Priority.SCRAPE, _SCRAPE)

    def _sync(self, now: float) -> None:
        sc, controller = self.scenario, self.controller
        assert controller is not None and sc.hpa is not None
        pending = self._pending
        while pending and pending[0].visible_s <= now:
            self._visible = pending.popleft()
        pods = self.deployment.pods()
        observation = Observation(
            spec_replicas=self.deployment.desired,
            status_replicas=len(self.deployment.live()),
            pods=pods,
            readings=readings(sc.hpa, self._visible, window_s=sc.scrape_interval_s, pods={p.name for p in pods}),
        )
        decision = controller.step(observation, now)
        if self._on_sync is not None:
            self._on_sync(now, observation, decision)
        self.syncs.append(
            SyncRow(
                t_s=now,
                current_replicas=decision.current_replicas,
                desired_replicas=decision.desired_replicas,
                rescale=decision.rescale,
                reason=decision.reason,
                metric_replicas=decision.metric_replicas,
            )
        )
        if decision.rescale:
            self._scale(now, decision.desired_replicas, decision.reason)
        period = sc.controller.sync_period_s
        if now + period < sc.duration_s:
            self.q.push(now + period, Priority.SYNC, _SYNC)

    def _sample(self, now: float) -> None:
        sc = self.scenario
        self.deployment.advance_all(now)
        self.recorder.flush()
        latency = self.recorder.window()
        states = [r.state for r in self.deployment.replicas]
        latest = self._latest
        averages = {
            column: fleet_average(latest, name) if latest is not None else math.nan
            for name, column in _TIMELINE_COLUMNS.items()
        }
        rate = (self.arrived - self._sampled_arrivals) / sc.scrape_interval_s if now > 0 else math.nan
        self._sampled_arrivals = self.arrived
        self.timeline.samples.append(
            Sample(
                t_s=now,
                replicas_desired=self.deployment.desired,
                replicas_ready=states.count(ReplicaState.READY),
                replicas_starting=sum(1 for s in states if s < ReplicaState.READY),
                replicas_draining=states.count(ReplicaState.DRAINING),
                request_rate_rps=rate,
                **averages,
                **latency,
            )
        )
        if self._progress is not None:
            self._progress(now, sc.duration_s)
        if now + sc.scrape_interval_s <= sc.duration_s:
            self.q.push(now + sc.scrape_interval_s, Priority.SAMPLE, _SAMPLE)

    def _minute(self, now: float) -> None:
        self.deployment.advance_all(now)
        self.recorder.flush()
        self.minutes.append(self.recorder.minute(self._minute_start))
        self._minute_start = now
        end = self.scenario.duration_s
        if now < end:
            self.q.push(min(now + 60.0, end), Priority.SAMPLE, _MINUTE)

    def _targets(self) -> dict[str, float]:
        hpa = self.scenario.hpa
        targets: dict[str, float] = {}
        for metric in hpa.metrics if hpa is not None else ():
            column = _TIMELINE_COLUMNS.get(metric.name)
            if column is not None and metric.target.average_value_milli is not None:
                targets[column] = metric.target.average_value_milli / 1000
        return targets

    def _result(self, wall_s: float) -> SimResult:
        sc = self.scenario
        recorder = self.recorder
        in_flight = self.submitted - recorder.finished - recorder.abandoned
        return SimResult(
            name=sc.name,
            duration_s=sc.duration_s,
            chips_per_replica=sc.replica.accelerator.chips,
            timeline=self.timeline,
            minutes=self.minutes,
            metrics=self.metric_rows,
            syncs=self.syncs,
            replicas=self.deployment.spans(),
            counts=RequestCounts(
                arrived=self.arrived,
                done=recorder.finished,
                rejected=recorder.rejected,
                in_flight=in_flight,
                abandoned=recorder.abandoned,
                rejected_by_reason=dict(recorder.rejected_by_reason),
                abandoned_by_stage=dict(recorder.abandoned_by_stage),
            ),
            ttft=recorder.stats(Metric.TTFT),
            e2e=recorder.stats(Metric.E2E),
            tpot=recorder.stats(Metric.TPOT),
            slos=recorder.slo_outcomes(),
            records=recorder.records(),
            events_processed=self.events,
            wall_s=wall_s,
            sizes=SizeCounts(
                offered_input_tokens=self._offered_in,
                offered_output_tokens=self._offered_out,
                prompts_cut=self._prompts_cut,
                served_input_tokens=recorder.input_tokens_done,
                served_output_tokens=recorder.output_tokens_done,
            ),
        )


def _shed_reason(replica: Replica) -> str:
    """Why ``replica``'s engine refused the request it was just given."""
    engine = replica.engine
    assert engine is not None and engine.last_refusal is not None
    return engine.last_refusal.reason.value
