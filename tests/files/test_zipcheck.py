"""The zip layout check reads only the central directory, through ranged reads."""

from __future__ import annotations

import asyncio
import os
import zipfile
from pathlib import Path

import pytest

from capgo_server.files.zipcheck import NO_INDEX, RangedReader, bundle_zip_problem, layout_problem
from capgo_server.storage.local import LocalBundleStore
from tests.files.support import make_zip
from tests.storage.behaviour import from_list


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
        assert await bundle_zip_problem(store, "b.zip", len(data)) == (
            "The file is not a valid zip archive"
        )

    async def test_tiny_file_is_not_a_zip(self, tmp_path: Path) -> None:
        store = LocalBundleStore(tmp_path)
        await store.write("b.zip", from_list([b"PK"]))
        assert await bundle_zip_problem(store, "b.zip", 2) == "The file is not a valid zip archive"
