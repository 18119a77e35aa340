"""Clients nobody here wrote, against a server on 127.0.0.1, each bounded to a few dozen requests.

* the ``openai`` client, streaming with vLLM's ``continuous_usage_stats`` through ``extra_body``;
* guidellm 0.8 (its CLI, unmodified: it checks ``GET /health``, sends vLLM's stream options), offline,
  with the server's own tokenizer as a local Hugging Face tokenizer (``huggingface_files``);
* JetStream's ``benchmarks/benchmark_serving.py`` over gRPC, as our own harness sending what it sends
  (AI-Hypercomputer/JetStream HEAD: a channel per request with ``grpc.keepalive_timeout_ms`` 10000,
  ``DecodeRequest{token_content, max_tokens, metadata.start_time}``, client-side tokenization; TTFT at
  the first message, TTST at the second, TPOT = latency / output tokens; it reads
  ``stream_content.samples[0].token_ids``), plus the older script's ``session_cache`` and ``priority``
  (fields 1 and 3, since reserved), which the server must skip as unknown fields;
* ai-on-gke's locust-load-inference HTTP user for ``--backend jetstream`` (``POST /generate`` with
  ``{"prompt", "max_tokens"}``, headers ``User-Agent: Benchmark Client`` and ``Connection: close``; it
  reads ``response``), and the latency profile generator's variant (adds ``temperature``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

import aiohttp
import grpc
import openai
import pytest
from conftest import ServerFactory, real_engine

from jetscale.server import ModelServer, Tokenizer
from jetscale.server.proto import jetstream_pb2 as pb
from jetscale.server.tokenizer import huggingface_files

TOKENIZER = Tokenizer()
GUIDELLM = Path(sys.executable).with_name("guidellm")


async def real_server(make_server: ServerFactory, **overrides: object) -> ModelServer:
    engine, limits = real_engine()
    return await make_server(engine, **{**limits, **overrides})


async def test_openai_client_streams_with_continuous_usage(make_server: ServerFactory) -> None:
    server = await real_server(make_server)
    async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="unused",
                                  max_retries=0) as client:  # fmt: skip
        for _ in range(4):
            stream = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "Tell me a story."}], max_tokens=12, stream=True,
                stream_options={"include_usage": True},
                extra_body={"stream_options": {"include_usage": True, "continuous_usage_stats": True},
                            "ignore_eos": True, "min_tokens": 12},
            )  # fmt: skip
            chunks = [chunk async for chunk in stream]
            assert all(c.usage is not None for c in chunks)
            completion = [c.usage.completion_tokens for c in chunks if c.usage is not None]
            assert completion == sorted(completion) and completion[0] == 0 and completion[-1] == 12
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert len(TOKENIZER.encode(text)) == 12


async def test_guidellm_benchmarks_the_server_unmodified_and_offline(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    server = await real_server(make_server, speed=50.0)
    tokenizer_dir = tmp_path / "tokenizer"
    tokenizer_dir.mkdir()
    for name, text in huggingface_files().items():
        (tokenizer_dir / name).write_text(text)
    out = tmp_path / "benchmarks.json"
    requests, prompt_tokens, output_tokens = 24, 32, 16
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf")}  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        str(GUIDELLM), "run",
        "--backend", f"kind=openai_http,target=http://127.0.0.1:{server.http_port}",
        "--profile", "kind=concurrent,streams=4",
        "--constraint", f"kind=max_requests,count={requests}",
        "--constraint", "kind=max_duration,seconds=60",
        "--tokenizer", f"kind=huggingface_auto,model={tokenizer_dir}",
        "--data", f"kind=synthetic_text,prompt_tokens={prompt_tokens},output_tokens={output_tokens}",
        "--output", f"kind=json,path={out}",
        "--disable-console-interactive",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        log, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, log.decode(errors="replace")[-3000:]
    (benchmark,) = json.loads(out.read_text())["benchmarks"]
    totals = benchmark["metrics"]["request_totals"]
    assert (totals["successful"], totals["errored"], totals["incomplete"]) == (requests, 0, 0), totals
    chat_template_tokens = 4  # "user", ":", "assistant", ":" around the prompt (see parse_chat_completion)
    for done in benchmark["requests"]["successful"]:
        assert (done["prompt_tokens"], done["output_tokens"]) == (prompt_tokens + chat_template_tokens, output_tokens)
        assert len(TOKENIZER.encode(done["output"])) == output_tokens
        assert done["time_to_first_token_ms"] > 0
    assert server.runtime.in_flight == 0


def _older_fields(session_cache: str, priority: int) -> bytes:
    """Fields 1 (string session_cache) and 3 (int32 priority) of the older DecodeRequest, wire-encoded."""
    cache = session_cache.encode()
    return bytes([0x0A, len(cache)]) + cache + bytes([0x18, priority])


async def test_jetstream_benchmark_serving_requests_over_grpc(make_server: ServerFactory) -> None:
    server = await real_server(make_server, speed=20.0)
    rng = random.Random(3)
    prompts = [" ".join(rng.choice(["why", "is", "the", "sky", "blue", "?"]) for _ in range(rng.randint(4, 40)))
               for _ in range(24)]  # fmt: skip
    outcomes: list[tuple[bool, int, int, float, float, float]] = []

    async def one(k: int, prompt: str) -> None:
        token_ids = TOKENIZER.encode(prompt)
        output_len = rng.randint(4, 40)
        request = pb.DecodeRequest(
            token_content=pb.DecodeRequest.TokenContent(token_ids=token_ids), max_tokens=output_len,
            metadata=pb.DecodeRequest.Metadata(start_time=time.perf_counter()),
        )  # fmt: skip
        raw = request.SerializeToString() + (_older_fields("", 0) if k % 2 else _older_fields("cache", 1))
        options = [("grpc.keepalive_timeout_ms", 10000)]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}", options=options) as channel:
            decode = channel.unary_stream("/jetstream_proto.Orchestrator/Decode",
                                          response_deserializer=pb.DecodeResponse.FromString)  # fmt: skip
            start = time.perf_counter()
            tokens: list[int] = []
            ttft = ttst = 0.0
            count = 0
            async for resp in decode(raw):
                count += 1
                if count == 1:
                    ttft = time.perf_counter() - start
                elif count == 2:
                    ttst = time.perf_counter() - start
                tokens.extend(resp.stream_content.samples[0].token_ids)
            latency = time.perf_counter() - start
        outcomes.append((True, output_len, len(tokens), ttft, ttst, latency))

    await asyncio.wait_for(asyncio.gather(*(one(k, p) for k, p in enumerate(prompts))), timeout=60)
    assert len(outcomes) == len(prompts) and all(ok for ok, *_ in outcomes)
    for _, wanted, got, ttft, ttst, latency in outcomes:
        assert got == wanted  # every token came back, as ids (client-side tokenization)
        assert 0 < ttft <= ttst <= latency
        assert latency / got > 0  # benchmark_serving's TPOT
    assert server.runtime.in_flight == 0


@pytest.mark.parametrize(
    "extra", [{}, {"temperature": 1.0}], ids=["locust-load-inference", "latency-profile-generator"]
)
async def test_ai_on_gke_jetstream_http_user(make_server: ServerFactory, extra: dict[str, object]) -> None:
    server = await real_server(make_server, speed=50.0)
    headers = {"User-Agent": "Benchmark Client", "Connection": "close"}
    rng = random.Random(5)

    async def one(http: aiohttp.ClientSession) -> tuple[int, int]:
        wanted = rng.randint(1, 64)
        body = {"prompt": "Explain the theory of relativity in simple terms.", "max_tokens": wanted, **extra}
        async with http.post(f"http://127.0.0.1:{server.http_port}/generate", headers=headers, json=body) as resp:
            assert resp.status == 200
            answer = await resp.json()
        assert "error" not in answer  # the profile generator re-sends a request whose answer has "error"
        return wanted, len(TOKENIZER.encode(answer["response"]))

    async with aiohttp.ClientSession() as http:
        results = await asyncio.wait_for(asyncio.gather(*(one(http) for _ in range(24))), timeout=60)
    assert all(wanted == got for wanted, got in results)
    assert server.runtime.in_flight == 0
