"""The developer's upload flow against a running server whose bundles live in S3-compatible
storage: moto's S3 server on 127.0.0.1, reached over HTTP like any other S3 endpoint."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator

import pytest

from tests.bundle_cli.proxy import CuttingProxy
from tests.bundle_cli.test_end_to_end import (
    CHUNK,
    Live,
    channel_version,
    downloaded,
    entries,
    live_server,
    summary,
    web_folder,
)
from tests.storage.s3_support import ACCESS_KEY, SECRET_KEY, S3Server, running_s3_server

PREFIX = f"e2e-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with running_s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def live(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server
) -> Iterator[Live]:
    storage = {
        "CAPGO_STORAGE_URL": f"s3://{s3_server.bucket}/{PREFIX}",
        "CAPGO_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "CAPGO_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "CAPGO_S3_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    with live_server(database_url, tmp_path_factory.mktemp("e2e-s3"), **storage) as server:
        yield server


def objects(s3_server: S3Server) -> list[str]:
    listing = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=PREFIX)
    return sorted(item["Key"] for item in listing.get("Contents", []))


class TestUploadToS3:
    def test_interrupted_upload_resumes_and_is_served_from_s3(
        self,
        live: Live,
        app_id: str,
        proxy: CuttingProxy,
        s3_server: S3Server,
    ) -> None:
        folder, files = web_folder(live.cwd, filler=300_000)
        proxy.arm(cut_after=CHUNK // 2, cuts=2)
        result = live.cli(
            "bundle", "upload", "--app-id", app_id, "--version", "1.0.0",
            "--channel", "production", "--create-channel", "--chunk-size", str(CHUNK), "--json",
            str(folder),
        )  # fmt: skip
        summary(result)
        assert proxy.cut_done == 2
        outcome = json.loads(result.stdout)
        assert outcome["interruptions"] == 2
        data = downloaded(live, app_id, "1.0.0")
        assert hashlib.sha256(data).hexdigest() == outcome["checksum"]
        assert entries(data) == files
        assert channel_version(live, app_id, "production") == "1.0.0"
        # The bundle is in the bucket, at its path; no upload parts are left behind.
        stored = [key for key in objects(s3_server) if app_id in key]
        assert stored == [f"{PREFIX}/orgs/{live.org_id}/apps/{app_id}/1.0.0.zip"]
        assert not [key for key in objects(s3_server) if "/uploads/" in key]

    def test_deleting_the_bundle_removes_it_from_the_bucket(
        self,
        live: Live,
        app_id: str,
        s3_server: S3Server,
    ) -> None:
        folder, _ = web_folder(live.cwd)
        summary(live.cli("bundle", "upload", "--app-id", app_id, "--version", "1.0.0", str(folder)))
        assert [key for key in objects(s3_server) if app_id in key] != []
        summary(live.cli("bundle", "delete", "--app-id", app_id, "--version", "1.0.0"))
        assert [key for key in objects(s3_server) if app_id in key] == []
