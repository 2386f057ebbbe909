"""API key values: generation, hashing and look-up."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.clock import utcnow
from capgo_server.models import ApiKey


class KeyMode(StrEnum):
    read = "read"
    upload = "upload"
    write = "write"
    all = "all"


def new_key_value() -> str:
    """A fresh key: a random v4 UUID, the format Capgo issues and its CLI expects."""
    return str(uuid.uuid4())


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def is_expired(key: ApiKey) -> bool:
    return key.expires_at is not None and key.expires_at <= utcnow()


async def find_usable_key(session: AsyncSession, presented: str) -> ApiKey | None:
    """The live (unexpired) key whose value is ``presented``, else ``None``.

    Keys are found by the SHA-256 of the value and the digests are then compared in constant
    time, so neither plain nor hashed keys are ever compared byte by byte.
    """
    digest = sha256_hex(presented)
    key = await session.scalar(select(ApiKey).where(ApiKey.secret_sha256 == digest))
    if key is None or not hmac.compare_digest(key.secret_sha256, digest) or is_expired(key):
        return None
    return key
