"""How many ``DecodeResponse`` messages one process writes per second over gRPC streams.

The server process runs a bare ``jetstream_proto.Orchestrator`` whose ``Decode`` yields ``max_tokens``
one-token messages (text and id, as jetscale's per-step messages are) as fast as grpc.aio takes them;
the clients run in another process, ``--streams`` concurrent calls at a time, so the figure is the
server's write rate with a reader that keeps up. jetscale's gRPC stream budget
(``jetscale.server.grpc_service.MESSAGES_PER_S``) is set from this figure.

Run: ``python benchmarks/grpc_stream_rate.py [--streams 64] [--messages 200] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from collections.abc import AsyncIterator

import grpc

from jetscale.server.proto import jetstream_pb2 as pb
from jetscale.server.proto import jetstream_pb2_grpc as pb_grpc

_Sample = pb.DecodeResponse.StreamContent.Sample


class _Writer(pb_grpc.OrchestratorServicer):
    async def Decode(self, request: pb.DecodeRequest, context: object) -> AsyncIterator[pb.DecodeResponse]:  # type: ignore[override]
        for k in range(request.max_tokens):
            sample = _Sample(text=" bakoti", token_ids=[3 + k])
            yield pb.DecodeResponse(stream_content=pb.DecodeResponse.StreamContent(samples=[sample]))


def _serve(port_out: multiprocessing.connection.Connection, stop: multiprocessing.synchronize.Event) -> None:
    async def main() -> None:
        server = grpc.aio.server()
        pb_grpc.add_OrchestratorServicer_to_server(_Writer(), server)  # type: ignore[no-untyped-call]
        port_out.send(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await server.stop(grace=0.5)

    asyncio.run(main())


async def _measure(port: int, streams: int, messages: int) -> float:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.OrchestratorStub(channel)
        request = pb.DecodeRequest(max_tokens=messages, text_content=pb.DecodeRequest.TextContent(text="hi"))

        async def one() -> int:
            return sum([1 async for _ in stub.Decode(request)])

        await one()  # warm up the channel
        start = time.perf_counter()
        counts = await asyncio.gather(*(one() for _ in range(streams)))
        return sum(counts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    receive, send = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(send, stop), daemon=True)
    server.start()
    try:
        port = receive.recv()
        rates = [asyncio.run(_measure(port, args.streams, args.messages)) for _ in range(args.rounds)]
    finally:
        stop.set()
        server.join(timeout=5)
    print(f"{args.streams} streams x {args.messages} messages: "
          + ", ".join(f"{r:,.0f}" for r in rates) + f" messages/s (best {max(rates):,.0f})")  # fmt: skip


if __name__ == "__main__":
    main()
