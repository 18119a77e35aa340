"""The OpenAPI document: valid, one operation per route, every field the parsers accept, and a live server
that answers schemathesis' generated requests as documented (never 5xx)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from conftest import server_config
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from server_fakes import FakeEngine

from jetscale.server import ModelServer, ServerConfig
from jetscale.server import protocol as proto
from jetscale.server.http import create_http_app
from jetscale.server.openapi import openapi_document

CONFIG = server_config(grpc_port=None)
DOCUMENT = openapi_document(CONFIG)
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
# every answer: no 5xx, a documented status, content type, headers and body; for a request that breaks the
# schema also a 4xx (no positive_data_acceptance: a valid request may still be refused for what a schema
# cannot say, such as a prompt over the token limit or both text_content and token_content)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]  # fmt: skip
MAX_EXAMPLES = 25  # per operation and generation mode


class _ServerThread:
    """A ``ModelServer`` on its own event loop in a thread, so that blocking clients can call it."""

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="openapi-server")
        self.url = ""

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with ModelServer(FakeEngine(), self._config) as server:
            self.url = f"http://127.0.0.1:{server.http_port}"
            self._started.set()
            await self._stop.wait()

    def __enter__(self) -> str:
        self._thread.start()
        assert self._started.wait(10), "the server did not start"
        return self.url

    def __exit__(self, *_: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with _ServerThread(CONFIG) as url:
        yield url


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.trust_env = False  # straight to 127.0.0.1, whatever proxy the environment names
        yield http


def _documented_operations() -> set[tuple[str, str]]:
    paths: dict[str, dict[str, Any]] = DOCUMENT["paths"]  # type: ignore[assignment]
    return {(method.upper(), path) for path, item in paths.items() for method in item}


async def test_every_route_is_documented_and_every_operation_is_a_route() -> None:
    app = create_http_app(ModelServer(FakeEngine(), CONFIG))
    routes = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    gets = {path for method, path in routes if method == "GET"}
    assert {path for method, path in routes if method == "HEAD"} == gets  # aiohttp's HEAD for every GET
    assert {route for route in routes if route[0] != "HEAD"} == _documented_operations()


def test_schemathesis_loads_the_document_as_valid_openapi() -> None:
    SCHEMA.validate()  # against the OpenAPI 3.0 meta-schema
    operations = [result.ok() for result in SCHEMA.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in operations} == _documented_operations()
    assert DOCUMENT["openapi"] == "3.0.3"


def _properties(name: str) -> set[str]:
    schemas: dict[str, Any] = DOCUMENT["components"]["schemas"]  # type: ignore[index]
    return set(schemas[name]["properties"])


@pytest.mark.parametrize(
    ("schema", "accepted"),
    [
        ("DecodeRequest", proto._GENERATE_FIELDS),
        ("CompletionRequest", proto._COMPLETION_FIELDS),
        ("ChatCompletionRequest", proto._CHAT_FIELDS),
        ("SidecarRequest", {"prompt", "max_tokens", "stream", "priority", *proto._SIDECAR_STRINGS}),
    ],
)
def test_the_document_names_exactly_the_fields_the_parsers_accept(schema: str, accepted: frozenset[str]) -> None:
    assert _properties(schema) == set(accepted)


def test_the_server_serves_the_document(base_url: str, session: requests.Session) -> None:
    response = session.get(f"{base_url}/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == DOCUMENT


def test_a_method_the_document_does_not_list_is_405_with_allow(base_url: str, session: requests.Session) -> None:
    paths: dict[str, dict[str, Any]] = DOCUMENT["paths"]  # type: ignore[assignment]
    for path, item in paths.items():
        allowed = {method.upper() for method in item} | ({"HEAD"} if "get" in item else set())
        response = session.request("DELETE", f"{base_url}{path}", timeout=10)
        assert (response.status_code, response.headers.get("Allow")) == (405, ",".join(sorted(allowed))), path


def _fuzz(base_url: str, session: requests.Session, operation: Any, mode: GenerationMode, seen: Counter[str]) -> None:
    headers = {"Accept": "application/json"} if operation.path == "/v1/generate" else None

    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=10)
        seen[f"{response.status_code // 100}xx"] += 1
        seen["examples"] += 1
        checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS
        if operation.path == "/generate" and isinstance(case.body, dict) and case.body.get("stream") is True:
            # the sidecar's stream is JSON objects one per line under application/json: not one JSON document
            checks = [c for c in checks if c is not response_schema_conformance]
        case.validate_response(response, checks=checks)

    run()


def test_a_live_server_answers_generated_requests_as_documented(base_url: str, session: requests.Session) -> None:
    seen: Counter[str] = Counter()
    operations = [result.ok() for result in SCHEMA.get_all_operations()]
    for operation in operations:
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if operation.body else [GenerationMode.POSITIVE]
        for mode in modes:
            _fuzz(base_url, session, operation, mode, seen)  # raises on the first failed check
    assert seen["5xx"] == 0, seen
    assert seen["2xx"] > len(operations) and seen["4xx"] > 0, seen  # both valid and refused requests were sent
