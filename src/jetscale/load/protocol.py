"""The wire formats the load generator speaks, as pure functions: targets, request bodies, token counts.

- JetStream HTTP: ``POST /v1/generate`` with ``{"max_tokens": N, "text_content": {"text": ...}}``; the
  response streams one JSON ``DecodeResponse`` per token, concatenated with no framing, each holding
  ``streamContent.samples[0].tokenIds`` (JetStream's ``MessageToJson``: camelCase; snake_case accepted).
- JetStream gRPC: ``jetstream_proto.Orchestrator/Decode``, one streamed message per token (runner side).
- OpenAI-compatible: ``POST /v1/completions`` (``prompt``) or ``/v1/chat/completions`` (``messages``),
  streamed as server-sent events (``data: {...}`` ... ``data: [DONE]``) or as one JSON body. Token counts
  come from ``usage`` when the server sends it (we ask with ``stream_options.include_usage``), otherwise
  one token per streamed chunk that carries text. ``ignore_eos`` (vLLM's extension) makes the server
  produce exactly ``max_tokens``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from jetscale.errors import ConfigError

__all__ = [
    "Api",
    "SseEvent",
    "Target",
    "jetstream_body",
    "jetstream_tokens",
    "openai_body",
    "openai_json_tokens",
    "parse_sse_data",
    "parse_target",
]


class Api(StrEnum):
    JETSTREAM_HTTP = "jetstream-http"
    JETSTREAM_GRPC = "jetstream-grpc"
    OPENAI = "openai"  # /v1/completions
    OPENAI_CHAT = "openai-chat"  # /v1/chat/completions

    @property
    def path(self) -> str:
        return {
            Api.JETSTREAM_HTTP: "/v1/generate",
            Api.JETSTREAM_GRPC: "jetstream_proto.Orchestrator/Decode",
            Api.OPENAI: "/v1/completions",
            Api.OPENAI_CHAT: "/v1/chat/completions",
        }[self]


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where the load goes: ``http://host:port/base`` for HTTP APIs, ``host:port`` for gRPC."""

    scheme: str  # http, https or grpc
    host: str
    port: int
    base_path: str = ""  # prefix before the API's path (no trailing slash)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.scheme == "grpc":
            return f"{host}:{self.port}"
        return f"{self.scheme}://{host}:{self.port}{self.base_path}"


def parse_target(text: str, api: Api) -> Target:
    """``http://127.0.0.1:9000``, ``https://h/prefix``, ``grpc://127.0.0.1:9000`` or ``127.0.0.1:9000`` (gRPC)."""
    raw = text.strip()
    if "://" not in raw:
        raw = ("grpc://" if api is Api.JETSTREAM_GRPC else "http://") + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise ConfigError(f"'--target' must be a URL such as http://127.0.0.1:9000 (got {text!r})") from None
    scheme = parts.scheme.lower()
    if api is Api.JETSTREAM_GRPC and scheme not in ("grpc", "http"):
        raise ConfigError(f"'--target' for jetstream-grpc must be host:port or grpc://host:port (got {text!r})")
    if api is not Api.JETSTREAM_GRPC and scheme not in ("http", "https"):
        raise ConfigError(f"'--target' for {api.value} must be an http:// or https:// URL (got {text!r})")
    if not parts.hostname:
        raise ConfigError(f"'--target' must name a host (got {text!r})")
    if port is None:
        port = 443 if scheme == "https" else 80
        if api is Api.JETSTREAM_GRPC:
            raise ConfigError(f"'--target' for jetstream-grpc must include a port (got {text!r})")
    base = parts.path.rstrip("/")
    if api in (Api.OPENAI, Api.OPENAI_CHAT) and base.endswith("/v1"):
        base = base[: -len("/v1")]
    if api is Api.JETSTREAM_HTTP and base.endswith("/v1"):
        base = base[: -len("/v1")]
    return Target(
        scheme="grpc" if api is Api.JETSTREAM_GRPC else scheme,
        host=parts.hostname,
        port=port,
        base_path="" if api is Api.JETSTREAM_GRPC else base,
    )


def jetstream_body(prompt: str, max_tokens: int) -> bytes:
    return json.dumps({"max_tokens": max_tokens, "text_content": {"text": prompt}}).encode()


_TOKEN_IDS = re.compile(rb'"(?:tokenIds|token_ids)"\s*:\s*\[([^\]]*)\]')
_TEXT = re.compile(rb'"text"\s*:\s*"(?:[^"\\]|\\.)+"')


def jetstream_tokens(body: bytes) -> int:
    """Tokens in a JetStream ``/v1/generate`` response body: the token ids it lists, else its non-empty texts."""
    counted = False
    total = 0
    for ids in _TOKEN_IDS.findall(body):
        counted = True
        if ids.strip():
            total += ids.count(b",") + 1
    if counted:
        return total
    return len(_TEXT.findall(body))


def openai_body(api: Api, *, prompt: str, max_tokens: int, model: str, stream: bool, ignore_eos: bool) -> bytes:
    body: dict[str, object] = {"model": model, "max_tokens": max_tokens, "stream": stream, "temperature": 0.0}
    if api is Api.OPENAI_CHAT:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    if stream:
        body["stream_options"] = {"include_usage": True}
    if ignore_eos:
        body["ignore_eos"] = True
    return json.dumps(body).encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class SseEvent:
    """One server-sent event of an OpenAI stream."""

    done: bool = False  # ``data: [DONE]``
    text_chunks: int = 0  # 1 when this event carries generated text
    completion_tokens: int | None = None  # from ``usage``
    prompt_tokens: int | None = None


def _usage(obj: dict[str, object]) -> tuple[int | None, int | None]:
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        return None, None
    done, prompt = usage.get("completion_tokens"), usage.get("prompt_tokens")
    return (done if isinstance(done, int) else None, prompt if isinstance(prompt, int) else None)


def parse_sse_data(data: bytes) -> SseEvent:
    """The payload after ``data:`` of one event. Raises ``ValueError`` for a payload that is not JSON."""
    payload = data.strip()
    if payload == b"[DONE]":
        return SseEvent(done=True)
    obj = json.loads(payload)
    if not isinstance(obj, dict):
        raise ValueError("an OpenAI stream event must be a JSON object")
    if "error" in obj:
        raise ValueError(f"the server sent an error event: {obj['error']}")
    text = False
    choices = obj.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        delta = choice.get("delta")
        piece = delta.get("content") if isinstance(delta, dict) else choice.get("text")
        text = isinstance(piece, str) and piece != ""
    completion, prompt = _usage(obj)
    return SseEvent(text_chunks=int(text), completion_tokens=completion, prompt_tokens=prompt)


def openai_json_tokens(body: bytes) -> tuple[int, int | None]:
    """(completion tokens, prompt tokens or None) of a non-streamed OpenAI response."""
    obj = json.loads(body)
    if not isinstance(obj, dict) or "choices" not in obj:
        raise ValueError("an OpenAI response must be a JSON object with 'choices'")
    completion, prompt = _usage(obj)
    if completion is None:  # no usage: count the text the cheap way (4 characters per token)
        choice = obj["choices"][0] if obj["choices"] else {}
        message = choice.get("message") if isinstance(choice, dict) else None
        text = message.get("content") if isinstance(message, dict) else choice.get("text", "")
        completion = max(1, round(len(text or "") / 4)) if text else 0
    return completion, prompt
