"""The data directory's secrets are the server's user's alone (``capgo_server.private_files``):
the SQLite database (every key not stored hashed) and its companions, ``.secret``, stored
bundles and upload parts are 0600, their folders 0700, whatever the umask the server is started
with; an install made before is tightened when a server command starts.
"""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from capgo_server.db.engine import make_engine
from capgo_server.settings import Settings
from tests.conftest import Account
from tests.files.support import (
    OCTETS,
    TUS,
    UPLOADS,
    Tus,
    bundle_path,
    create_app_row,
    metadata,
    sha256,
    web_bundle,
)
from tests.test_cli import account_of, cli_env, describe
from tests.test_serve import running_server
from tests.warm_cli import run_cli_warm

APP_ID = "com.private.app"
#: The umask most systems start processes with: files 0644, folders 0755 unless asked.
USUAL_UMASK = 0o022


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The commands run with the usual umask (they inherit this process's)."""
    previous = os.umask(USUAL_UMASK)
    yield
    os.umask(previous)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def modes_under(root: Path) -> dict[str, int]:
    """Every path under ``root`` (itself as ``.``) and its permission bits."""
    modes = {".": mode_of(root)}
    for path in root.rglob("*"):
        modes[str(path.relative_to(root))] = mode_of(path)
    return modes


def assert_owner_only(root: Path) -> dict[str, int]:
    modes = modes_under(root)
    loose = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o700 if (root / name).is_dir() else 0o600)
    }
    assert not loose, f"not owner-only (files 0600, folders 0700): {loose}"
    return modes


def upload(http: httpx.Client, filename: str, data: bytes, *, finish: bool = True) -> str:
    """A tus upload of ``data`` as ``filename``; only its first half unless ``finish``."""
    created = http.post(
        UPLOADS,
        headers={
            **TUS,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(filename=filename, checksum=sha256(data)),
        },
    )
    assert created.status_code == 201, created.text
    # On CAPGO_PUBLIC_URL, which this server does not set: the path is what counts here.
    location = httpx.URL(created.headers["location"]).path
    chunk = data if finish else data[: len(data) // 2]
    patched = http.patch(
        location,
        content=chunk,
        headers={**TUS, "Upload-Offset": "0", "Content-Type": OCTETS},
    )
    assert patched.status_code == 204, patched.text
    return location


class TestAFreshInstall:
    def test_serve_and_create_user_keep_every_secret_to_the_owner(self, tmp_path: Path) -> None:
        data_dir = tmp_path / "data"
        env = cli_env(data_dir)
        with running_server(env, tmp_path) as server:
            account = account_of(
                run_cli_warm("create-user", "owner@example.com", env=env, cwd=tmp_path)
            )
            headers = {"authorization": account["apikey"]}
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
                created = http.post(
                    "/app",
                    json={"app_id": APP_ID, "name": "Private", "owner_org": account["org_id"]},
                )
                assert created.status_code == 200, created.text
                bundles = f"orgs/{account['org_id']}/apps/{APP_ID}"
                upload(http, f"{bundles}/1.0.0.zip", web_bundle())
                pending = upload(http, f"{bundles}/1.0.1.zip", web_bundle(), finish=False)
            # While the server runs: the database with its WAL and shared memory, the
            # development secret, a stored bundle and the part of an unfinished upload.
            modes = assert_owner_only(data_dir)
        upload_id = pending.rsplit("/", 1)[1]
        for secret in ("capgo.db", "capgo.db-wal", "capgo.db-shm", ".secret"):
            assert modes[secret] == 0o600
        assert modes[f"bundles/{bundles}/1.0.0.zip"] == 0o600
        assert modes[f"bundles/{bundles}"] == 0o700
        parts = [name for name in modes if name.startswith(f"bundles/uploads/{upload_id}/")]
        assert parts, sorted(modes)
        assert modes["."] == modes["bundles"] == modes[f"bundles/uploads/{upload_id}"] == 0o700

    def test_a_sqlite_database_outside_the_data_dir_is_owner_only(self, tmp_path: Path) -> None:
        database = tmp_path / "elsewhere" / "capgo.db"
        database.parent.mkdir()
        env = cli_env(tmp_path / "data", CAPGO_DATABASE_URL=f"sqlite+aiosqlite:///{database}")
        migrated = run_cli_warm("migrate", env=env, cwd=tmp_path)
        assert migrated.returncode == 0, describe(migrated)
        account_of(run_cli_warm("create-user", "owner@example.com", env=env, cwd=tmp_path))
        assert mode_of(database) == 0o600


class TestTheAppServedOtherwise:
    """Embedded, or under plain uvicorn: no server command restricted the umask."""

    async def test_stored_bundles_and_upload_parts_are_owner_only(
        self, client: httpx.AsyncClient, alice: Account, settings: Settings
    ) -> None:
        tus = Tus(client, alice.headers)
        await create_app_row(client, alice, APP_ID)
        stored = await tus.upload(bundle_path(alice, APP_ID, "1.0.0"), web_bundle())
        assert stored.status_code == 204, stored.text
        data = web_bundle()
        pending = await tus.start(bundle_path(alice, APP_ID, "1.0.1"), len(data))
        patched = await tus.patch(pending, 0, data[:1000])
        assert patched.status_code == 204, patched.text
        modes = assert_owner_only(settings.data_dir)
        upload_id = pending.rsplit("/", 1)[1]
        assert any(name.startswith(f"bundles/uploads/{upload_id}/") for name in modes), modes
        assert modes[f"bundles/{bundle_path(alice, APP_ID, '1.0.0')}"] == 0o600

    async def test_the_development_secret_and_the_sqlite_database_are_owner_only(
        self, tmp_path: Path
    ) -> None:
        settings = Settings(data_dir=tmp_path / "data")
        assert len(settings.resolved_secret()) >= 32
        engine = make_engine(settings.resolved_database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text("CREATE TABLE keys (key TEXT)"))
                await connection.execute(text("INSERT INTO keys VALUES ('a key')"))
            # While it is open: the write-ahead log and its shared memory beside it.
            assert modes_under(settings.data_dir) == {
                ".": 0o700,
                ".secret": 0o600,
                "capgo.db": 0o600,
                "capgo.db-wal": 0o600,
                "capgo.db-shm": 0o600,
            }
        finally:
            await engine.dispose()


class TestAnExistingInstall:
    def test_serve_tightens_what_an_older_version_left_readable(self, tmp_path: Path) -> None:
        data_dir = tmp_path / "data"
        env = cli_env(data_dir)
        migrated = run_cli_warm("migrate", env=env, cwd=tmp_path)
        assert migrated.returncode == 0, describe(migrated)
        # What an install made under the usual umask looks like.
        stored = data_dir / "bundles" / "orgs" / str(uuid.uuid4()) / "apps" / APP_ID / "1.0.0.zip"
        stored.parent.mkdir(parents=True)
        stored.write_bytes(web_bundle(100))
        (data_dir / ".secret").write_text("s" * 48)
        (data_dir / "capgo.db-wal").write_bytes(b"")
        for path in (data_dir, *data_dir.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)

        with running_server(env, tmp_path) as server:
            assert_owner_only(data_dir)
        assert "restricted 10 files and folders under" in server.output()
