"""``capgo-server serve`` as a real server process, end to end."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.test_cli import (
    CLI,
    UNREACHABLE_PG_URL,
    account_of,
    cli_env,
    error_line,
    is_uuid,
    run_cli,
)

#: How long a started server may take to answer /ok. It answers in a second or two when idle; the
#: margin is for a loaded machine (two test workers, a CI host), where 20 s was seen to run out.
#: A limit on waiting, not a speed target.
STARTUP_SECONDS = 90
SHUTDOWN_SECONDS = 15
# uvicorn shuts down gracefully on SIGTERM, then re-raises the signal.
CLEAN_EXITS = {0, -signal.SIGTERM}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then the exit code (asserting it exits in time)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"server did not exit {SHUTDOWN_SECONDS}s after SIGTERM:\n{self.output()}")


def wait_until_ok(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"server exited with {server.process.returncode}:\n{server.output()}")
        try:
            response = httpx.get(f"{server.base_url}/ok", timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ok"}
        return
    pytest.fail(f"/ok did not answer within {STARTUP_SECONDS}s:\n{server.output()}")


@contextmanager
def running_server(
    env: dict[str, str], cwd: Path, *options: str, port: int | None = None
) -> Iterator[Server]:
    """``capgo-server serve`` on ``port`` (default: a free one), up and answering /ok; always
    killed afterwards."""
    port = port or free_port()
    log = cwd / f"serve-{port}.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(CLI), "serve", "--host", "127.0.0.1", "--port", str(port), *options],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = Server(process=process, base_url=f"http://127.0.0.1:{port}", log=log)
    try:
        wait_until_ok(server)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=SHUTDOWN_SECONDS)


def assert_stopped_cleanly(server: Server) -> None:
    code = server.stop()
    assert code in CLEAN_EXITS, f"exit {code}:\n{server.output()}"
    assert "Application shutdown complete" in server.output()
    assert "Traceback" not in server.output()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / "data"


@pytest.fixture
def env(data_dir: Path) -> dict[str, str]:
    return cli_env(data_dir)


class TestServe:
    def test_end_to_end_on_a_fresh_data_dir(
        self, env: dict[str, str], tmp_path: Path, data_dir: Path
    ) -> None:
        assert not data_dir.exists()
        with running_server(env, tmp_path) as server:
            # serve migrated the database by itself, and kept a development secret.
            assert (data_dir / "capgo.db").is_file()
            secret_file = data_dir / ".secret"
            assert secret_file.is_file()
            assert secret_file.stat().st_mode & 0o077 == 0
            assert len(secret_file.read_text().strip()) >= 32

            account = account_of(
                run_cli(
                    "create-user", "alice@example.com", "--org-name", "Acme", env=env, cwd=tmp_path
                )
            )
            owner = {"authorization": account["apikey"]}
            with httpx.Client(base_url=server.base_url, timeout=10) as http:
                assert http.get("/organization").status_code == 401
                orgs = http.get("/organization", headers=owner)
                assert orgs.status_code == 200, orgs.text
                assert [(o["id"], o["name"]) for o in orgs.json()] == [(account["org_id"], "Acme")]

                created = http.post("/organization", json={"name": "Second Org"}, headers=owner)
                assert created.status_code == 200, created.text
                assert created.json()["status"] == "Organization created"
                second_id = created.json()["id"]
                assert is_uuid(second_id)

                orgs = http.get("/organization", headers=owner)
                assert orgs.status_code == 200, orgs.text
                assert {(o["id"], o["name"]) for o in orgs.json()} == {
                    (account["org_id"], "Acme"),
                    (second_id, "Second Org"),
                }

                members = http.get(
                    "/organization/members", params={"orgId": second_id}, headers=owner
                )
                assert members.status_code == 200, members.text
                assert [(m["uid"], m["role"]) for m in members.json()] == [
                    (account["user_id"], "super_admin")
                ]

                key = http.post("/apikey", json={"name": "ci", "mode": "read"}, headers=owner)
                assert key.status_code == 200, key.text
                assert key.json()["mode"] == "read"
                assert key.json()["name"] == "ci"
                reader = {"authorization": key.json()["key"]}
                assert is_uuid(key.json()["key"])

                keys = http.get("/apikey", headers=owner)
                assert keys.status_code == 200, keys.text
                assert sorted(k["mode"] for k in keys.json()) == ["all", "read"]

                read_orgs = http.get("/organization", headers=reader)
                assert read_orgs.status_code == 200, read_orgs.text
                assert len(read_orgs.json()) == 2
                refused = http.post("/organization", json={"name": "Nope Org"}, headers=reader)
                assert refused.status_code == 400, refused.text
                assert refused.json()["error"] == "cannot_create_org"

            assert_stopped_cleanly(server)

    def test_restart_keeps_users_and_the_secret(
        self, env: dict[str, str], tmp_path: Path, data_dir: Path
    ) -> None:
        with running_server(env, tmp_path) as server:
            account = account_of(run_cli("create-user", "bob@example.com", env=env, cwd=tmp_path))
            assert_stopped_cleanly(server)
        secret = (data_dir / ".secret").read_text()

        with running_server(env, tmp_path) as server:
            with httpx.Client(base_url=server.base_url, timeout=10) as http:
                orgs = http.get("/organization", headers={"authorization": account["apikey"]})
                assert orgs.status_code == 200, orgs.text
                assert [o["id"] for o in orgs.json()] == [account["org_id"]]
            assert_stopped_cleanly(server)
        assert (data_dir / ".secret").read_text() == secret

    def test_several_workers(self, env: dict[str, str], tmp_path: Path) -> None:
        with running_server(env, tmp_path, "--workers", "2") as server:
            with httpx.Client(base_url=server.base_url, timeout=10) as http:
                for _ in range(5):
                    assert http.get("/ok").json() == {"status": "ok"}
            assert_stopped_cleanly(server)

    @pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
    def test_several_workers_share_connections_opened_together(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        """Kept-alive connections opened at once (a load balancer's pool) reach every worker,
        not just the one that woke first (``capgo_server.serving.ListenerPerWorker``)."""
        with running_server(env, tmp_path, "--workers", "2") as server:
            port = int(server.base_url.rsplit(":", 1)[1])
            wait_for_startups(server, 2)  # a worker still starting does not listen yet
            # The connections wait in the kernel while the workers are stopped, so each worker
            # wakes to find all of them; with one shared socket, the first takes every one.
            workers = children(server.process.pid)
            for pid in workers:
                os.kill(pid, signal.SIGSTOP)
            try:
                clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
            finally:
                for pid in workers:
                    os.kill(pid, signal.SIGCONT)
            try:
                for client in clients:
                    client.sendall(b"GET /ok HTTP/1.1\r\nHost: capgo.test\r\n\r\n")
                for client in clients:
                    assert client.recv(65536).startswith(b"HTTP/1.1 200 OK")
                held = connections_held(workers, port)
            finally:
                for client in clients:
                    client.close()
            assert sum(held.values()) == 32, held
            workers_holding = [count for count in held.values() if count]
            # Each worker holds some (16 each on average; all 32 on one: odds of 1 in 2^31).
            assert len(workers_holding) == 2, held
            assert_stopped_cleanly(server)

    def test_production_with_a_secret_starts(self, tmp_path: Path, data_dir: Path) -> None:
        env = cli_env(data_dir, CAPGO_ENV="production", CAPGO_SECRET="s" * 48)
        with running_server(env, tmp_path) as server:
            assert not (data_dir / ".secret").exists()
            assert_stopped_cleanly(server)


def wait_for_startups(server: Server, workers: int) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while server.output().count("Application startup complete") < workers:
        if time.monotonic() > deadline:
            pytest.fail(f"{workers} workers did not start:\n{server.output()}")
        time.sleep(0.1)


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def connections_held(processes: list[int], port: int) -> dict[int, int]:
    """How many established TCP connections on local ``port`` each of ``processes`` holds."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                established.add(f"socket:[{fields[9]}]")
    return {
        process: sum(
            1 for fd in Path(f"/proc/{process}/fd").iterdir() if _target(fd) in established
        )
        for process in processes
    }


def _target(fd: Path) -> str:
    try:
        return str(fd.readlink())
    except OSError:  # closed since the directory was listed
        return ""


class TestPublicUrl:
    """Devices and clients are handed URLs on the public URL, which defaults to the address
    ``serve`` listens on (the request's ``Host`` is the client's word, never used)."""

    def test_upload_urls_follow_the_served_address(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        with running_server(env, tmp_path) as server:
            account = account_of(run_cli("create-user", "ci@example.com", env=env, cwd=tmp_path))
            owner = {"authorization": account["apikey"]}
            with httpx.Client(base_url=server.base_url, timeout=10) as http:
                app = {
                    "app_id": "com.example.served",
                    "name": "App",
                    "owner_org": account["org_id"],
                }
                assert http.post("/app", json=app, headers=owner).status_code == 200
                path = f"orgs/{account['org_id']}/apps/com.example.served/1.0.0.zip"
                created = http.post(
                    "/files/upload/attachments/",
                    headers={
                        **owner,
                        "Host": "attacker.example",
                        "Tus-Resumable": "1.0.0",
                        "Upload-Length": "10",
                        "Upload-Metadata": "filename " + base64.b64encode(path.encode()).decode(),
                    },
                )
            assert created.status_code == 201, created.text
            assert created.headers["Location"].startswith(f"{server.base_url}/files/upload/")
            assert "warning" not in server.output()

    def test_listening_beyond_loopback_without_a_public_url_warns(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        with running_server(env, tmp_path, "--host", "0.0.0.0") as server:
            output = server.output()
        assert "warning: serving on 0.0.0.0 but devices will be given URLs on" in output
        assert "set CAPGO_PUBLIC_URL" in output
        public = {**env, "CAPGO_PUBLIC_URL": "https://updates.example.com"}
        with running_server(public, tmp_path, "--host", "0.0.0.0") as server:
            assert "CAPGO_PUBLIC_URL" not in server.output()


class TestServeFailures:
    @pytest.mark.parametrize("workers", ["1", "2"])
    def test_a_port_in_use_fails_fast(
        self, workers: str, env: dict[str, str], tmp_path: Path
    ) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = str(taken.getsockname()[1])
            result = run_cli(
                "serve", "--host", "127.0.0.1", "--port", port, "--workers", workers,
                env=env, cwd=tmp_path, timeout=30,
            )  # fmt: skip
        assert result.returncode == 3, result.stdout + result.stderr
        assert "address already in use" in (result.stdout + result.stderr).lower()

    @pytest.mark.parametrize("secret", [None, "", "changeme", " CHANGEME ", "secret"])
    def test_production_without_a_real_secret_fails_fast(
        self, secret: str | None, tmp_path: Path, data_dir: Path
    ) -> None:
        env = cli_env(data_dir, CAPGO_ENV="production", CAPGO_SECRET=secret)
        started = time.monotonic()
        result = run_cli("serve", "--port", str(free_port()), env=env, cwd=tmp_path, timeout=30)
        line = error_line(result)
        assert "CAPGO_SECRET" in line
        assert time.monotonic() - started < 15
        # It refused before migrating or generating a secret.
        assert not (data_dir / "capgo.db").exists()
        assert not (data_dir / ".secret").exists()

    def test_unreachable_database_fails_fast(self, tmp_path: Path, data_dir: Path) -> None:
        env = cli_env(
            data_dir,
            CAPGO_ENV="production",
            CAPGO_SECRET="s" * 48,
            CAPGO_DATABASE_URL=UNREACHABLE_PG_URL,
        )
        result = run_cli("serve", "--port", str(free_port()), env=env, cwd=tmp_path, timeout=30)
        line = error_line(result)
        assert "migrate" in line
        assert "127.0.0.1:1" in line
        assert "hunter2" not in line

    @pytest.mark.parametrize("options", [["--workers", "0"], ["--port", "http"]])
    def test_bad_options_are_usage_errors(
        self, options: list[str], env: dict[str, str], tmp_path: Path, data_dir: Path
    ) -> None:
        result = run_cli("serve", *options, env=env, cwd=tmp_path, timeout=30)
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        assert options[0] in result.stderr
        assert "Traceback" not in result.stderr
        assert not (data_dir / "capgo.db").exists()
