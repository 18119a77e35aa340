"""One streamed request to the server being profiled, timed token by token. I/O, wall clock.

The profiler assumes nothing of the server but its API:

* ``jetstream-http``: ``POST /v1/generate`` with the prompt as ``token_content`` (so its length is exact);
  the answer streams JSON ``DecodeResponse`` messages, each listing its new ``tokenIds``.
* ``jetstream-grpc``: ``jetstream_proto.Orchestrator/Decode`` with ``token_content``; one streamed
  ``DecodeResponse`` per decode step (as JetStream sends them), each listing its new ``token_ids``.
* ``openai``: ``POST /v1/completions`` streamed, the prompt as text of ``n`` words, with
  ``stream_options.include_usage`` so the last event says how many tokens the prompt and the answer had;
  ``ignore_eos`` (vLLM's extension) asks for the full ``max_tokens``, and is dropped for servers that
  refuse unknown fields (``transformers serve`` does). Where the chunk count differs from the tokens
  counted in ``usage``, each chunk's share is scaled so that the last one lands on the count.

A ``Timeline`` is (wall seconds since sending, tokens so far) at each streamed message.

Every prompt is new to the server: its first four tokens (or words) spell a number no other request of
the run (or of another run) starts with, and the rest follow from it, so no prefix cache (vLLM caches by
default, in 16-token blocks) can serve a prompt, or part of one, that the profile sent before. A request
that fails before any answer on a connection the server had closed (keep-alive races) is sent again once.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import grpc

from jetscale.load.protocol import parse_sse_data
from jetscale.server.proto import jetstream_pb2 as pb
from jetscale.server.proto import jetstream_pb2_grpc as pb_grpc

__all__ = ["Client", "RequestFailed", "Timeline"]

_IDS_KEYS = ("tokenIds", "token_ids")
_WORDS = (  # 64 common words, one token each in most vocabularies
    "sea",
    "wind",
    "ship",
    "salt",
    "wave",
    "tide",
    "gull",
    "reef",
    "storm",
    "sail",
    "mast",
    "deck",
    "port",
    "bay",
    "cliff",
    "sand",
    "rock",
    "shell",
    "fish",
    "net",
    "rope",
    "boat",
    "dock",
    "pier",
    "light",
    "moon",
    "star",
    "cloud",
    "rain",
    "fog",
    "mist",
    "dawn",
    "dusk",
    "north",
    "south",
    "east",
    "west",
    "river",
    "lake",
    "stone",
    "hill",
    "field",
    "tree",
    "leaf",
    "root",
    "seed",
    "bird",
    "wolf",
    "bear",
    "deer",
    "fox",
    "hare",
    "owl",
    "crow",
    "hawk",
    "swan",
    "horse",
    "sheep",
    "goat",
    "cow",
    "bell",
    "road",
    "town",
    "sky",
)
_ID_RANGE = 997  # token ids 3..999: inside any vocabulary


def _sequence(unique: int, length: int, alphabet: int) -> list[int]:
    """``length`` symbols in ``range(alphabet)``: four leading ones spell ``unique``, the rest follow from it."""
    head = [(unique // alphabet**i) % alphabet for i in range(4)]
    state = (unique * 6364136223846793005 + 1442695040888963407) % 2**64
    tail = []
    for _ in range(max(0, length - 4)):
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        tail.append((state >> 33) % alphabet)
    return (head + tail)[:length]


class RequestFailed(Exception):
    """The server answered with an error status (``status``), or the connection failed (0);
    ``before_answer``: nothing had come back yet."""

    def __init__(self, message: str, *, status: int = 0, before_answer: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.before_answer = before_answer


@dataclass(slots=True)
class Timeline:
    """When each streamed message came (wall seconds from the request's start) and the tokens so far."""

    sent_s: float  # time.monotonic() when the request was sent
    times_s: list[float] = field(default_factory=list)
    tokens: list[float] = field(default_factory=list)
    prompt_tokens: int | None = None
    on_first_token: Callable[[], None] | None = None

    def add(self, at_s: float, tokens: float) -> None:
        """A message at ``at_s`` (from the start) brought the count of tokens so far to ``tokens``."""
        self.times_s.append(at_s)
        self.tokens.append(tokens)
        if len(self.times_s) == 1 and self.on_first_token is not None:
            self.on_first_token()

    @property
    def first_token_s(self) -> float:
        return self.times_s[0]

    @property
    def end_s(self) -> float:
        return self.times_s[-1]

    @property
    def output_tokens(self) -> int:
        return round(self.tokens[-1]) if self.tokens else 0


def _jetstream_messages(buffer: bytes) -> tuple[list[dict[str, object]], bytes]:
    """Complete JSON objects at the front of ``buffer`` (concatenated, no framing) and the rest."""
    decoder = json.JSONDecoder()
    text = buffer.decode("utf-8", errors="replace")
    out: list[dict[str, object]] = []
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return out, b""
        try:
            obj, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            return out, text[index:].encode("utf-8")
        if isinstance(obj, dict):
            out.append(obj)
        index = end


def _jetstream_count(message: dict[str, object]) -> int:
    content = message.get("streamContent") or message.get("stream_content") or {}
    samples = content.get("samples", []) if isinstance(content, dict) else []
    total = 0
    for sample in samples if isinstance(samples, list) else []:
        if isinstance(sample, dict):
            ids: object = next((sample[k] for k in _IDS_KEYS if k in sample), [])
            total += len(ids) if isinstance(ids, list) else 0
    return total


class Client:
    """Timed requests to one server (``base`` URL) over one ``aiohttp`` session."""

    def __init__(
        self, session: aiohttp.ClientSession, *, base: str, api: str, model: str | None,
        channel: grpc.aio.Channel | None = None,
    ) -> None:  # fmt: skip
        self._session = session
        self._base = base.rstrip("/")
        self._api = api
        self.model = model
        self.ignore_eos = True  # dropped once the server refuses it
        self._unique = int.from_bytes(os.urandom(4), "big") << 20  # this run's prompts; + a request counter
        self._stub = pb_grpc.OrchestratorStub(channel) if channel is not None else None  # type: ignore[no-untyped-call]

    async def request(
        self, prompt_tokens: int, max_tokens: int, *, seed: int = 0, on_first_token: Callable[[], None] | None = None
    ) -> Timeline:
        """Send one request with a new prompt of ``prompt_tokens`` tokens and read its stream to the end;
        ``on_first_token`` is called when its first token arrives. ``seed`` is kept for callers' clarity;
        prompts are unique whatever it is."""
        del seed
        for attempt in range(2):
            self._unique += 1
            timeline = Timeline(sent_s=time.monotonic(), on_first_token=on_first_token)
            try:
                return await self._send(timeline, prompt_tokens, max_tokens, self._unique)
            except RequestFailed as failed:
                if attempt == 0 and failed.status == 0 and failed.before_answer:
                    continue  # the connection was gone before the server answered: once more, on a new one
                if self.ignore_eos and failed.status in (400, 422) and "ignore_eos" in str(failed):
                    self.ignore_eos = False
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, timeline: Timeline, prompt_tokens: int, max_tokens: int, unique: int) -> Timeline:
        if self._api == "jetstream-http":
            return await self._jetstream(timeline, prompt_tokens, max_tokens, unique)
        if self._api == "jetstream-grpc":
            return await self._grpc(timeline, prompt_tokens, max_tokens, unique)
        return await self._openai(timeline, prompt_tokens, max_tokens, unique)

    async def _jetstream(self, timeline: Timeline, prompt_tokens: int, max_tokens: int, seed: int) -> Timeline:
        ids = [3 + symbol for symbol in _sequence(seed, prompt_tokens, _ID_RANGE)]
        body = {"max_tokens": max_tokens, "token_content": {"token_ids": ids}}
        timeline.prompt_tokens = prompt_tokens
        try:
            async with self._session.post(f"{self._base}/v1/generate", json=body) as response:
                if response.status != 200:
                    raise RequestFailed(await _error_text(response), status=response.status)
                buffer, count = b"", 0
                async for chunk in response.content.iter_any():
                    now = time.monotonic() - timeline.sent_s
                    messages, buffer = _jetstream_messages(buffer + chunk)
                    added = sum(_jetstream_count(m) for m in messages)
                    if added:
                        count += added
                        timeline.add(now, float(count))
        except aiohttp.ClientError as error:
            raise RequestFailed(f"{type(error).__name__}: {error}", before_answer=not timeline.times_s) from None
        if not timeline.times_s:
            raise RequestFailed("the stream ended without a token")
        return timeline

    async def _grpc(self, timeline: Timeline, prompt_tokens: int, max_tokens: int, seed: int) -> Timeline:
        assert self._stub is not None, "jetstream-grpc needs a channel"
        ids = [3 + symbol for symbol in _sequence(seed, prompt_tokens, _ID_RANGE)]
        request = pb.DecodeRequest(max_tokens=max_tokens, token_content=pb.DecodeRequest.TokenContent(token_ids=ids))
        timeline.prompt_tokens = prompt_tokens
        count = 0
        try:
            async for message in self._stub.Decode(request):
                added = sum(len(sample.token_ids) for sample in message.stream_content.samples)
                if added:
                    count += added
                    timeline.add(time.monotonic() - timeline.sent_s, float(count))
        except grpc.aio.AioRpcError as error:
            unreachable = error.code() is grpc.StatusCode.UNAVAILABLE and count == 0
            raise RequestFailed(f"gRPC {error.code().name}: {error.details()}",
                                status=0 if unreachable else 1000 + error.code().value[0]) from None  # fmt: skip
        if not timeline.times_s:
            raise RequestFailed("the stream ended without a token")
        return timeline

    async def _openai(self, timeline: Timeline, prompt_tokens: int, max_tokens: int, seed: int) -> Timeline:
        prompt = " ".join(_WORDS[symbol] for symbol in _sequence(seed, prompt_tokens, len(_WORDS)))
        body: dict[str, object] = {
            "model": self.model or "default", "prompt": prompt, "max_tokens": max_tokens, "stream": True,
            "temperature": 0.0, "stream_options": {"include_usage": True},
        }  # fmt: skip
        if self.ignore_eos:
            body["ignore_eos"] = True
        completion: int | None = None
        try:
            async with self._session.post(f"{self._base}/v1/completions", json=body) as response:
                if response.status != 200:
                    raise RequestFailed(await _error_text(response), status=response.status)
                chunks = 0
                async for line in response.content:
                    if not line.startswith(b"data:"):
                        continue
                    try:
                        event = parse_sse_data(line[5:])
                    except ValueError as error:
                        raise RequestFailed(str(error)) from None
                    if event.done:
                        break
                    if event.completion_tokens is not None:
                        completion = event.completion_tokens
                        timeline.prompt_tokens = event.prompt_tokens
                    if event.text_chunks:
                        chunks += 1
                        timeline.add(time.monotonic() - timeline.sent_s, float(chunks))
        except aiohttp.ClientError as error:
            raise RequestFailed(f"{type(error).__name__}: {error}", before_answer=not timeline.times_s) from None
        if not timeline.times_s:
            raise RequestFailed("the stream ended without a token")
        if completion is not None and completion != len(timeline.tokens) and completion > 0:
            scale = completion / len(timeline.tokens)
            timeline.tokens = [t * scale for t in timeline.tokens]
        if timeline.prompt_tokens is None:
            timeline.prompt_tokens = prompt_tokens
        return timeline


async def _error_text(response: aiohttp.ClientResponse) -> str:
    text = (await response.text(errors="replace"))[:300]
    return f"HTTP {response.status}: {' '.join(text.split())}"
