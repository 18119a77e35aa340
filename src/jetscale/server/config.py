"""What one ``jetscale serve`` process is: addresses, time compression, and the request limits it enforces.

The engine's own shape (chips, model, slots, timing) is the engine's ``ReplicaConfig``; this config holds
only what the shell around it needs, validated once here so the rest of the server can trust it.

Two things the fleet's router shares with the replicas are here too: ``MAX_BODY_BYTES``, the largest
request body a replica reads (the router refuses above the same limit, so a body it forwards is one a
replica takes), and ``ListenError``, raised by a server or the router that cannot listen where it was
told, naming the field at fault (``host`` or ``port``) so that a command can name its flag.
"""

from __future__ import annotations

import errno
import math
import os
import socket
from dataclasses import dataclass

from jetscale.engine.config import ServerKind
from jetscale.errors import ConfigError, ServingError

__all__ = ["MAX_BODY_BYTES", "ListenError", "ServerConfig", "listen_error"]

MAX_BODY_BYTES = 1 << 20  # 1 MiB: a prompt of max_prefill_length tokens, as text or ids, is a few KiB
_HOST_ERRNOS = frozenset({errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT})  # no such local address


def _require(ok: bool, field: str, constraint: str, value: object) -> None:
    if not ok:
        raise ConfigError(f"'{field}' must be {constraint} (got {value!r})")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """One replica server. Times are wall seconds unless the name says engine seconds (``_engine_s``).

    ``speed`` compresses time: engine time = wall seconds since start x speed, so at speed 10 a
    10-second model load takes one wall second and a server reports ten times the real request rate.

    ``kind`` picks the front ends and metric names: JetStream's (HTTP, gRPC, OpenAI, JetStream metrics) or
    vLLM's (its OpenAI-compatible server and ``vllm:`` metrics, no gRPC). For vLLM, ``max_model_len`` is
    the context limit (prompt + output tokens, vLLM's ``--max-model-len``); the prompt and output limits
    are vLLM's, derived from it (see vllm_protocol.py).
    """

    server_id: str
    model_name: str
    kind: ServerKind = ServerKind.JETSTREAM
    host: str = "127.0.0.1"
    http_port: int = 9000  # 0 picks a free port
    grpc_port: int | None = 9001  # None: no gRPC server
    speed: float = 1.0
    seed: int = 0
    model_load_engine_s: float = 0.0
    max_prefill_length: int = 1024  # longest prompt, tokens
    max_output_tokens: int = 1024  # largest max_tokens (max_target_length - max_prefill_length)
    default_completion_tokens: int = 16  # OpenAI's default max_tokens for /v1/completions
    grace_period_s: float = 30.0  # SIGTERM: how long in-flight requests may take to finish
    stream_interval_s: float = 0.02  # streaming clients get new tokens at most this often
    max_body_bytes: int = MAX_BODY_BYTES
    max_model_len: int = 0  # prompt + output tokens; 0: max_prefill_length + max_output_tokens

    def __post_init__(self) -> None:
        if not isinstance(self.kind, ServerKind):
            kinds = ", ".join(k.value for k in ServerKind)
            _require(self.kind in tuple(ServerKind), "kind", f"one of {kinds}", self.kind)
            object.__setattr__(self, "kind", ServerKind(str(self.kind)))
        if self.max_model_len == 0:
            object.__setattr__(self, "max_model_len", self.max_prefill_length + self.max_output_tokens)
        _require(self.max_model_len >= 2, "max_model_len", ">= 2 (a prompt token and an output token)",
                 self.max_model_len)  # fmt: skip
        if self.kind is ServerKind.VLLM:
            _require(self.grpc_port is None, "grpc_port", "None with kind vllm (vLLM serves no gRPC)", self.grpc_port)
        _require(bool(self.server_id), "server_id", "a non-empty string", self.server_id)
        _require(bool(self.model_name), "model_name", "a non-empty string", self.model_name)
        _require(bool(self.host), "host", "a non-empty host name or address", self.host)
        _require(0 <= self.http_port <= 65535, "port", "in 0..65535", self.http_port)
        if self.grpc_port is not None:
            _require(0 <= self.grpc_port <= 65535, "grpc_port", "in 0..65535", self.grpc_port)
            _require(
                self.grpc_port == 0 or self.grpc_port != self.http_port,
                "grpc_port",
                f"different from port {self.http_port}",
                self.grpc_port,
            )
        _require(math.isfinite(self.speed) and self.speed > 0, "speed", "> 0", self.speed)
        _require(
            math.isfinite(self.model_load_engine_s) and self.model_load_engine_s >= 0,
            "model_load_s",
            ">= 0",
            self.model_load_engine_s,
        )
        _require(self.max_prefill_length >= 1, "max_prefill_length", ">= 1", self.max_prefill_length)
        _require(self.max_output_tokens >= 1, "max_output_tokens", ">= 1", self.max_output_tokens)
        _require(
            self.default_completion_tokens >= 1,
            "default_completion_tokens",
            ">= 1",
            self.default_completion_tokens,
        )
        _require(
            math.isfinite(self.grace_period_s) and self.grace_period_s >= 0,
            "grace_period_s",
            "a finite number >= 0",
            self.grace_period_s,
        )
        _require(self.stream_interval_s > 0, "stream_interval_s", "> 0", self.stream_interval_s)
        _require(self.max_body_bytes >= 1024, "max_body_bytes", ">= 1024", self.max_body_bytes)


class ListenError(ServingError):
    """A server could not listen on ``host``:``port``. ``field`` is the one at fault: ``host`` (not an
    address of this machine, or not a host name at all) or ``port`` (taken, or not allowed to this
    process); ``reason`` is the system's word for it."""

    def __init__(self, *, host: str, port: int, field: str, reason: str, what: str = "") -> None:
        self.host = host
        self.port = port
        self.field = field
        self.reason = reason
        super().__init__(f"cannot listen{what} on {host}:{port}: {reason}")

    def flag_error(self, flag: str) -> ConfigError:
        """The same failure as a bad flag: ``'<flag>' must be ... (got <value>: <reason>)``."""
        if self.field == "host":
            return ConfigError(f"'{flag}' must be an address this machine can listen on (got {self.host!r}: "
                               f"{self.reason})")  # fmt: skip
        return ConfigError(f"'{flag}' must be a port free to listen on at {self.host} (got {self.port}: {self.reason})")


def listen_error(exc: BaseException, *, host: str, port: int, what: str = "") -> ListenError:
    """The ``ListenError`` of a failed bind: ``exc`` is what the socket layer raised (an ``OSError``, or
    the ``UnicodeError`` of a host name that cannot even be encoded)."""
    if isinstance(exc, UnicodeError):
        return ListenError(host=host, port=port, field="host", reason="not a valid host name", what=what)
    if isinstance(exc, socket.gaierror):
        return ListenError(host=host, port=port, field="host", reason=str(exc.strerror or exc).lower(), what=what)
    code = exc.errno if isinstance(exc, OSError) else None
    reason = os.strerror(code).lower() if code else str(exc)
    field = "host" if code in _HOST_ERRNOS else "port"
    return ListenError(host=host, port=port, field=field, reason=reason, what=what)
