"""Can the updater plugin install this zip, and may it be handed to devices? The plugin unpacks a
bundle and serves ``index.html`` from its root or from the zip's single top-level folder; any
other layout fails on the device. What a zip must not contain is in :mod:`.zipsafety`.

The stored file is read through ranged reads on the store, buffered, never whole in memory:
:class:`RangedReader` is a seekable file whose reads become ``store.read(path, a, b)``. The
central directory is read first (everything about names and declared sizes is refused before a
byte of data is unpacked), then every entry is unpacked and counted. The work runs on a small
thread pool of its own, so it neither blocks the event loop nor starves the default executor,
and at most :data:`CONCURRENT_CHECKS` bundles are unpacked at once per worker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import struct
import zipfile
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from capgo_server.files.zipsafety import (
    INFLATE_CHUNK,
    ZipLimits,
    ZipRefusedError,
    check_entries,
    walk_entries,
)
from capgo_server.storage.base import BundleStore

#: A central directory larger than this (some 300,000 entries) is not read into memory.
MAX_READ = 32 * 1024 * 1024
#: Central directory bytes allowed per accepted entry: a real one takes 46 bytes plus its name
#: (web bundle names average well under 100 characters) plus a few extra-field bytes.
CENTRAL_BYTES_PER_ENTRY = 256
#: The store is read in pieces this large (an S3 GET each), and a check holds about one.
READ_BUFFER = 4 * 1024 * 1024
#: Bundles unpacked at once by one worker; more wait their turn.
CONCURRENT_CHECKS = 2
#: How long a read may wait for the store before the check gives up.
READ_TIMEOUT_SECONDS = 120.0

__all__ = ["INFLATE_CHUNK", "ZipProblem", "bundle_zip_problem", "layout_problem"]

_checks = ThreadPoolExecutor(max_workers=CONCURRENT_CHECKS, thread_name_prefix="bundle-check")

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
        self,
        store: BundleStore,
        path: str,
        size: int,
        loop: asyncio.AbstractEventLoop,
        max_read: int = MAX_READ,
    ) -> None:
        super().__init__()
        self._max_read = max_read
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
        if wanted > self._max_read:
            raise _ReadTooLargeError
        start = self._position
        data = asyncio.run_coroutine_threadsafe(
            self._fetch(start, start + wanted - 1), self._loop
        ).result(READ_TIMEOUT_SECONDS)
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


@dataclasses.dataclass(frozen=True)
class ZipProblem:
    """Why a bundle zip is refused: the message, and what ``moreInfo`` adds to the path."""

    message: str
    details: dict[str, object] = dataclasses.field(default_factory=dict)


def _inspect(raw: RangedReader, size: int, limits: ZipLimits) -> ZipProblem | None:
    file = io.BufferedReader(raw, buffer_size=READ_BUFFER)
    try:
        with zipfile.ZipFile(file) as archive:
            entries = archive.infolist()
            check_entries(entries, limits, size)
            layout = layout_problem({info.filename for info in entries})
            if layout is not None:
                return ZipProblem(layout)
            walk_entries(file, entries, archive.start_dir, limits, size)
    except ZipRefusedError as refused:
        return ZipProblem(refused.message, refused.details)
    except _ReadTooLargeError:
        return ZipProblem(
            f"The zip's central directory is larger than {limits.max_entries} entries need",
            {"max_entries": limits.max_entries},
        )
    return None


async def bundle_zip_problem(
    store: BundleStore, path: str, size: int, limits: ZipLimits
) -> ZipProblem | None:
    """Why the stored zip at ``path`` (of ``size`` bytes) must not be served, or ``None``."""
    max_read = max(READ_BUFFER, limits.max_entries * CENTRAL_BYTES_PER_ENTRY)
    reader = RangedReader(store, path, size, asyncio.get_running_loop(), min(max_read, MAX_READ))
    try:
        return await asyncio.get_running_loop().run_in_executor(
            _checks, _inspect, reader, size, limits
        )
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,  # a "version needed to extract" zipfile does not know
        OSError,
        ValueError,
        EOFError,
        struct.error,
    ):
        return ZipProblem(NOT_A_ZIP)
