"""``bundle upload`` as a function against the real app in-process, when the network fails.

What a run does when it cannot finish, and what the next run of the same command does with the
upload left behind. (The command line as a process, against a server process, is in
test_end_to_end.py.)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.bundle_cli.api import CliError
from capgo_server.bundle_cli.upload import UploadRequest, UploadResult, upload_bundle
from tests.bundle_cli.faults import Fault, FaultyTransport, web_zip
from tests.conftest import Account

APP_ID = "com.example.flow"
CHUNK = 64 * 1024


@pytest.fixture
async def flow_app(client: httpx.AsyncClient, alice: Account) -> str:
    body = {"app_id": APP_ID, "name": "Flow", "owner_org": alice.org_id}
    response = await client.post("/app", json=body, headers=alice.headers)
    assert response.status_code == 200, response.text
    return APP_ID


def bundle_at(tmp_path: Path, name: str = "bundle.zip", chunks: int = 4) -> tuple[Path, bytes]:
    data = web_zip(os.urandom(chunks * CHUNK))
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


async def run_upload(
    app: FastAPI,
    owner: Account,
    path: Path,
    *,
    plan: dict[int, Fault] | None = None,
    fail_from: int | None = None,
    channel: str | None = None,
) -> tuple[UploadResult, FaultyTransport]:
    transport = FaultyTransport(httpx.ASGITransport(app=app), plan=plan or {}, fail_from=fail_from)
    request = UploadRequest(
        api="http://capgo.test",
        apikey=owner.key,
        app_id=APP_ID,
        version="1.0.0",
        path=path,
        channel=channel,
        no_channel=channel is None,
        chunk_size=CHUNK,
        retries=2,
        backoff=0.001,
    )
    return await upload_bundle(request, transport=transport), transport


async def download(client: httpx.AsyncClient, owner: Account) -> bytes:
    body = {"app_id": APP_ID, "version": "1.0.0"}
    link = await client.post("/files/download_link", json=body, headers=owner.headers)
    assert link.status_code == 200, link.text
    response = await client.get(link.json()["url"])
    assert response.status_code == 200
    return response.content


class TestInterruptedRun:
    async def test_survives_interruptions_and_reports_them(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        alice: Account,
        flow_app: str,
        tmp_path: Path,
    ) -> None:
        path, data = bundle_at(tmp_path)
        result, _ = await run_upload(app, alice, path, plan={1: "cut", 3: "drop"})
        assert result.as_json() == {
            "app_id": APP_ID,
            "version": "1.0.0",
            "size": len(data),
            "checksum": hashlib.sha256(data).hexdigest(),
            "channel": None,
            "channel_created": None,
            "channel_source": None,
            "previous_version": None,
            "interruptions": 2,
            "warning": None,
        }
        assert await download(client, alice) == data

    async def test_a_run_that_gives_up_says_how_to_resume(
        self, app: FastAPI, alice: Account, flow_app: str, tmp_path: Path
    ) -> None:
        path, data = bundle_at(tmp_path)
        with pytest.raises(CliError) as failed:
            await run_upload(app, alice, path, fail_from=3)
        assert str(failed.value) == (
            f"upload interrupted at byte {2 * CHUNK} of {len(data)}: gave up after 2 retries: "
            "ReadError: connection reset by peer; run the same command again to resume it"
        )

    async def test_the_answer_to_the_last_byte_lost(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        alice: Account,
        flow_app: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        path, data = bundle_at(tmp_path)
        last = -(-len(data) // CHUNK)
        result, _ = await run_upload(app, alice, path, plan={last: "lose_response"})
        # The upload is gone from the server, but the bundle it became has our checksum.
        assert (result.version, result.checksum) == ("1.0.0", hashlib.sha256(data).hexdigest())
        assert result.interruptions == 1
        assert await download(client, alice) == data
        assert "warning: upload interrupted at byte" in capsys.readouterr().err


class TestTheNextRun:
    async def test_resumes_the_upload_an_earlier_run_left(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        alice: Account,
        flow_app: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        path, data = bundle_at(tmp_path)
        with pytest.raises(CliError):
            await run_upload(app, alice, path, fail_from=3)
        capsys.readouterr()
        result, transport = await run_upload(app, alice, path)
        # Only what the server did not have was sent.
        assert transport.forwarded[0].offset == 2 * CHUNK
        assert "POST" in transport.methods  # the creation was refused, naming the pending upload
        assert result.checksum == hashlib.sha256(data).hexdigest()
        assert await download(client, alice) == data
        err = capsys.readouterr().err
        assert f"warning: resuming the unfinished upload of 1.0.0 at byte {2 * CHUNK}" in err

    async def test_starts_over_when_the_earlier_upload_had_another_size(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        alice: Account,
        flow_app: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        first, _ = bundle_at(tmp_path, "first.zip", chunks=6)
        with pytest.raises(CliError):
            await run_upload(app, alice, first, fail_from=3)
        second, data = bundle_at(tmp_path, "second.zip", chunks=4)
        result, transport = await run_upload(app, alice, second)
        assert transport.forwarded[0].offset == 0
        assert result.size == len(data)
        assert await download(client, alice) == data
        err = capsys.readouterr().err
        assert "warning: discarding an unfinished upload of 1.0.0 of another size" in err

    async def test_starts_over_when_the_earlier_upload_held_other_bytes(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        alice: Account,
        flow_app: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        first, _ = bundle_at(tmp_path, "first.zip")
        with pytest.raises(CliError):
            await run_upload(app, alice, first, fail_from=3)
        second, data = bundle_at(tmp_path, "second.zip")  # same size, other bytes
        result, transport = await run_upload(app, alice, second)
        starts = [patch.offset for patch in transport.forwarded]
        assert starts[0] == 2 * CHUNK  # resumed first, refused at the end, then from scratch
        assert 0 in starts[1:]
        assert result.checksum == hashlib.sha256(data).hexdigest()
        assert await download(client, alice) == data
        err = capsys.readouterr().err
        assert "warning: the unfinished upload of 1.0.0 held other bytes; starting over" in err
