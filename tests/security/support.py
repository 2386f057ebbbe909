"""Helpers of the security tests: an app built with settings of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from capgo_server.app import create_app
from capgo_server.settings import Settings


@asynccontextmanager
async def configured_app(
    database_url: str, data_dir: Path, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app on the test database with some settings changed, and a client talking to it.

    Tests using it also depend on the ``app`` fixture, which empties the database afterwards.
    """
    settings = Settings(
        database_url=database_url, data_dir=data_dir, secret="s3cure-" + "k" * 40, **overrides
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://capgo.test") as http:
            yield application, http


def client_from(application: FastAPI, ip: str) -> httpx.AsyncClient:
    """A client whose requests come from ``ip``."""
    transport = httpx.ASGITransport(app=application, client=(ip, 4242))
    return httpx.AsyncClient(transport=transport, base_url="http://capgo.test")
