"""Fixtures for the server tests: a fake engine behind a real server on 127.0.0.1 (ephemeral ports)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from server_fakes import FakeEngine

from jetscale.engine.api import Engine
from jetscale.engine.factory import make_engine
from jetscale.engine.presets import resolve_preset
from jetscale.engine.replica import ReplicaEngine
from jetscale.server import ModelServer, ServerConfig


class ManualClock:
    """A clock that moves only when a test calls ``advance``; sleepers wake when their time comes."""

    def __init__(self) -> None:
        self.t = 0.0
        self._moved = asyncio.Event()

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        target = self.t + seconds
        while self.t < target:
            moved = self._moved
            await moved.wait()

    async def advance(self, seconds: float) -> None:
        """Let every task that can run, run; move time forward; and again."""
        await settle()
        self.t += seconds
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
        await settle()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


ServerFactory = Callable[..., Awaitable[ModelServer]]


def server_config(**overrides: object) -> ServerConfig:
    fields: dict[str, object] = {
        "server_id": "replica-0",
        "model_name": "fake-llm",
        "http_port": 0,
        "grpc_port": 0,
        "speed": 100.0,
        "max_prefill_length": 64,
        "max_output_tokens": 32,
    }
    fields.update(overrides)
    return ServerConfig(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    started: list[ModelServer] = []

    async def factory(
        engine: Engine | None = None, *, clock: ManualClock | None = None, **overrides: object
    ) -> ModelServer:
        server = ModelServer(engine or FakeEngine(), server_config(**overrides), clock=clock)
        await server.start()
        started.append(server)
        return server

    yield factory
    for server in started:
        await server.stop()


def real_engine(**overrides: object) -> tuple[ReplicaEngine, dict[str, object]]:
    """The real replica engine (v5e-8/llama2-7b, no model load) and the server limits that go with it."""
    replica = resolve_preset("v5e-8/llama2-7b", model_load_s=0.0, **overrides)
    limits: dict[str, object] = {
        "max_prefill_length": replica.max_prefill_length,
        "max_output_tokens": replica.max_target_length - replica.max_prefill_length,
        "model_name": replica.model.name,
    }
    return ReplicaEngine(replica), limits


@pytest.fixture(params=["fake", "real"])
async def any_server(request: pytest.FixtureRequest, make_server: ServerFactory) -> ModelServer:
    """A ready server on the fake engine, then on the real one (speed 100)."""
    if request.param == "fake":
        return await make_server(FakeEngine())
    engine, limits = real_engine()
    return await make_server(engine, **limits)


VLLM_PRESET = "h100/llama3-8b"


def real_vllm_engine(**overrides: object) -> tuple[Engine, dict[str, object]]:
    """vLLM's scheduler (``make_engine`` on h100/llama3-8b with stack vllm, no model load) and the settings
    of a vLLM-kind server in front of it (no gRPC, max_model_len = max_target_length)."""
    replica = resolve_preset(VLLM_PRESET, stack="vllm", model_load_s=0.0, **overrides)
    settings: dict[str, object] = {
        "kind": "vllm",
        "grpc_port": None,
        "model_name": replica.model.name,
        "max_prefill_length": replica.max_prefill_length,
        "max_output_tokens": replica.max_target_length - replica.max_prefill_length,
        "max_model_len": replica.max_target_length,
    }
    return make_engine(replica), settings


@pytest.fixture(params=["fake", "real"])
async def vllm_server(request: pytest.FixtureRequest, make_server: ServerFactory) -> ModelServer:
    """A ready vLLM-kind server: on the fake engine (max_model_len 96), then on vLLM's scheduler (speed 100)."""
    if request.param == "fake":
        return await make_server(FakeEngine(), kind="vllm", grpc_port=None)
    engine, settings = real_vllm_engine()
    return await make_server(engine, **settings)
