"""HTTP plumbing shared by the JetStream and OpenAI routes: JSON errors, body limits, admission answers,
and the log of requests too malformed to reach a route.

Every error a route answers is JSON of one shape, readable by OpenAI clients and by people::

    {"error": {"message": "'max_tokens' must be >= 1 (got 0)", "type": "invalid_request_error",
               "param": "max_tokens", "field": "max_tokens", "value": 0, "code": null}}

A request aiohttp cannot parse (a bad request line, a header line without a colon, a line over 8,190
bytes, too many headers, broken chunked framing) never reaches a route: aiohttp answers 400 in plain text
and closes the connection. ``ProtocolErrorLog`` turns the traceback aiohttp logs for each of them into one
line.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from jetscale.server.protocol import RequestError, parse_json_body
from jetscale.server.runtime import Rejection, ServingRuntime, State

__all__ = [
    "ProtocolErrorLog",
    "dumps",
    "error_response",
    "live_response",
    "read_json",
    "ready_response",
    "rejection_response",
    "request_error_response",
]

_MAX_DETAIL_CHARS = 200


def live_response(runtime: ServingRuntime) -> web.Response:
    """``/healthz/live``: 200 unless the server failed or stopped (both kinds serve it; the fleet probes it)."""
    state = runtime.state
    ok = state not in (State.FAILED, State.STOPPED)
    return web.json_response({"live": ok, "state": str(state)}, status=200 if ok else 503)


def ready_response(runtime: ServingRuntime) -> web.Response:
    """``/healthz/ready``: 200 while the server takes requests, with its state and the requests in flight."""
    state = runtime.state
    body = {"ready": state is State.READY, "state": str(state), "in_flight": runtime.in_flight}
    return web.json_response(body, status=200 if state is State.READY else 503)


def dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def error_response(
    status: int,
    message: str,
    *,
    kind: str,
    field: str | None = None,
    value: object = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error = {"message": message, "type": kind, "param": field, "field": field, "value": value, "code": None}
    return web.json_response({"error": error}, status=status, headers=headers, dumps=dumps)


def request_error_response(exc: RequestError) -> web.Response:
    return error_response(exc.status, str(exc), kind="invalid_request_error", field=exc.field, value=exc.value)


def rejection_response(rejection: Rejection) -> web.Response:
    headers = {"Retry-After": str(rejection.retry_after_s)}
    if rejection.overloaded:
        return error_response(429, "the prefill backlog is full; retry later", kind="overloaded_error", headers=headers)
    return error_response(
        503, f"the server is not ready ({rejection.state})", kind="unavailable_error", headers=headers
    )


async def read_json(request: web.Request, max_body_bytes: int) -> dict[str, object]:
    """The body as a JSON object; ``RequestError`` (400/413/422) otherwise."""
    length = request.content_length
    if length is not None and length > max_body_bytes:
        raise RequestError(field="body", value=f"{length} bytes", constraint=f"at most {max_body_bytes} bytes",
                           status=413)  # fmt: skip
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise RequestError(field="body", value="more bytes", constraint=f"at most {max_body_bytes} bytes",
                           status=413) from None  # fmt: skip
    except web.RequestPayloadError as exc:  # chunked framing or Content-Encoding that does not decode
        constraint = "readable: well-formed chunked framing and Content-Encoding"
        raise RequestError(field="body", value=_client_error_text(exc), constraint=constraint, status=400) from None
    return parse_json_body(raw)


def _client_error_text(exc: BaseException) -> str:
    """What a client got wrong, on one line: aiohttp's messages span lines (a caret under the bad byte)."""
    cause = exc.__cause__ if isinstance(exc.__cause__, HttpProcessingError) else exc
    text = cause.message if isinstance(cause, HttpProcessingError) else str(cause)
    text = " ".join(word for word in str(text).split() if word.strip("^"))
    text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)  # no terminal escapes in a log
    return text if len(text) <= _MAX_DETAIL_CHARS else text[: _MAX_DETAIL_CHARS - 3] + "..."


def _logged_exception(exc_info: object) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        return exc_info[1] if isinstance(exc_info[1], BaseException) else None
    return sys.exc_info()[1] if exc_info is True else None


class ProtocolErrorLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server log, with a client's malformed HTTP told in one line instead of a traceback.

    aiohttp logs every request it cannot parse with ``logger.exception``: a traceback per request, which
    a port scanner or one broken client turns into a flood. Given to aiohttp's request handler as its
    ``logger`` (``web.AppRunner(logger=...)``), this writes those as one INFO line (DEBUG where aiohttp
    chose DEBUG: non-HTTP bytes on a fresh connection) naming what the client got wrong. Anything else, a
    bug in the server, keeps its traceback.
    """

    def log(self, level: int, msg: object, *args: object, exc_info: Any = None, **kwargs: Any) -> None:
        exc = _logged_exception(exc_info)
        if not isinstance(exc, HttpProcessingError | web.RequestPayloadError):
            super().log(level, msg, *args, exc_info=exc_info, **kwargs)
            return
        where = str(msg) % args if args else str(msg)
        super().log(min(level, logging.INFO), "malformed request: %s (aiohttp: %s)", _client_error_text(exc), where,
                    **kwargs)  # fmt: skip
