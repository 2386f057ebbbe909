from __future__ import annotations

import os

import httpx
import pytest

from capgo_server.storage.factory import make_store
from capgo_server.storage.s3 import MIN_PART_SIZE, S3BundleStore, parse_storage_url
from tests.storage.behaviour import StoreBehaviour, chunks_of, from_list, read_all
from tests.storage.s3_support import S3Server


@pytest.fixture
def store(s3_server: S3Server) -> S3BundleStore:
    made = make_store(s3_server.settings())
    assert isinstance(made, S3BundleStore)
    return made


class TestS3BundleStore(StoreBehaviour):
    async def test_keys_carry_the_prefix(self, store: S3BundleStore, s3_server: S3Server) -> None:
        await store.write("orgs/o/apps/a/1.0.0.zip", from_list([b"zip"]))
        listed = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=store.prefix)
        assert [item["Key"] for item in listed["Contents"]] == [
            f"{store.prefix}orgs/o/apps/a/1.0.0.zip"
        ]

    async def test_large_objects_go_up_in_parts(self, store: S3BundleStore) -> None:
        data = os.urandom(2 * MIN_PART_SIZE + 12345)
        store.part_size = MIN_PART_SIZE
        assert await store.write("big/object.bin", chunks_of(data, 1024 * 1024)) == len(data)
        assert await store.size("big/object.bin") == len(data)
        assert await read_all(store, "big/object.bin") == data
        middle = MIN_PART_SIZE - 10
        assert await read_all(store, "big/object.bin", middle, middle + 19) == data[middle:][:20]
        head = store.client.head_object(Bucket=store.bucket, Key=store._key("big/object.bin"))
        assert head["ETag"].strip('"').endswith("-3")  # a multipart object of three parts

    async def test_a_failed_multipart_write_is_aborted(self, store: S3BundleStore) -> None:
        store.part_size = MIN_PART_SIZE

        async def broken():  # type: ignore[no-untyped-def]
            yield b"x" * (MIN_PART_SIZE + 1)
            raise RuntimeError("client went away")

        with pytest.raises(RuntimeError):
            await store.write("big/broken.bin", broken())
        uploads = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
        assert uploads.get("Uploads", []) == []
        assert await store.size("big/broken.bin") is None

    async def test_presigned_url_fetches_the_object(self, store: S3BundleStore) -> None:
        await store.write("orgs/o/apps/a/1.0.0.zip", from_list([b"presigned bytes"]))
        url = store.presigned_url("orgs/o/apps/a/1.0.0.zip", 60)
        assert url is not None
        assert "X-Amz-Signature=" in url
        async with httpx.AsyncClient() as http:
            response = await http.get(url)
        assert response.status_code == 200
        assert response.content == b"presigned bytes"

    async def test_stores_with_different_prefixes_do_not_see_each_other(
        self, s3_server: S3Server
    ) -> None:
        first = make_store(s3_server.settings())
        second = make_store(s3_server.settings())
        await first.write("same/path.bin", from_list([b"first"]))
        assert await second.size("same/path.bin") is None
        assert await second.list_prefix("same/") == []


class TestParseStorageUrl:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("s3://bucket", ("bucket", "")),
            ("s3://bucket/", ("bucket", "")),
            ("s3://bucket/bundles", ("bucket", "bundles/")),
            ("s3://bucket/a/b/", ("bucket", "a/b/")),
        ],
    )
    def test_bucket_and_prefix(self, url: str, expected: tuple[str, str]) -> None:
        assert parse_storage_url(url) == expected

    @pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "http://bucket/x", "s3://b/../x"])
    def test_invalid_urls(self, url: str) -> None:
        with pytest.raises(ValueError, match=r"s3://|invalid storage path"):
            parse_storage_url(url)

    def test_part_size_below_the_s3_minimum_is_refused(self, store: S3BundleStore) -> None:
        with pytest.raises(ValueError, match="part_size"):
            S3BundleStore(store.client, store.bucket, part_size=MIN_PART_SIZE - 1)
