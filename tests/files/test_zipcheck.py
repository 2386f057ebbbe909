"""The zip layout check reads only the central directory, through ranged reads."""

from __future__ import annotations

import asyncio
import io
import os
import random
import zipfile
from pathlib import Path

import pytest

from capgo_server.files.zipcheck import (
    INFLATE_CHUNK,
    NO_INDEX,
    RangedReader,
    ZipProblem,
    bundle_zip_problem,
    layout_problem,
)
from capgo_server.files.zipsafety import ZipLimits
from capgo_server.storage.local import LocalBundleStore
from tests.files import hostile_zips as hz
from tests.files.support import make_zip
from tests.storage.behaviour import from_list

LIMITS = ZipLimits(
    max_entries=20_000, max_uncompressed_bytes=512 * 2**20, max_compression_ratio=100
)


class TestLayout:
    @pytest.mark.parametrize(
        "names",
        [
            ["index.html"],
            ["index.html", "js/app.js", "other/x"],
            ["www/index.html", "www/js/app.js"],
            ["www/", "www/index.html"],
        ],
    )
    def test_installable(self, names: list[str]) -> None:
        assert layout_problem(names) is None

    @pytest.mark.parametrize(
        "names",
        [
            [],
            ["main.js"],
            ["www/index.html", "other/index.html"],
            ["www/index.html", "readme.txt"],
            ["www/sub/index.html"],
            ["Index.html"],
        ],
    )
    def test_not_installable(self, names: list[str]) -> None:
        assert layout_problem(names) == NO_INDEX


class TestRangedReader:
    async def test_reads_only_the_central_directory(self, tmp_path: Path) -> None:
        store = LocalBundleStore(tmp_path)
        data = make_zip({"index.html": b"<html>", "big.bin": os.urandom(5 * 1024 * 1024)})
        await store.write("b.zip", from_list([data]))
        reader = RangedReader(store, "b.zip", len(data), asyncio.get_running_loop())

        def names() -> list[str]:
            with zipfile.ZipFile(reader) as archive:
                return archive.namelist()

        assert await asyncio.to_thread(names) == ["index.html", "big.bin"]
        assert reader.bytes_read < 70_000
        assert reader.reads <= 5

    async def test_truncated_zip_is_not_a_zip(self, tmp_path: Path) -> None:
        store = LocalBundleStore(tmp_path)
        data = make_zip({"index.html": b"<html>"})[:-10]
        await store.write("b.zip", from_list([data]))
        assert await bundle_zip_problem(store, "b.zip", len(data), LIMITS) == ZipProblem(
            "The file is not a valid zip archive"
        )

    async def test_tiny_file_is_not_a_zip(self, tmp_path: Path) -> None:
        store = LocalBundleStore(tmp_path)
        await store.write("b.zip", from_list([b"PK"]))
        assert await bundle_zip_problem(store, "b.zip", 2, LIMITS) == ZipProblem(
            "The file is not a valid zip archive"
        )


async def problem_of(tmp_path: Path, data: bytes, limits: ZipLimits = LIMITS) -> ZipProblem | None:
    store = LocalBundleStore(tmp_path)
    await store.write("b.zip", from_list([data]))
    return await bundle_zip_problem(store, "b.zip", len(data), limits)


class TestUnpacking:
    async def test_output_in_whole_inflate_chunks_is_counted_whole(self, tmp_path: Path) -> None:
        """An entry that inflates to exact multiples of the chunk asked for leaves output
        pending inside zlib after a full chunk; it is all counted (else the size would not
        match its header and the zip would be refused)."""
        assert hz.MIB == INFLATE_CHUNK
        data = hz.build([hz.stored("index.html", b"<html>"), hz.zeros("zeros.bin", 3)])
        loose = ZipLimits(max_entries=10, max_uncompressed_bytes=2**30, max_compression_ratio=10**6)
        assert await problem_of(tmp_path, data, loose) is None

    async def test_mutated_zips_are_refused_or_accepted_never_crash(self, tmp_path: Path) -> None:
        """Any byte of a real zip changed, or the file cut anywhere: an answer, never an
        exception (which would be a 500)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("www/", b"")
            archive.writestr("www/index.html", b"<html>" * 50)
            archive.writestr("www/app.js", b"let x = 1;" * 300)
        original = buffer.getvalue()
        randomness = random.Random(20240611)
        answers = set()
        for attempt in range(300):
            data = bytearray(original)
            if attempt % 3 == 0:
                data = data[: randomness.randrange(len(data))]
            else:
                for _ in range(randomness.randint(1, 4)):
                    data[randomness.randrange(len(data))] = randomness.randrange(256)
            problem = await problem_of(tmp_path / str(attempt), bytes(data))
            answers.add(problem is None)
        assert answers == {True, False}
