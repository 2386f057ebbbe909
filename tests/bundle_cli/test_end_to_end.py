"""``capgo-server bundle upload|list|delete`` as processes against a real ``capgo-server serve``.

One server per database engine (SQLite, PostgreSQL) for the module; each test works on an app of
its own. The upload goes through the tus endpoint, through a proxy that cuts the connection in
the middle of a chunk where the test says so; what the server stores is fetched back through its
signed download URL and compared byte for byte.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.bundle_cli.proxy import CuttingProxy, cutting_proxy
from tests.conftest import empty_all_tables
from tests.test_cli import CLI, account_of, cli_env, describe, error_line, run_cli
from tests.test_serve import SHUTDOWN_SECONDS, Server, free_port, wait_until_ok
from tests.warm_cli import run_cli_warm

CHUNK = 128 * 1024


@dataclass
class Live:
    server: Server
    proxy: CuttingProxy
    env: dict[str, str]
    cwd: Path
    key: str
    org_id: str

    def http(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.base_url,
            headers={"authorization": key or self.key},
            timeout=30,
        )

    def cli(self, *args: str, key: str | None = None, api: str | None = None) -> Any:
        """Run ``capgo-server`` with CAPGO_API and CAPGO_APIKEY set (as a CI job would)."""
        env = {
            **self.env,
            "CAPGO_API": api or self.server.base_url,
            "CAPGO_APIKEY": key or self.key,
        }
        return run_cli_warm(*args, env=env, cwd=self.cwd, timeout=120)


@contextmanager
def live_server(database_url: str, cwd: Path, **extra_env: str) -> Iterator[Live]:
    """``capgo-server serve`` on ``database_url`` (plus ``extra_env`` settings) and one account.

    The server's public URL is a proxy in front of it, so the upload URLs it hands out (tus
    ``Location``) and its download links go through the proxy, which a test can arm to cut
    connections.
    """
    port = free_port()
    with cutting_proxy(port) as proxy:
        env = cli_env(
            cwd / "data", CAPGO_DATABASE_URL=database_url, CAPGO_PUBLIC_URL=proxy.url, **extra_env
        )
        log = cwd / "serve.log"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [str(CLI), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        server = Server(process=process, base_url=f"http://127.0.0.1:{port}", log=log)
        try:
            wait_until_ok(server)
            account = account_of(run_cli_warm("create-user", "dev@example.com", env=env, cwd=cwd))
            yield Live(server, proxy, env, cwd, account["apikey"], account["org_id"])
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=SHUTDOWN_SECONDS)
            asyncio.run(empty_all_tables(database_url))


@pytest.fixture(scope="module")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A live server on local-file storage, for the module."""
    with live_server(database_url, tmp_path_factory.mktemp("e2e")) as server:
        yield server


def web_folder(root: Path, filler: int = 40_000) -> tuple[Path, dict[str, bytes]]:
    """A built web app: index.html at the top, assets in subfolders, incompressible filler."""
    files = {
        "index.html": b"<!doctype html><script src=assets/js/app.js></script>",
        "assets/js/app.js": b"console.log('live update')",
        "assets/media/filler.bin": os.urandom(filler),
    }
    folder = root / f"dist-{uuid.uuid4().hex[:6]}"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder, files


def entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def downloaded(live: Live, app_id: str, version: str) -> bytes:
    """The bundle's bytes, fetched without credentials from its signed download URL."""
    with live.http() as http:
        link = http.post("/files/download_link", json={"app_id": app_id, "version": version})
    assert link.status_code == 200, link.text
    response = httpx.get(link.json()["url"], timeout=30)
    assert response.status_code == 200, response.text
    return response.content


def channel_version(live: Live, app_id: str, channel: str) -> str:
    with live.http() as http:
        response = http.get("/channel", params={"app_id": app_id, "channel": channel})
    assert response.status_code == 200, response.text
    name: str = response.json()["version"]["name"]
    return name


def summary(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    return result.stdout.splitlines()


class TestUpload:
    def test_folder_to_channel_and_back(self, live: Live, app_id: str) -> None:
        folder, files = web_folder(live.cwd)
        result = live.cli(
            "bundle", "upload", "--app-id", app_id, "--version", "1.0.0",
            "--channel", "production", "--create-channel", str(folder),
        )  # fmt: skip
        lines = summary(result)
        data = downloaded(live, app_id, "1.0.0")
        size = f"{len(data) / 1024:.1f} KiB"
        # No bar without a terminal: a line at the start and one at the end (a fast upload).
        progress, notes = result.stderr.splitlines()[:2], result.stderr.splitlines()[2:]
        assert progress[0] == f"progress: {app_id} 1.0.0  0 B of {size} (0%)"
        assert progress[1].startswith(f"progress: {app_id} 1.0.0  {size} of {size} (100%) in ")
        assert [note.split(":")[0] for note in notes] == ["note", "note"]
        checksum = hashlib.sha256(data).hexdigest()
        assert lines == [
            f"uploaded {app_id} 1.0.0",
            f"  size     {len(data) / 1024:.1f} KiB ({len(data)} bytes)",
            f"  sha256   {checksum}",
            "  channel  production (created)",
        ]
        assert entries(data) == files
        assert channel_version(live, app_id, "production") == "1.0.0"

    def test_a_zip_is_uploaded_as_is(self, live: Live, app_id: str) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("www/index.html", "<html>nested</html>")
            archive.writestr("www/main.js", "1")
        path = live.cwd / f"{app_id}.zip"
        path.write_bytes(buffer.getvalue())
        result = live.cli(
            "bundle", "upload", "--app-id", app_id, "--version", "2.0.0-beta.1", "--json",
            "--no-channel", str(path),
        )  # fmt: skip
        summary(result)
        assert json.loads(result.stdout) == {
            "app_id": app_id,
            "version": "2.0.0-beta.1",
            "size": len(buffer.getvalue()),
            "checksum": hashlib.sha256(buffer.getvalue()).hexdigest(),
            "channel": None,
            "channel_created": None,
            "channel_source": None,
            "previous_version": None,
            "interruptions": 0,
            "warning": None,
        }
        assert downloaded(live, app_id, "2.0.0-beta.1") == buffer.getvalue()

    def test_an_existing_channel_moves_to_the_new_bundle(self, live: Live, app_id: str) -> None:
        for version in ("1.0.0", "1.0.1"):
            folder, _ = web_folder(live.cwd, filler=1000)
            result = live.cli(
                "bundle", "upload", "--app-id", app_id, "--version", version,
                "--channel", "beta", "--create-channel", str(folder),
            )  # fmt: skip
            state = "created" if version == "1.0.0" else "updated, was 1.0.0"
            assert summary(result)[-1] == f"  channel  beta ({state})"
            assert channel_version(live, app_id, "beta") == version

    def test_options_on_the_command_line(self, live: Live, app_id: str) -> None:
        folder, files = web_folder(live.cwd, filler=1000)
        env = {**live.env}
        result = run_cli(
            "bundle", "upload", "--api", live.server.base_url + "/", "--apikey", live.key,
            "--app-id", app_id, "--version", "3.1.4", str(folder),
            env=env, cwd=live.cwd,
        )  # fmt: skip
        assert summary(result)[0] == f"uploaded {app_id} 3.1.4"
        assert entries(downloaded(live, app_id, "3.1.4")) == files


class TestInterruptedUpload:
    def test_connection_cut_mid_chunk_twice_then_resumed(
        self, live: Live, app_id: str, proxy: CuttingProxy
    ) -> None:
        folder, files = web_folder(live.cwd, filler=6 * CHUNK)
        proxy.arm(cut_after=CHUNK // 2, cuts=2)
        result = live.cli(
            "bundle", "upload", "--app-id", app_id, "--version", "1.0.0",
            "--channel", "production", "--create-channel", "--chunk-size", str(CHUNK), "--json",
            str(folder),
        )  # fmt: skip
        summary(result)
        assert proxy.cut_done == 2
        warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 2, describe(result)
        assert all(line.startswith("warning: upload interrupted at byte ") for line in warnings)
        outcome = json.loads(result.stdout)
        assert outcome["interruptions"] == 2
        data = downloaded(live, app_id, "1.0.0")
        assert hashlib.sha256(data).hexdigest() == outcome["checksum"]
        assert len(data) == outcome["size"]
        assert entries(data) == files
        assert channel_version(live, app_id, "production") == "1.0.0"

    def test_a_cut_on_every_try_ends_with_a_hint_and_the_next_run_resumes(
        self, live: Live, app_id: str, proxy: CuttingProxy
    ) -> None:
        folder, files = web_folder(live.cwd, filler=4 * CHUNK)
        args = (
            "bundle", "upload", "--app-id", app_id, "--version", "1.0.0",
            "--chunk-size", str(CHUNK), "--retries", "1", str(folder),
        )  # fmt: skip
        proxy.arm(cut_after=CHUNK // 2, cuts=1000)
        failed = live.cli(*args)
        assert failed.returncode == 1, describe(failed)
        last = failed.stderr.splitlines()[-1]
        assert last.startswith("error: upload interrupted at byte "), describe(failed)
        assert last.endswith("; run the same command again to resume it"), describe(failed)

        proxy.arm(cuts=0)
        resumed = live.cli(*args)
        summary(resumed)
        assert resumed.stderr.startswith("warning: resuming the unfinished upload of 1.0.0 at ")
        assert entries(downloaded(live, app_id, "1.0.0")) == files


class TestUploadErrors:
    """One line on stderr, exit code 1, nothing on stdout."""

    def upload(self, live: Live, app_id: str, version: str = "1.0.0", **cli: Any) -> Any:
        folder, _ = web_folder(live.cwd, filler=100)
        return live.cli(
            "bundle", "upload", "--app-id", app_id, "--version", version, str(folder), **cli
        )

    def test_wrong_key(self, live: Live, app_id: str) -> None:
        result = self.upload(live, app_id, key=str(uuid.uuid4()))
        assert error_line(result) == "error: invalid API key"

    def test_unknown_app(self, live: Live) -> None:
        result = self.upload(live, "com.e2e.nosuchapp")
        assert error_line(result) == (
            "error: app com.e2e.nosuchapp not found or not accessible with this key"
        )

    def test_another_organizations_app_looks_unknown(self, live: Live, app_id: str) -> None:
        created = run_cli_warm("create-user", f"{app_id}@example.com", env=live.env, cwd=live.cwd)
        other = account_of(created)
        result = self.upload(live, app_id, key=other["apikey"])
        assert error_line(result) == (
            f"error: app {app_id} not found or not accessible with this key"
        )
        with live.http() as http:
            listed = http.get("/bundle", params={"app_id": app_id})
        assert listed.json() == []

    def test_existing_version(self, live: Live, app_id: str) -> None:
        summary(self.upload(live, app_id))
        result = self.upload(live, app_id)
        assert error_line(result) == f"error: version 1.0.0 already exists for {app_id}"

    def test_version_that_is_not_semver(self, live: Live, app_id: str) -> None:
        result = self.upload(live, app_id, version="v1")
        assert error_line(result) == "error: 'v1' is not a semantic version (expected e.g. 1.2.3)"

    def test_a_key_that_may_only_upload_cannot_set_a_channel(self, live: Live, app_id: str) -> None:
        with live.http() as http:
            created = http.post("/apikey", json={"name": "ci", "mode": "upload"})
        assert created.status_code == 200, created.text
        folder, _ = web_folder(live.cwd, filler=100)
        result = live.cli(
            "bundle", "upload", "--app-id", app_id, "--version", "1.0.0", "--channel", "beta",
            str(folder), key=created.json()["key"],
        )  # fmt: skip
        assert error_line(result) == (
            "error: this API key may not set channel beta (it needs a key of mode all or write); "
            "nothing was uploaded"
        )
        with live.http() as http:
            assert http.get("/bundle", params={"app_id": app_id}).json() == []

    def test_server_not_listening(self, live: Live, app_id: str) -> None:
        api = f"http://127.0.0.1:{free_port()}"
        result = self.upload(live, app_id, api=api)
        assert error_line(result) == (
            f"error: cannot reach the server at {api}: All connection attempts failed"
        )


class TestList:
    def test_table_newest_first(self, live: Live, app_id: str) -> None:
        for version in ("1.0.0", "1.1.0"):
            folder, _ = web_folder(live.cwd, filler=100)
            summary(live.cli("bundle", "upload", "--app-id", app_id, "--version", version,
                             str(folder)))  # fmt: skip
        result = live.cli("bundle", "list", "--app-id", app_id, "--json")
        summary(result)
        rows = json.loads(result.stdout)
        assert [row["name"] for row in rows] == ["1.1.0", "1.0.0"]
        table = live.cli("bundle", "list", "--app-id", app_id)
        lines = [line.split() for line in summary(table)]
        assert lines[0] == ["version", "created_at", "size", "checksum", "storage"]
        assert [line[0] for line in lines[2:]] == ["1.1.0", "1.0.0"]
        for line, row in zip(lines[2:], rows, strict=True):
            assert line[1:3] == row["created_at"][:19].split("T")
            assert line[5:] == [row["checksum"][:12], row["storage_provider"]]
        assert table.stderr == ""

    def test_no_bundles(self, live: Live, app_id: str) -> None:
        result = live.cli("bundle", "list", "--app-id", app_id)
        assert (result.returncode, result.stdout, result.stderr) == (
            0, "", f"no bundles for {app_id}\n"
        )  # fmt: skip

    def test_wrong_key(self, live: Live, app_id: str) -> None:
        result = live.cli("bundle", "list", "--app-id", app_id, key=str(uuid.uuid4()))
        assert error_line(result) == "error: invalid API key"

    def test_unknown_app(self, live: Live) -> None:
        result = live.cli("bundle", "list", "--app-id", "com.e2e.nosuchapp")
        assert error_line(result) == (
            "error: app com.e2e.nosuchapp not found or not accessible with this key"
        )


class TestDelete:
    def test_deleted_bundle_is_gone_and_never_served(self, live: Live, app_id: str) -> None:
        folder, _ = web_folder(live.cwd, filler=100)
        summary(live.cli("bundle", "upload", "--app-id", app_id, "--version", "1.0.0",
                         str(folder)))  # fmt: skip
        result = live.cli("bundle", "delete", "--app-id", app_id, "--version", "1.0.0")
        assert summary(result) == [f"deleted {app_id} 1.0.0"]
        listed = live.cli("bundle", "list", "--app-id", app_id, "--json")
        assert json.loads(listed.stdout) == []
        with live.http() as http:
            link = http.post("/files/download_link", json={"app_id": app_id, "version": "1.0.0"})
        assert link.status_code == 404, link.text
        again = live.cli("bundle", "delete", "--app-id", app_id, "--version", "1.0.0")
        assert error_line(again) == f"error: version 1.0.0 not found for {app_id}"

    def test_unknown_version(self, live: Live, app_id: str) -> None:
        result = live.cli("bundle", "delete", "--app-id", app_id, "--version", "9.9.9")
        assert error_line(result) == f"error: version 9.9.9 not found for {app_id}"

    def test_wrong_key(self, live: Live, app_id: str) -> None:
        result = live.cli(
            "bundle", "delete", "--app-id", app_id, "--version", "1.0.0", key=str(uuid.uuid4())
        )
        assert error_line(result) == "error: invalid API key"

    def test_unknown_app(self, live: Live) -> None:
        result = live.cli("bundle", "delete", "--app-id", "com.e2e.nosuchapp", "--version", "1.0.0")
        assert error_line(result) == (
            "error: app com.e2e.nosuchapp not found or not accessible with this key"
        )
