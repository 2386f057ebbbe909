"""Slow clients against a real ``serve`` process: they hold no database connection, the server
closes their connections after the header and body timeouts, and a pool exhausted anyway answers
503 with ``Retry-After`` instead of stalling (docs/hardening/slow-clients.md)."""

from __future__ import annotations

import asyncio
import base64
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from capgo_server.db.engine import make_engine
from tests.live import LiveServer, live_server

APP_ID = "com.slow.app"
DEVICE = "00009a6b-eefe-490a-9c60-8e965132ae51"
#: More slow clients than the unfixed server's default pool holds (5 + 10 overflow).
SLOW_CLIENTS = 17
#: The pool of the servers under test: far fewer connections than slow clients.
SMALL_POOL = {"CAPGO_DB_POOL_SIZE": "2", "CAPGO_DB_MAX_OVERFLOW": "0"}
#: "Answered at once": a stalled server would make these wait for a connection (30 s).
PROMPT_SECONDS = 1.0


# --- the app a device asks about -------------------------------------------------------------


def seed_app(live: LiveServer) -> None:
    """An app with bundle 1.0.1 on its public ``production`` channel, and a private ``beta``."""
    with live.http() as http:
        for path, body in [
            ("/app", {"app_id": APP_ID, "name": "Slow", "owner_org": live.org_id}),
            ("/bundle", _bundle("1.0.0")),
            ("/bundle", _bundle("1.0.1")),
            ("/channel", _channel("production", "1.0.1", public=True)),
            ("/channel", _channel("beta", "1.0.0", public=False)),
        ]:
            response = http.post(path, json=body)
            assert response.status_code == 200, response.text


def _bundle(version: str) -> dict[str, Any]:
    url = f"https://cdn.example.com/{version}.zip"
    return {"app_id": APP_ID, "version": version, "external_url": url, "checksum": "a" * 64}


def _channel(name: str, version: str, *, public: bool) -> dict[str, Any]:
    return {
        "app_id": APP_ID,
        "channel": name,
        "version": version,
        "public": public,
        "android": True,
        "ios": True,
        "allow_device_self_set": True,
        "allow_emulator": True,
        "allow_device": True,
        "allow_dev": True,
        "allow_prod": True,
    }


def device_body(**fields: Any) -> dict[str, Any]:
    return {
        "app_id": APP_ID,
        "device_id": DEVICE,
        "platform": "android",
        "version_name": "1.0.0",
        "version_build": "1.0.0",
        "version_code": "1",
        "version_os": "13",
        "plugin_version": "7.0.0",
        "is_emulator": False,
        "is_prod": True,
        "custom_id": "",
        **fields,
    }


def read_only_key(live: LiveServer) -> str:
    with live.http() as http:
        response = http.post("/apikey", json={"name": "reader", "mode": "read"})
    assert response.status_code == 200, response.text
    key: str = response.json()["key"]
    return key


def timed(send: Any, *args: Any, **kwargs: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = send(*args, **kwargs)
    return response, time.monotonic() - started


def assert_others_answered_promptly(live: LiveServer, other_tenant_key: str) -> None:
    """Another tenant's request, a device's ``/updates`` and its ``PUT /channel_self`` are
    answered correctly, each within :data:`PROMPT_SECONDS`."""
    with httpx.Client(base_url=live.base_url, timeout=PROMPT_SECONDS) as http:
        response, took = timed(
            http.get, "/organization", headers={"authorization": other_tenant_key}
        )
        assert response.status_code == 200, response.text
        assert [org["name"] for org in response.json()] == ["other's organization"]
        assert took < PROMPT_SECONDS

        response, took = timed(http.post, "/updates", json=device_body())
        assert response.status_code == 200, response.text
        assert response.json()["version"] == "1.0.1"
        assert response.json()["url"] == "https://cdn.example.com/1.0.1.zip"
        assert took < PROMPT_SECONDS

        response, took = timed(http.put, "/channel_self", json=device_body())
        assert response.status_code == 200, response.text
        assert response.json()["channel"] == "production"
        assert took < PROMPT_SECONDS


# --- raw connections ------------------------------------------------------------------------


def open_request(port: int, head: str, first_bytes: bytes = b"") -> socket.socket:
    """A connection that has sent ``head`` (a request line and headers, as given) and then
    ``first_bytes``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(head.encode() + first_bytes)
    return sock


def request_head(method: str, path: str, length: int, **headers: str) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {length}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n"


def closed_by_server_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``sock`` within ``seconds`` (whatever it sent before)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if sock.recv(65536) == b"":
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
    return False


@contextmanager
def trickling(socks: list[socket.socket], every: float = 0.5) -> Iterator[list[int]]:
    """Each connection sends one more body byte (JSON whitespace) every ``every`` seconds;
    yields how many each has sent."""
    stop = threading.Event()
    sent = [0] * len(socks)

    def trickle() -> None:
        while not stop.wait(every):
            for n, sock in enumerate(socks):
                try:
                    sock.sendall(b" ")
                    sent[n] += 1
                except OSError:
                    pass

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield sent
    finally:
        stop.set()
        thread.join()


def response_of(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body of the one response on ``sock`` (closed by the caller)."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [
        line.split(b":")[1]
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    ]
    length = int(lengths[0]) if lengths else 0  # a 204 has none
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ")[1]), body


# --- tests -----------------------------------------------------------------------------------


def test_slow_json_bodies_hold_no_database_connection(database_url: str, tmp_path: Path) -> None:
    """More clients than the pool has connections, each authenticated with a read-only key and
    trickling a JSON body, leave every other request answered at once."""
    with live_server(database_url, tmp_path, **SMALL_POOL) as live:
        seed_app(live)
        other = live.create_user("other@example.com")
        reader = read_only_key(live)
        body = b'{"app_id": "%s", "version": "1.0.1"}' % APP_ID.encode()
        padded = 200
        head = request_head(
            "POST",
            "/files/download_link",
            len(body) + padded,
            authorization=reader,
            content_type="application/json",
        )
        socks = [open_request(live.port, head, body) for _ in range(SLOW_CLIENTS)]
        try:
            with trickling(socks) as sent:
                time.sleep(1)  # every slow request has been authenticated and is reading
                assert_others_answered_promptly(live, other["apikey"])
            # The slow clients still get their answer once their body is in (an external
            # bundle has no file to link to).
            socks[0].sendall(b" " * (padded - sent[0]))
            status, answer = response_of(socks[0])
            assert status == 404, answer
            assert b'"error":"bundle_not_found"' in answer
        finally:
            for sock in socks:
                sock.close()


def test_slow_tus_uploads_hold_no_database_connection(database_url: str, tmp_path: Path) -> None:
    """tus PATCHes streaming their chunks slowly hold no connection either."""
    with live_server(database_url, tmp_path, **SMALL_POOL) as live:
        seed_app(live)
        other = live.create_user("other@example.com")
        chunk = 10_000
        # Two chunks each: the first PATCH stores a part (the zip would be checked after the
        # last one).
        uploads = [create_upload(live, f"2.0.{n}", 2 * chunk) for n in range(SLOW_CLIENTS)]
        socks = []
        for location in uploads:
            head = request_head(
                "PATCH",
                location.removeprefix(live.base_url),
                chunk,
                authorization=live.key,
                tus_resumable="1.0.0",
                upload_offset="0",
                content_type="application/offset+octet-stream",
            )
            socks.append(open_request(live.port, head, b"x" * 100))
        try:
            with trickling(socks) as trickled:
                time.sleep(1)
                assert_others_answered_promptly(live, other["apikey"])
            # A slow PATCH still stores its bytes once they are all in.
            socks[0].sendall(b"x" * (chunk - 100 - trickled[0]))
            status, answer = response_of(socks[0])
            assert status == 204, answer
            with live.http() as http:
                response = http.head(uploads[0], headers={"Tus-Resumable": "1.0.0"})
            assert response.headers["Upload-Offset"] == str(chunk)
        finally:
            for sock in socks:
                sock.close()


def create_upload(live: LiveServer, version: str, length: int) -> str:
    filename = f"orgs/{live.org_id}/apps/{APP_ID}/{version}.zip"
    metadata = "filename " + base64.b64encode(filename.encode()).decode()
    headers = {
        "Tus-Resumable": "1.0.0",
        "Upload-Length": str(length),
        "Upload-Metadata": metadata,
    }
    with live.http() as http:
        response = http.post("/files/upload/attachments/", headers=headers)
    assert response.status_code == 201, response.text
    location: str = response.headers["Location"]
    return location


def test_the_header_timeout_closes_the_connection(database_url: str, tmp_path: Path) -> None:
    with live_server(database_url, tmp_path, CAPGO_HEADER_TIMEOUT_SECONDS="1") as live:
        silent = socket.create_connection(("127.0.0.1", live.port), timeout=5)
        partial = open_request(live.port, "GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        # Headers sent in pieces, within the timeout, are answered as usual.
        polite = open_request(live.port, "GET /ok HTTP/1.1\r\n")
        time.sleep(0.3)
        polite.sendall(b"Host: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        try:
            assert response_of(polite) == (200, b'{"status":"ok"}')
            assert closed_by_server_within(silent, 4)
            assert closed_by_server_within(partial, 4)
        finally:
            for sock in (silent, partial, polite):
                sock.close()


def test_the_body_timeouts_close_the_connection(database_url: str, tmp_path: Path) -> None:
    """A body that pauses longer than CAPGO_BODY_TIMEOUT_SECONDS, or that keeps coming below
    CAPGO_BODY_MIN_BYTES_PER_SECOND once that grace is over, has its connection closed; one
    that keeps the rate is read and answered."""
    timeouts = {"CAPGO_BODY_TIMEOUT_SECONDS": "1", "CAPGO_BODY_MIN_BYTES_PER_SECOND": "50"}
    with live_server(database_url, tmp_path, **timeouts) as live:
        seed_app(live)
        body = b'{"app_id": "%s", "version": "1.0.1"}' % APP_ID.encode()
        head = request_head(
            "POST",
            "/files/download_link",
            len(body) + 1000,
            authorization=live.key,
            content_type="application/json",
        )
        paused = open_request(live.port, head, body)
        trickled = open_request(live.port, head, body)
        steady = open_request(live.port, head, body)
        try:
            with trickling([trickled], every=0.3):  # never pausing 1 s, but ~3 bytes/s
                for _ in range(5):  # 1000 bytes in 1.5 s: about 670 bytes/s
                    steady.sendall(b" " * 200)
                    time.sleep(0.3)
                status, answer = response_of(steady)
                assert status == 404, answer
                assert b'"error":"bundle_not_found"' in answer
                assert closed_by_server_within(paused, 4)
                assert closed_by_server_within(trickled, 4)
        finally:
            for sock in (paused, trickled, steady):
                sock.close()


# --- an exhausted pool ------------------------------------------------------------------------


@contextmanager
def writes_blocked(database_url: str) -> Iterator[None]:
    """Another connection holds the database's write lock (SQLite) or a lock on ``apikeys``
    that blocks writes to it (PostgreSQL): a request creating an API key waits, holding its
    pooled connection, until the block ends."""
    ready, release = threading.Event(), threading.Event()

    def hold_sqlite() -> None:
        database = make_url(database_url).database
        assert database is not None
        connection = sqlite3.connect(database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        ready.set()
        release.wait(30)
        connection.rollback()
        connection.close()

    async def hold_postgres() -> None:
        engine = make_engine(database_url)
        async with engine.connect() as connection:
            await connection.execute(text("LOCK TABLE apikeys IN EXCLUSIVE MODE"))
            ready.set()
            await asyncio.to_thread(release.wait, 30)
            await connection.rollback()
        await engine.dispose()

    if database_url.startswith("sqlite"):
        holder = threading.Thread(target=hold_sqlite)
    else:
        holder = threading.Thread(target=lambda: asyncio.run(hold_postgres()))
    holder.start()
    try:
        assert ready.wait(10)
        yield
    finally:
        release.set()
        holder.join()


#: The pool's checkout wait in the exhaustion test: longer than "answered at once", so an
#: answer that waited for a connection shows.
POOL_WAIT = 1.2


def test_an_exhausted_pool_answers_503_at_once(database_url: str, tmp_path: Path) -> None:
    """With the pool's one connection stuck behind a lock, a request needing the database is
    answered 503 with Retry-After as soon as the pool's wait runs out, and a device's
    ``/updates`` is answered from the worker's cache at once, its poll for changes waiting for
    a connection in the background."""
    settings = {
        "CAPGO_DB_POOL_SIZE": "1",
        "CAPGO_DB_MAX_OVERFLOW": "0",
        "CAPGO_DB_POOL_TIMEOUT_SECONDS": str(POOL_WAIT),
    }
    with live_server(database_url, tmp_path, **settings) as live:
        seed_app(live)
        other = live.create_user("other@example.com")
        with httpx.Client(base_url=live.base_url, timeout=5) as http:
            assert http.post("/updates", json=device_body()).status_code == 200  # cache warm
            with writes_blocked(database_url):
                # (SQLite's busy timeout lets the stuck request wait 5 s: the checks fit in.)
                stuck = threading.Thread(
                    target=lambda: live.http().post("/apikey", json={"name": "stuck"})
                )
                stuck.start()
                # It holds the pool's only connection, waiting on the lock; meanwhile the
                # update cache's next poll falls due, and cannot get a connection.
                time.sleep(1.1)
                response, took = timed(http.post, "/updates", json=device_body())
                assert response.status_code == 200, response.text
                assert response.json()["version"] == "1.0.1"
                assert took < PROMPT_SECONDS < POOL_WAIT  # it did not wait for the poll

                response, took = timed(
                    http.get, "/organization", headers={"authorization": other["apikey"]}
                )
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"] == "2"
                assert response.json() == {
                    "error": "service_unavailable",
                    "message": "The server is too busy to answer now; retry later",
                    "moreInfo": {"retry_after": 2},
                }
                assert POOL_WAIT <= took < POOL_WAIT + PROMPT_SECONDS

                response, took = timed(http.put, "/channel_self", json=device_body())
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"] == "2"
                assert response.json()["error"] == "service_unavailable"
                assert POOL_WAIT <= took < POOL_WAIT + PROMPT_SECONDS
            stuck.join(10)
        assert "unhandled error" not in live.server.output()  # no 500
