"""HTTP plumbing shared by the JetStream and OpenAI routes: JSON errors, body limits, admission answers.

Every error is JSON of one shape, readable by OpenAI clients and by people::

    {"error": {"message": "'max_tokens' must be >= 1 (got 0)", "type": "invalid_request_error",
               "param": "max_tokens", "field": "max_tokens", "value": 0, "code": null}}
"""

from __future__ import annotations

import json

from aiohttp import web

from jetscale.server.protocol import RequestError, parse_json_body
from jetscale.server.runtime import Rejection

__all__ = ["dumps", "error_response", "read_json", "rejection_response", "request_error_response"]


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
    return parse_json_body(raw)
