"""What no client can do to the HTTP front end: get a 405 without ``Allow``, a 500, or a traceback in the log.

Malformed requests go over raw sockets on 127.0.0.1, since no HTTP client will send them."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import struct
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.http_exceptions import BadHttpMessage
from conftest import ServerFactory

from jetscale.server.httpcommon import ProtocolErrorLog

LOGGER = "aiohttp.server"


@dataclass(frozen=True)
class Wrong:
    id: str
    method: str
    path: str
    allow: str


WRONG_METHODS = [
    Wrong("GET a POST route", "GET", "/v1/generate", "POST"),
    Wrong("PUT an OpenAI route", "PUT", "/v1/chat/completions", "POST"),
    Wrong("HEAD a POST route", "HEAD", "/generate", "POST"),
    Wrong("DELETE a GET route", "DELETE", "/v1/health", "GET,HEAD"),
    Wrong("POST to /metrics", "POST", "/metrics", "GET,HEAD"),
    Wrong("PATCH the OpenAPI document", "PATCH", "/openapi.json", "GET,HEAD"),
]


@pytest.mark.parametrize("case", WRONG_METHODS, ids=lambda c: c.id)
async def test_a_wrong_method_is_405_naming_the_allowed_ones(make_server: ServerFactory, case: Wrong) -> None:
    server = await make_server()
    url = f"http://127.0.0.1:{server.http_port}{case.path}"
    async with aiohttp.ClientSession() as http, http.request(case.method, url) as resp:
        body = await resp.read()
    assert resp.status == 405
    assert resp.headers["Allow"] == case.allow
    if case.method != "HEAD":
        error = json.loads(body)["error"]
        assert error["message"] == "Method Not Allowed"
        assert (error["type"], error["field"], error["value"]) == ("invalid_request_error", "path", case.path)


@dataclass(frozen=True)
class Raw:
    id: str
    data: bytes
    status: bytes = b"400"
    logged: bool = True  # aiohttp writes one line about it


HOST = b"Host: 127.0.0.1\r\n"
POST = b"POST /v1/generate HTTP/1.1\r\n" + HOST
GZIP = POST + b"Content-Encoding: gzip\r\nConnection: close\r\n"
GZIP_BOMB = gzip.compress(b" " * 2_000_000)  # 2 MB of spaces in about 2 KB: over the 1 MiB body limit
MALFORMED = [
    Raw("header value of 100 KB", b"GET / HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 100_000 + b"\r\n\r\n"),
    Raw("request line of 100 KB", b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n" + HOST + b"\r\n"),
    Raw("header line without a colon", b"GET / HTTP/1.1\r\n" + HOST + b"NoColonHere\r\n\r\n"),
    Raw("200 headers", b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n"),
    Raw("control bytes in a header", b"GET / HTTP/1.1\r\n" + HOST + b"X: \x01\x02\r\n\r\n"),
    Raw("bad request line", b"GARBAGE\r\n\r\n"),
    Raw("unknown HTTP version", b"GET / HTTP/9.9\r\n" + HOST + b"\r\n"),
    Raw("NUL in the path", b"GET /\x00 HTTP/1.1\r\n" + HOST + b"\r\n"),
    Raw("TLS on the HTTP port", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64),
    Raw("two Content-Lengths", POST + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
    Raw("Content-Length overflow", POST + b"Content-Length: " + b"9" * 30 + b"\r\n\r\n"),
    Raw("bad chunk size", POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
    # read by the route: a JSON error, and aiohttp's one line when it drains the rest of the body
    Raw("gzip body that does not decode", GZIP + b"Content-Length: 10\r\n\r\n0123456789"),
    Raw("gzip body over the limit once decoded", GZIP + b"Content-Length: %d\r\n\r\n" % len(GZIP_BOMB) + GZIP_BOMB,
        status=b"413", logged=False),
]  # fmt: skip


async def _exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, read the answer until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


@pytest.mark.parametrize("case", MALFORMED, ids=lambda c: c.id)
async def test_a_malformed_request_is_refused_with_one_log_line_and_no_traceback(
    make_server: ServerFactory, case: Raw, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server(grpc_port=None)
    caplog.set_level(logging.DEBUG)
    assert server.http_port is not None
    answer = await _exchange(server.http_port, case.data)
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.split(b" ")[1] == case.status, status_line
    assert b"Traceback" not in answer
    for record in caplog.records:
        assert record.exc_info is None and record.exc_text is None, record.getMessage()
        assert "Traceback" not in record.getMessage() and "\n" not in record.getMessage()
    assert "Traceback" not in caplog.text
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    if case.logged:
        assert len(lines) == 1 and lines[0].startswith("malformed request: "), lines
    else:
        assert lines == []


def test_the_log_keeps_the_traceback_of_anything_but_a_client_error(caplog: pytest.LogCaptureFixture) -> None:
    log = ProtocolErrorLog(logging.getLogger(LOGGER))
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    log.exception("Unhandled exception", exc_info=RuntimeError("a bug"))
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None


def test_the_log_line_names_the_error_without_control_characters(caplog: pytest.LogCaptureFixture) -> None:
    log = ProtocolErrorLog(logging.getLogger(LOGGER))
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    log.exception("Error handling request from %s", "10.0.0.1", exc_info=BadHttpMessage("bad\x1b[31m\n\n  ^\nline"))
    (record,) = caplog.records
    assert record.levelno == logging.INFO and record.exc_info is None
    assert record.getMessage() == (
        "malformed request: bad\\x1b[31m line (aiohttp: Error handling request from 10.0.0.1)"
    )


async def test_clients_that_hang_up_before_the_stream_starts_leave_no_traceback(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """200 streamed requests whose clients reset the connection as soon as they have sent it: the
    handler meets a closed transport when it writes the stream's headers. No traceback, nothing held."""
    import socket

    server = await make_server(speed=1.0)
    caplog.set_level(logging.DEBUG)
    body = b'{"max_tokens": 16, "text_content": {"text": "tell me about the sea"}}'
    request = (f"POST /v1/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip

    def hang_up() -> None:
        with socket.create_connection(("127.0.0.1", server.http_port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
            sock.sendall(request)

    for _ in range(200):
        await asyncio.to_thread(hang_up)
    for _ in range(200):
        if server.runtime.in_flight == 0:
            break
        await asyncio.sleep(0.05)
    assert server.runtime.in_flight == 0
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]
    assert "Traceback" not in caplog.text
