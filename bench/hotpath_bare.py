"""The framework's ceiling for bench/hotpath.py: a bare FastAPI app answering a constant JSON body
on the device paths, served through ``capgo_server.serving.run`` as ``capgo-server serve``
serves the real app, its garbage collector tuned alike."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from capgo_server.serving import run, tune_garbage_collector

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
    # Served as capgo_server.cli.serve serves the real app.
    run(
        "hotpath_bare:create_app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        app_dir=str(Path(__file__).parent),
    )
