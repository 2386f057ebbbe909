"""SIGTERM on a real ``capgo-server serve``: requests in flight finish, and what they recorded
(bandwidth, device activity) is in the database after the process exits."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import uuid
from pathlib import Path

import httpx

from tests.statistics.support import device_body
from tests.test_cli import account_of, cli_env, run_cli
from tests.test_serve import CLEAN_EXITS, SHUTDOWN_SECONDS, running_server

APP_ID = "com.example.shutdown"
#: Large enough that the download is still in flight when the signal arrives (socket buffers
#: hold a few MB at most, and the client reads slowly).
BUNDLE_BYTES = 24 * 1024 * 1024
DEVICES = [str(uuid.UUID(int=n + 1)) for n in range(20)]


def test_sigterm_finishes_a_download_in_flight_and_keeps_what_was_recorded(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env = cli_env(data_dir)
    web = tmp_path / "dist"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>app</title>")
    (web / "blob.bin").write_bytes(os.urandom(BUNDLE_BYTES))

    with running_server(env, tmp_path) as server:
        account = account_of(run_cli("create-user", "ops@example.com", env=env, cwd=tmp_path))
        owner = {"authorization": account["apikey"]}
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            created = http.post(
                "/app",
                json={"app_id": APP_ID, "name": "Shutdown", "owner_org": account["org_id"]},
                headers=owner,
            )
            assert created.status_code == 200, created.text
            uploaded = run_cli(
                "bundle", "upload", "--api", server.base_url, "--apikey", account["apikey"],
                "--app-id", APP_ID, "--version", "1.0.1", str(web),
                env=env, cwd=tmp_path, timeout=120,
            )  # fmt: skip
            assert uploaded.returncode == 0, uploaded.stderr
            link = http.post(
                "/files/download_link", json={"app_id": APP_ID, "version": "1.0.1"}, headers=owner
            )
            assert link.status_code == 200, link.text
            url = httpx.URL(link.json()["url"])
            download_path = url.raw_path.decode()
            for device_id in DEVICES:
                checked = http.post("/updates", json=device_body(device_id, APP_ID))
                assert checked.status_code == 200, checked.text

            digest = hashlib.sha256()
            received = 0
            with http.stream("GET", download_path) as response:
                assert response.status_code == 200
                chunks = response.iter_bytes(64 * 1024)
                first = next(chunks)
                digest.update(first)
                received += len(first)
                server.process.send_signal(signal.SIGTERM)
                for chunk in chunks:
                    digest.update(chunk)
                    received += len(chunk)
        code = server.process.wait(timeout=SHUTDOWN_SECONDS)

    assert code in CLEAN_EXITS, server.output()
    assert "Application shutdown complete" in server.output()
    assert "Traceback" not in server.output()
    bundle_file = next(data_dir.glob(f"bundles/orgs/*/apps/{APP_ID}/1.0.1.zip"))
    assert received == bundle_file.stat().st_size
    assert digest.hexdigest() == hashlib.sha256(bundle_file.read_bytes()).hexdigest()
    with sqlite3.connect(data_dir / "capgo.db") as db:
        bandwidth = db.execute(
            "SELECT SUM(bandwidth) FROM daily_bandwidth WHERE app_id = ?", (APP_ID,)
        ).fetchone()[0]
        active = db.execute(
            "SELECT COUNT(DISTINCT device_id) FROM device_activity WHERE app_id = ?", (APP_ID,)
        ).fetchone()[0]
    assert bandwidth == received, server.output()
    assert active == len(DEVICES)
