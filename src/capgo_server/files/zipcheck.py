"""Can the updater plugin install this zip? It unpacks a bundle and serves ``index.html`` from its
root or from the zip's single top-level folder; any other layout fails on the device.

Only the zip's central directory is read, through ranged reads on the store, never the whole
file: :class:`RangedReader` is a seekable file whose reads become ``store.read(path, a, b)``.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Collection
from typing import Any

from capgo_server.storage.base import BundleStore

#: A central directory larger than this (some 300,000 entries) is not read into memory.
MAX_READ = 32 * 1024 * 1024

NOT_A_ZIP = "The file is not a valid zip archive"
NO_INDEX = (
    "The zip has no index.html at its root or in a single top-level folder, "
    "so the plugin cannot install it"
)


class _ReadTooLargeError(Exception):
    pass


class RangedReader(io.RawIOBase):
    """A read-only, seekable view of a stored object, for use from a worker thread.

    Each read fetches exactly the bytes asked for from ``store`` on the event loop ``loop``.
    """

    def __init__(
        self, store: BundleStore, path: str, size: int, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__()
        self._store = store
        self._path = path
        self._size = size
        self._loop = loop
        self._position = 0
        #: How many ranged reads were made (the tests check that the file is not read whole).
        self.reads = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if position < 0:
            raise OSError("negative seek position")
        self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._size - self._position)
        if wanted <= 0:
            return 0
        if wanted > MAX_READ:
            raise _ReadTooLargeError
        start = self._position
        data = asyncio.run_coroutine_threadsafe(
            self._fetch(start, start + wanted - 1), self._loop
        ).result()
        view[: len(data)] = data
        self._position += len(data)
        self.reads += 1
        self.bytes_read += len(data)
        return len(data)

    async def _fetch(self, start: int, end: int) -> bytes:
        return b"".join([chunk async for chunk in self._store.read(self._path, start, end)])


def layout_problem(names: Collection[str]) -> str | None:
    """``None`` when ``index.html`` is at the root or in the single top-level folder."""
    if "index.html" in names:
        return None
    tops = {name.split("/", 1)[0] for name in names if name}
    at_root = any("/" not in name for name in names if name)
    if len(tops) == 1 and not at_root:
        (top,) = tops
        if f"{top}/index.html" in names:
            return None
    return NO_INDEX


async def bundle_zip_problem(store: BundleStore, path: str, size: int) -> str | None:
    """Why the stored zip at ``path`` (of ``size`` bytes) cannot be installed, or ``None``."""
    reader = RangedReader(store, path, size, asyncio.get_running_loop())

    def names() -> list[str]:
        with zipfile.ZipFile(reader) as archive:
            return archive.namelist()

    try:
        return layout_problem(set(await asyncio.to_thread(names)))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, _ReadTooLargeError, OSError, ValueError):
        return NOT_A_ZIP
