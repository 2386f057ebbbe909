"""The bundle storage interface. Paths are relative keys such as
``orgs/<org_id>/apps/<app_id>/<version>.zip``; implementations never accept ``..`` or absolute
paths (they raise ``ValueError``)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol


class StoredObjectMissingError(LookupError):
    """The object asked for does not exist."""


class BundleStore(Protocol):
    #: Recorded as the bundle's ``storage_provider`` (``local`` or ``s3``).
    provider: str

    async def write(self, path: str, chunks: AsyncIterable[bytes]) -> int:
        """Store ``chunks`` as ``path`` (replacing it), streaming; returns the bytes written."""
        ...

    def read(self, path: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes ``start`` to ``end`` inclusive (``None``: to the end).

        Raises :class:`StoredObjectMissingError` when the object does not exist.
        """
        ...

    async def size(self, path: str) -> int | None:
        """Size in bytes, or ``None`` when the object does not exist."""
        ...

    async def delete(self, path: str) -> None:
        """Remove ``path``; removing a missing object is not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> None:
        """Remove every object whose path starts with ``prefix`` (which ends with ``/``)."""
        ...

    async def list_prefix(self, prefix: str) -> list[str]:
        """Paths under ``prefix``, sorted."""
        ...

    def presigned_url(self, path: str, expires_in: int) -> str | None:
        """A URL the object can be fetched from without credentials for ``expires_in``
        seconds, or ``None`` when this backend has none (downloads then go through the server,
        on a URL signed with ``CAPGO_SECRET``)."""
        ...
