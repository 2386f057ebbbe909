"""``capgo_server.serving``: the HTTP protocol a served worker speaks, on a real socket."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from capgo_server.serving import NoDelayH11Protocol


def constant_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict[str, str]:
        return {"status": "ok"}

    return app


@asynccontextmanager
async def served_on_a_socket_bound_like_uvicorns_workers(
    protocol: type[H11Protocol],
) -> AsyncIterator[tuple[uvicorn.Server, str]]:
    # With --workers N, uvicorn binds the listener as socket.socket(AF_INET): protocol number 0.
    listener = socket.socket(socket.AF_INET)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(constant_app(), http=protocol, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        yield server, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        listener.close()


def nagle_off(server: uvicorn.Server) -> list[int]:
    """TCP_NODELAY of each connection the server holds open."""
    return [
        connection.transport.get_extra_info("socket").getsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY
        )
        for connection in server.server_state.connections
        if isinstance(connection, H11Protocol)
    ]


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        # The cause: on such a listener asyncio leaves Nagle on (a 40 ms delayed-ACK wait per
        # response whose headers and body go out in two writes).
        (H11Protocol, 0),
        (NoDelayH11Protocol, 1),
    ],
)
async def test_served_connections_have_nagle_off(
    protocol: type[H11Protocol], expected: int
) -> None:
    async with (
        served_on_a_socket_bound_like_uvicorns_workers(protocol) as (server, base_url),
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        for _ in range(3):  # the same kept-alive connection each time
            response = await client.get("/ok")
            assert response.status_code == 200
            assert response.json() == {"status": "ok"}
        flags = nagle_off(server)
        assert len(flags) == 1
        assert [bool(flag) for flag in flags] == [bool(expected)]
