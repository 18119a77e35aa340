"""A tiny deterministic engine for the server tests, with timings worked out by hand (and a stream parser).

One prefill at a time taking ``prefill_s`` per request; ``decode_slots`` slots; a request inserted at
``t`` produces its remaining ``output_tokens - 1`` tokens at ``t + step_s, t + 2 step_s, ...`` and ends
with the last one. The prefill backlog (excluding the request being prefilled) holds at most
``backlog_limit`` requests. HBM: ``weights_bytes`` + ``kv_bytes_per_token`` x tokens of active slots.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass

from jetscale.engine.api import Completion, EngineRequest, EngineSnapshot, FirstToken, Refusal, Shed, Stage


@dataclass(slots=True)
class _Live:
    request: EngineRequest
    prefill_start_s: float = 0.0
    first_token_s: float = 0.0
    insert_s: float = 0.0
    end_s: float = math.inf


class FakeEngine:
    def __init__(
        self,
        *,
        prefill_s: float = 0.1,
        step_s: float = 0.01,
        decode_slots: int = 4,
        backlog_limit: int = 8,
        weights_bytes: int = 1000,
        kv_bytes_per_token: int = 10,
        hbm_total_bytes: int = 100_000,
    ) -> None:
        self.prefill_s = prefill_s
        self.step_s = step_s
        self.decode_slots = decode_slots
        self.backlog_limit = backlog_limit
        self.weights_bytes = weights_bytes
        self.kv_bytes_per_token = kv_bytes_per_token
        self.hbm_total_bytes = hbm_total_bytes
        self._t = 0.0
        self._backlog: deque[_Live] = deque()
        self._prefilling: _Live | None = None
        self._waiting: deque[_Live] = deque()  # prefilled, waiting for a slot
        self._decoding: dict[int, _Live] = {}
        self._by_id: dict[int, _Live] = {}
        self._busy_s = 0.0
        self._busy_at_snapshot = 0.0
        self._t_at_snapshot = 0.0
        self.submitted: list[EngineRequest] = []
        self.cancelled: list[tuple[int, Stage]] = []
        self.last_refusal: Refusal | None = None

    # ---- Engine protocol ----------------------------------------------------------------------
    def submit(self, request: EngineRequest, now_s: float) -> bool:
        self._run_until(now_s, [], [])
        if len(self._backlog) >= self.backlog_limit:
            self.last_refusal = Refusal(reason=Shed.BACKLOG_FULL, expected_wait_s=self.expected_wait_s(now_s),
                                        retry_in_s=max(0.0, (self.next_event_time() or now_s) - now_s))  # fmt: skip
            return False
        live = _Live(request)
        self._by_id[request.request_id] = live
        self._backlog.append(live)
        self.submitted.append(request)
        self._start_prefill(now_s)
        return True

    def advance(self, now_s: float) -> tuple[list[FirstToken], list[Completion]]:
        firsts: list[FirstToken] = []
        done: list[Completion] = []
        self._run_until(now_s, firsts, done)
        return firsts, done

    def cancel(self, request_id: int, now_s: float) -> Stage | None:
        """Drop a request at once, wherever it is (the real engine waits for the running step)."""
        self._run_until(now_s, [], [])
        live = self._by_id.pop(request_id, None)
        if live is None:
            return None
        if live in self._backlog:
            self._backlog.remove(live)
            stage = Stage.PREFILL_BACKLOG
        elif live is self._prefilling:
            self._prefilling = None
            self._start_prefill(now_s)
            stage = Stage.PREFILL
        elif live in self._waiting:
            self._waiting.remove(live)
            stage = Stage.GENERATE_BACKLOG
        else:
            del self._decoding[request_id]
            self._insert(now_s)
            stage = Stage.DECODE
        self.cancelled.append((request_id, stage))
        return stage

    def expected_wait_s(self, now_s: float) -> float:
        return self.prefill_s * len(self._backlog)

    def next_event_time(self) -> float | None:
        times = [live.end_s for live in self._decoding.values()]
        if self._prefilling is not None:
            times.append(self._prefilling.first_token_s)
        return min(times) if times else None

    def tokens_generated(self, request_id: int, now_s: float) -> int:
        live = self._by_id.get(request_id)
        if live is None:
            return 0
        if live.first_token_s == 0.0 or now_s < live.first_token_s:
            return 0
        if live.request.request_id not in self._decoding:
            return 1
        steps = math.floor((now_s - live.insert_s) / self.step_s + 1e-9)
        return min(live.request.output_tokens, 1 + steps)

    def snapshot(self, now_s: float) -> EngineSnapshot:
        self._run_until(now_s, [], [])
        elapsed = now_s - self._t_at_snapshot
        duty = (self._busy_s - self._busy_at_snapshot) / elapsed if elapsed > 0 else 0.0
        self._t_at_snapshot, self._busy_at_snapshot = now_s, self._busy_s
        active_tokens = sum(live.request.input_tokens for live in self._decoding.values())
        return EngineSnapshot(
            prefill_backlog=len(self._backlog),
            transfer_backlog=0,
            generate_backlog=len(self._waiting),
            slots_used=len(self._decoding),
            decode_slots=self.decode_slots,
            hbm_used_bytes=self.weights_bytes + self.kv_bytes_per_token * active_tokens,
            hbm_total_bytes=self.hbm_total_bytes,
            duty_cycle=duty,
        )

    # ---- internals ----------------------------------------------------------------------------
    def _start_prefill(self, t: float) -> None:
        if self._prefilling is None and self._backlog:
            live = self._backlog.popleft()
            live.prefill_start_s = t
            live.first_token_s = t + self.prefill_s
            self._prefilling = live

    def _insert(self, t: float) -> None:
        while self._waiting and len(self._decoding) < self.decode_slots:
            live = self._waiting.popleft()
            live.insert_s = t
            live.end_s = t + (live.request.output_tokens - 1) * self.step_s
            self._decoding[live.request.request_id] = live

    def _run_until(self, now_s: float, firsts: list[FirstToken], done: list[Completion]) -> None:
        while True:
            t = self.next_event_time()
            if t is None or t > now_s:
                break
            self._account(t)
            prefilled = self._prefilling
            if prefilled is not None and prefilled.first_token_s == t:
                self._prefilling = None
                firsts.append(FirstToken(request_id=prefilled.request.request_id, time_s=t))
                self._waiting.append(prefilled)
                self._insert(t)
                self._start_prefill(t)
            for rid, live in list(self._decoding.items()):
                if live.end_s == t:
                    del self._decoding[rid]
                    del self._by_id[rid]
                    r = live.request
                    done.append(Completion(
                        request_id=rid, input_tokens=r.input_tokens, output_tokens=r.output_tokens,
                        arrival_s=r.arrival_s, prefill_start_s=live.prefill_start_s,
                        first_token_s=live.first_token_s, insert_s=live.insert_s, end_s=t,
                    ))  # fmt: skip
            self._insert(t)
        self._account(max(now_s, self._t))

    def _account(self, t: float) -> None:
        if self._prefilling is not None or self._decoding:
            self._busy_s += t - self._t
        self._t = t


def split_json(text: str) -> list[dict[str, object]]:
    """JetStream's HTTP stream: JSON objects concatenated with no framing."""
    decoder = json.JSONDecoder()
    objects, i = [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return objects
        obj, i = decoder.raw_decode(text, i)
        objects.append(obj)
