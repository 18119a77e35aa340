"""The load generator sends the model the server lists at ``/v1/models`` when ``--model`` is not given, as
OpenAI clients do: a vLLM server refuses any other name with 404."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from jetscale.load.runner import FALLBACK_MODEL, served_model


class _Handler(BaseHTTPRequestHandler):
    answers: ClassVar[list[tuple[int, object]]] = []

    def do_GET(self) -> None:
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"answers": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_first_listed_model_is_sent(server: tuple[str, type[_Handler]]) -> None:
    url, handler = server
    handler.answers = [(200, {"object": "list", "data": [{"id": "llama3.1-8b"}, {"id": "other"}]})]
    assert served_model(url) == "llama3.1-8b"


def test_a_server_that_is_not_ready_is_asked_again(server: tuple[str, type[_Handler]]) -> None:
    url, handler = server
    handler.answers = [(503, {}), (503, {}), (200, {"data": [{"id": "m"}]})]
    assert served_model(url, wait_s=0.01) == "m"


@pytest.mark.parametrize("answer", [(404, {"detail": "no"}), (200, {"data": []}), (200, ["not", "a", "dict"])])
def test_no_listed_model_falls_back(server: tuple[str, type[_Handler]], answer: tuple[int, object]) -> None:
    url, handler = server
    handler.answers = [answer]
    assert served_model(url, attempts=2, wait_s=0.01) == FALLBACK_MODEL


def test_nothing_listening_falls_back() -> None:
    assert served_model("http://127.0.0.1:9", attempts=2, wait_s=0.01) == FALLBACK_MODEL
