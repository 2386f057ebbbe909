"""The framework's ceiling for bench/hotpath.py: a bare FastAPI app answering a constant JSON body
on the device paths, served by uvicorn with the options ``capgo-server serve`` uses, its garbage
collector tuned alike."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from capgo_server.app import tune_garbage_collector

ANSWER = {
    "error": "no_new_version_available",
    "message": "No new version available",
    "kind": "up_to_date",
}


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    tune_garbage_collector()  # as capgo-server's served workers do
    yield


def create_app() -> FastAPI:
    app = FastAPI(lifespan=lifespan)

    async def constant() -> dict[str, str]:
        return ANSWER

    for path in ("/updates", "/stats"):
        app.add_api_route(path, constant, methods=["POST"])
    app.add_api_route("/ok", constant, methods=["GET"])
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # The same call as capgo_server.cli.serve.
    uvicorn.run(
        "hotpath_bare:create_app",
        app_dir=str(Path(__file__).parent),
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=True,
        log_level="info",
    )
