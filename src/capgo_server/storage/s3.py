"""Bundle files in any S3-compatible object store (AWS S3, MinIO, R2, Ceph ...).

``CAPGO_STORAGE_URL=s3://bucket/prefix``; every key is ``prefix/`` + the store path. boto3 is
synchronous, so each call runs in a worker thread (``asyncio.to_thread``). Writes stream through a
multipart upload: at most one part (``part_size``, ≥ 5 MiB as S3 requires) is held in memory,
whatever the object's size.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from capgo_server.settings import Settings
from capgo_server.storage.base import StoredObjectMissingError
from capgo_server.storage.local import safe_relative

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

logger = logging.getLogger("capgo_server.storage")

#: S3 refuses multipart parts under 5 MiB (except the last one).
MIN_PART_SIZE = 5 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024
READ_CHUNK = 256 * 1024
#: DeleteObjects takes at most this many keys per call.
DELETE_BATCH = 1000

_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def parse_storage_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ``("bucket", "some/prefix/")`` (prefix may be empty)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"CAPGO_STORAGE_URL must look like s3://BUCKET/PREFIX: {url}")
    prefix = parts.path.strip("/")
    if prefix:
        safe_relative(prefix)
        prefix += "/"
    return parts.netloc, prefix


class S3BundleStore:
    provider = "s3"

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str = "",
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size

    @classmethod
    def from_settings(cls, settings: Settings) -> S3BundleStore:
        bucket, prefix = parse_storage_url(settings.storage_url or "")
        config = Config(
            signature_version="s3v4",
            # Path-style addressing works with every S3-compatible server; virtual hosts need DNS.
            s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=32,
            # Newer botocore sends CRC checksums many S3-compatible stores reject.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            config=config,
        )
        return cls(client, bucket, prefix)

    def _key(self, path: str) -> str:
        return self.prefix + str(safe_relative(path))

    def _prefix_key(self, prefix: str) -> str:
        return self._key(prefix.rstrip("/")) + "/"

    async def write(self, path: str, chunks: AsyncIterable[bytes]) -> int:
        key = self._key(path)
        buffer = bytearray()
        written = 0
        upload_id: str | None = None
        parts: list[CompletedPartTypeDef] = []
        try:
            async for chunk in chunks:
                buffer += chunk
                written += len(chunk)
                while len(buffer) >= self.part_size:
                    if upload_id is None:
                        upload_id = await self._start_multipart(key)
                    part = bytes(buffer[: self.part_size])
                    del buffer[: self.part_size]
                    parts.append(await self._upload_part(key, upload_id, len(parts) + 1, part))
            if upload_id is None:
                # Small object: one PUT (a multipart upload needs at least one full part).
                await asyncio.to_thread(
                    self.client.put_object, Bucket=self.bucket, Key=key, Body=bytes(buffer)
                )
                return written
            if buffer:
                part = bytes(buffer)
                buffer.clear()
                parts.append(await self._upload_part(key, upload_id, len(parts) + 1, part))
            await asyncio.to_thread(
                self.client.complete_multipart_upload,
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            if upload_id is not None:
                # The abort runs in its own thread, so it finishes even if we are cancelled.
                loop = asyncio.get_running_loop()
                aborting = loop.run_in_executor(
                    None, functools.partial(self._abort_multipart, key, upload_id)
                )
                with contextlib.suppress(Exception):
                    await asyncio.shield(aborting)
            raise
        return written

    async def _start_multipart(self, key: str) -> str:
        created = await asyncio.to_thread(
            self.client.create_multipart_upload, Bucket=self.bucket, Key=key
        )
        return created["UploadId"]

    async def _upload_part(
        self, key: str, upload_id: str, number: int, data: bytes
    ) -> CompletedPartTypeDef:
        uploaded = await asyncio.to_thread(
            self.client.upload_part,
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
        )
        return {"ETag": uploaded["ETag"], "PartNumber": number}

    def _abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError:
            logger.warning("could not abort multipart upload %s of %s", upload_id, key)

    async def read(self, path: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(path)}
        if start or end is not None:
            request["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            response = await asyncio.to_thread(lambda: self.client.get_object(**request))
        except ClientError as exc:
            code = _error_code(exc)
            if code in _MISSING_CODES:
                raise StoredObjectMissingError(path) from exc
            if code == "InvalidRange":  # start at or past the end: nothing to read
                return
            raise
        body = response["Body"]
        try:
            while True:
                chunk = await asyncio.to_thread(body.read, READ_CHUNK)
                if not chunk:
                    break
                yield chunk
        finally:
            body.close()

    async def size(self, path: str) -> int | None:
        try:
            head = await asyncio.to_thread(
                self.client.head_object, Bucket=self.bucket, Key=self._key(path)
            )
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return None
            raise
        return head["ContentLength"]

    async def delete(self, path: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self._key(path))

    async def _keys_under(self, prefix: str) -> list[str]:
        key_prefix = self._prefix_key(prefix)

        def collect() -> list[str]:
            keys: list[str] = []
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=key_prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []) if "Key" in item)
            return keys

        return await asyncio.to_thread(collect)

    async def delete_prefix(self, prefix: str) -> None:
        keys = await self._keys_under(prefix)
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            await asyncio.to_thread(
                self.client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )

    async def list_prefix(self, prefix: str) -> list[str]:
        keys = await self._keys_under(prefix)
        return sorted(key.removeprefix(self.prefix) for key in keys)

    def presigned_url(self, path: str, expires_in: int) -> str | None:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(path)},
            ExpiresIn=expires_in,
        )
        return url
