"""A real S3-compatible HTTP server for the tests: moto's server mode on 127.0.0.1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from capgo_server.settings import Settings

BUCKET = "capgo-test-bundles"
ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str

    def settings(self, **fields: object) -> Settings:
        """Settings pointing at this server, under a fresh prefix (tests do not share keys)."""
        values: dict[str, object] = {
            "storage_url": f"s3://{self.bucket}/t-{uuid.uuid4().hex[:12]}",
            "s3_endpoint_url": self.endpoint_url,
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
            "data_dir": Path("/nonexistent-capgo-data-dir"),
            **fields,
        }
        return Settings(**values)  # type: ignore[arg-type]

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )


@contextmanager
def running_s3_server() -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = S3Server(endpoint_url=f"http://{host}:{port}", bucket=BUCKET)
        s3.client().create_bucket(Bucket=BUCKET)
        yield s3
    finally:
        server.stop()
