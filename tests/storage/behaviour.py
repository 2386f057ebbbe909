"""Behaviour every :class:`BundleStore` shares; ``test_local`` and ``test_s3`` run it on each."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable

import pytest

from capgo_server.storage.base import BundleStore, StoredObjectMissingError


async def chunks_of(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def from_list(items: Iterable[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def read_all(store: BundleStore, path: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(path, start, end)])


class BrokenStreamError(Exception):
    pass


class StoreBehaviour:
    """Subclasses provide a ``store`` fixture."""

    async def test_write_then_read_round_trips(self, store: BundleStore) -> None:
        data = os.urandom(300_000)
        written = await store.write("orgs/o/apps/a/1.0.0.zip", chunks_of(data))
        assert written == len(data)
        assert await read_all(store, "orgs/o/apps/a/1.0.0.zip") == data

    async def test_size_of_stored_and_missing_objects(self, store: BundleStore) -> None:
        await store.write("a/b.bin", from_list([b"12345", b"678"]))
        assert await store.size("a/b.bin") == 8
        assert await store.size("a/missing.bin") is None

    async def test_write_replaces_an_existing_object(self, store: BundleStore) -> None:
        await store.write("a/b.bin", from_list([b"first version"]))
        await store.write("a/b.bin", from_list([b"second"]))
        assert await read_all(store, "a/b.bin") == b"second"

    async def test_empty_object(self, store: BundleStore) -> None:
        assert await store.write("a/empty.bin", from_list([])) == 0
        assert await store.size("a/empty.bin") == 0
        assert await read_all(store, "a/empty.bin") == b""

    async def test_ranged_reads(self, store: BundleStore) -> None:
        data = bytes(range(256)) * 1000
        await store.write("r/data.bin", chunks_of(data))
        assert await read_all(store, "r/data.bin", 10, 19) == data[10:20]
        assert await read_all(store, "r/data.bin", 1000) == data[1000:]
        assert await read_all(store, "r/data.bin", len(data) - 1, len(data) - 1) == data[-1:]
        assert await read_all(store, "r/data.bin", len(data)) == b""

    async def test_reading_a_missing_object_raises(self, store: BundleStore) -> None:
        with pytest.raises(StoredObjectMissingError):
            await read_all(store, "nope/missing.zip")

    async def test_a_failed_write_leaves_nothing_behind(self, store: BundleStore) -> None:
        async def broken() -> AsyncIterator[bytes]:
            yield b"x" * 1000
            raise BrokenStreamError

        with pytest.raises(BrokenStreamError):
            await store.write("f/broken.bin", broken())
        assert await store.size("f/broken.bin") is None
        assert await store.list_prefix("f/") == []

    async def test_a_failed_write_keeps_the_previous_object(self, store: BundleStore) -> None:
        await store.write("f/kept.bin", from_list([b"old"]))

        async def broken() -> AsyncIterator[bytes]:
            yield b"new"
            raise BrokenStreamError

        with pytest.raises(BrokenStreamError):
            await store.write("f/kept.bin", broken())
        assert await read_all(store, "f/kept.bin") == b"old"

    async def test_delete(self, store: BundleStore) -> None:
        await store.write("d/x.bin", from_list([b"x"]))
        await store.delete("d/x.bin")
        assert await store.size("d/x.bin") is None
        await store.delete("d/x.bin")  # deleting a missing object is not an error

    async def test_list_prefix_is_sorted_and_scoped(self, store: BundleStore) -> None:
        for path in ("up/2/b", "up/1/00000000000000000010", "up/1/00000000000000000000", "upx/z"):
            await store.write(path, from_list([b"."]))
        assert await store.list_prefix("up/1/") == [
            "up/1/00000000000000000000",
            "up/1/00000000000000000010",
        ]
        assert await store.list_prefix("up/") == [
            "up/1/00000000000000000000",
            "up/1/00000000000000000010",
            "up/2/b",
        ]
        assert await store.list_prefix("none/") == []

    async def test_delete_prefix_removes_only_that_prefix(self, store: BundleStore) -> None:
        for path in ("gone/a", "gone/sub/b", "gonex/c", "kept/d"):
            await store.write(path, from_list([b"."]))
        await store.delete_prefix("gone/")
        assert await store.list_prefix("gone/") == []
        assert await store.size("gonex/c") == 1
        assert await store.size("kept/d") == 1
        await store.delete_prefix("never/")  # an empty prefix is not an error

    @pytest.mark.parametrize(
        "path", ["../escape.zip", "/abs/path.zip", "a/../../b", "a//b", "a/./b", "", "a\\b"]
    )
    async def test_unsafe_paths_are_refused(self, store: BundleStore, path: str) -> None:
        with pytest.raises(ValueError, match="invalid storage path"):
            await store.write(path, from_list([b"x"]))
        with pytest.raises(ValueError, match="invalid storage path"):
            await store.size(path)
        with pytest.raises(ValueError, match="invalid storage path"):
            await store.delete(path)
        with pytest.raises(ValueError, match="invalid storage path"):
            await read_all(store, path)
