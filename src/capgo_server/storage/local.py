"""Bundle files on the local disk, under ``CAPGO_DATA_DIR/bundles``."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path, PurePosixPath

from capgo_server.private_files import FOLDER_MODE, open_private_file
from capgo_server.storage.base import StoredObjectMissingError

READ_CHUNK = 256 * 1024


def safe_relative(path: str) -> PurePosixPath:
    """``path`` as a relative key; ``..``, absolute paths and empty parts raise ``ValueError``."""
    pure = PurePosixPath(path)
    if (
        not path
        or pure.is_absolute()
        or "\\" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise ValueError(f"invalid storage path: {path!r}")
    return pure


def _sync_folder(folder: Path) -> None:
    """fsync a directory, so entries just created or renamed in it are durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _make_folders(folder: Path) -> None:
    """``mkdir -p``, owner-only, syncing the parent of every folder it creates (so they survive
    a crash)."""
    created = []
    ancestor = folder
    while not ancestor.exists():
        created.append(ancestor)
        ancestor = ancestor.parent
    for new in reversed(created):
        new.mkdir(mode=FOLDER_MODE, exist_ok=True)
        _sync_folder(new.parent)


class LocalBundleStore:
    provider = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _file(self, path: str) -> Path:
        return self.root.joinpath(*safe_relative(path).parts)

    async def write(self, path: str, chunks: AsyncIterable[bytes]) -> int:
        target = self._file(path)
        await asyncio.to_thread(_make_folders, target.parent)
        # Write beside the target and rename: a reader never sees a half-written file. The
        # partial's name does not repeat the target's, so any name the target can have fits.
        partial = target.with_name(f".{uuid.uuid4().hex}.partial")
        written = 0
        # Owner-only whatever the umask: bundles and upload parts are the customers' code.
        descriptor = await asyncio.to_thread(open_private_file, partial)
        handle = os.fdopen(descriptor, "wb")
        try:
            async for chunk in chunks:
                await asyncio.to_thread(handle.write, chunk)
                written += len(chunk)
            await asyncio.to_thread(handle.flush)
            await asyncio.to_thread(os.fsync, handle.fileno())
        except BaseException:
            handle.close()
            partial.unlink(missing_ok=True)
            raise
        handle.close()
        await asyncio.to_thread(os.replace, partial, target)
        # The rename is an entry in the folder: sync the folder so the name survives a power cut
        # as the bytes do (the bundle row that points at it is committed after this returns).
        await asyncio.to_thread(_sync_folder, target.parent)
        return written

    async def read(self, path: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        file = self._file(path)
        try:
            handle = await asyncio.to_thread(file.open, "rb")
        except FileNotFoundError as exc:
            raise StoredObjectMissingError(path) from exc
        try:
            await asyncio.to_thread(handle.seek, start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                chunk = await asyncio.to_thread(handle.read, size)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            handle.close()

    async def size(self, path: str) -> int | None:
        file = self._file(path)
        try:
            return (await asyncio.to_thread(file.stat)).st_size
        except FileNotFoundError:
            return None

    async def delete(self, path: str) -> None:
        await asyncio.to_thread(self._file(path).unlink, missing_ok=True)

    async def delete_prefix(self, prefix: str) -> None:
        folder = self._file(prefix.rstrip("/"))
        await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)

    async def list_prefix(self, prefix: str) -> list[str]:
        folder = self._file(prefix.rstrip("/"))

        def walk() -> list[str]:
            if not folder.is_dir():
                return []
            return sorted(
                str(PurePosixPath(*p.relative_to(self.root).parts))
                for p in folder.rglob("*")
                if p.is_file() and not p.name.endswith(".partial")
            )

        return await asyncio.to_thread(walk)

    def presigned_url(self, path: str, expires_in: int) -> str | None:
        return None
