"""Crash safety: SIGKILL a loaded server at random points and check every acknowledged write.

    .venv/bin/python bench/crash_safety.py --engine sqlite --kills 20 --seed 1
    .venv/bin/python bench/crash_safety.py --engine postgresql --kills 20 --seed 1

The script starts ``capgo-server serve`` on a free port with its own data directory (and, for
PostgreSQL, a fresh scratch database), creates a user with ``capgo-server create-user``, an app and
three channels, then runs rounds. In each round concurrent clients write:

* tus bundle uploads (several PATCHes each; some with a wrong checksum, which the server must
  refuse, and some abandoned with a tus DELETE), resumed after restarts from the server's offset;
* ``POST /channel`` changes (each channel points at an uploaded bundle or ``builtin``);
* ``POST``/``PUT``/``DELETE /apikey`` (create, rename, delete);
* device traffic: ``POST /updates``, ``POST /stats`` and ``POST``/``DELETE /channel_self``
  (device overrides, which are acknowledged writes).

Every write the server acknowledged (a 2xx was received) goes into a journal; a write whose
request was cut by the kill is "in doubt" (it may or may not have happened). At a random moment
(sometimes right after an upload's last PATCH was sent, to land inside its finalisation) the
serving process gets SIGKILL. With the database now as the crash left it, the integrity checks
run (SQLite: ``PRAGMA integrity_check`` and ``foreign_key_check``; PostgreSQL: amcheck's
``bt_index_check`` with ``heapallindexed`` on every B-tree index), plus consistency queries on
both engines (no orphan foreign keys, no upload row beside a bundle of the same version, every
live bundle's file present with its recorded size, every unfinished upload's offset covered by
its stored parts, each app's override count equal to its overrides). Then the server is
restarted and, over the API:

* every acknowledged bundle is listed by ``GET /bundle`` with its checksum and size and downloads
  intact (``POST /files/download_link``, then the signed URL);
* no bundle is listed whose last byte was never sent, nor one refused or abandoned (no
  half-visible upload), and every bundle a device was offered by ``/updates`` still exists;
* every acknowledged, unfinished upload is still known at (at least) its acknowledged offset;
* every channel points at its last acknowledged bundle (or the one of an in-doubt change), and
  every device override is as last acknowledged;
* every acknowledged key exists with its acknowledged name and mode, and deleted keys are gone
  (their ids given to no other key).

Device rows and daily counters are written after the answer by design, so the last moments of
device bookkeeping may be lost; the script does not count them as failures.

Results go to ``bench/results/crash-safety-<engine>.json``; the exit code is 1 when anything
failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from capgo_server.db.admin import admin_execute
from capgo_server.tus_client import TUS_VERSION, TusUploader, encode_metadata

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CLI = str(Path(sys.executable).with_name("capgo-server"))
APP_ID = "com.crash.safety"
CHANNELS = ("production", "beta", "alpha")
SELF_SET_CHANNELS = ("beta", "alpha")
UPLOAD_PATH = "/files/upload/attachments/"
CHUNK = 128 * 1024
STARTUP_SECONDS = 60
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


class Failure(Exception):
    pass


# --- the journal ----------------------------------------------------------------------------


@dataclass
class UploadState:
    version: str
    data: bytes
    sha256: str
    bad_checksum: bool = False  # the server must refuse it when the last byte arrives
    abandon_at: int | None = None  # terminate (tus DELETE) once this many bytes are acked
    url_path: str | None = None  # known once the creation was acknowledged
    creation_sent: bool = False
    acked_offset: int = 0
    inflight_end: int | None = None  # end of a PATCH sent but not answered
    final_sent: bool = False
    terminate_sent: bool = False
    # open | done (bundle acked) | refused (refusal acked) | terminated (acked) | lost
    status: str = "open"
    verified_download: bool = False

    @property
    def length(self) -> int:
        return len(self.data)


@dataclass
class KeyState:
    id: int
    name: str
    mode: str
    deleted: bool = False
    pending_name: str | None = None
    pending_delete: bool = False


@dataclass
class Journal:
    uploads: dict[str, UploadState] = field(default_factory=dict)
    channels: dict[str, str] = field(default_factory=dict)  # acked bundle per channel
    channel_pending: dict[str, str] = field(default_factory=dict)
    keys: dict[int, KeyState] = field(default_factory=dict)
    key_pending_create: dict[str, str] = field(default_factory=dict)  # name -> mode
    offered: set[str] = field(default_factory=set)  # versions /updates offered to devices
    overrides: dict[str, str | None] = field(default_factory=dict)  # device -> acked channel
    override_pending: dict[str, str | None] = field(default_factory=dict)
    acked: Counter[str] = field(default_factory=Counter)
    in_doubt: Counter[str] = field(default_factory=Counter)
    verified: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)

    def fail(self, message: str) -> None:
        say(f"FAILURE: {message}")
        self.failures.append(message)

    def live_bundles(self) -> list[str]:
        return [u.version for u in self.uploads.values() if u.status == "done"]


# --- the server process -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every process, from /proc."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        table[int(entry)] = (int(fields[1]), int(fields[2]))
    return table


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` or in its process group (the server runs in a session of
    its own, so a worker left without its parent is still found)."""
    table = _processes()
    found: list[int] = []
    queue = [pid]
    while queue:
        parent = queue.pop()
        for child, (ppid, _) in table.items():
            if ppid == parent and child not in found:
                found.append(child)
                queue.append(child)
    found += [p for p, (_, group) in table.items() if group == pid and p != pid and p not in found]
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie has released its sockets: it does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


class Server:
    def __init__(self, env: dict[str, str], port: int, log: Path, workers: int) -> None:
        self.env = env
        self.port = port
        self.log = log
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{port}"

    def start(self) -> float:
        started = time.monotonic()
        with self.log.open("ab") as out:
            out.write(f"\n=== start {time.strftime('%H:%M:%S')} ===\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [CLI, "serve", "--port", str(self.port), "--workers", str(self.workers)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = started + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise Failure(f"server exited with {self.process.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.base}/ok", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise Failure(f"server did not answer /ok within {STARTUP_SECONDS}s; see {self.log}")

    def serving_pids(self) -> list[int]:
        """The ``capgo-server serve`` process and everything it started. With one worker,
        uvicorn serves in that process itself; with more, in its children."""
        assert self.process is not None
        return [self.process.pid, *descendants(self.process.pid)]

    def kill(self) -> list[int]:
        """SIGKILL the serving process(es); returns the pids killed."""
        assert self.process is not None
        pids = self.serving_pids()
        for pid in reversed(pids):  # workers first, so the supervisor cannot restart them
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # anything started meanwhile
        self.process.wait()
        # Prove the processes that served are gone: none runs, and the port no longer accepts
        # connections (workers are reaped by init a moment after the supervisor).
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in pids) or self.accepts():
            if time.monotonic() > deadline:
                running = [pid for pid in pids if alive(pid)]
                raise Failure(f"the port still accepts connections after SIGKILL ({running})")
            time.sleep(0.01)
        return pids

    def accepts(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()


# --- the workload ---------------------------------------------------------------------------


def make_zip(rng: random.Random, version: str) -> bytes:
    """A valid bundle: index.html at the root and a random payload (stored, so the size is
    what we chose), 4 KiB to ~900 KiB: one to eight PATCHes of ``CHUNK``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("index.html", f"<html><body>{version}</body></html>")
        archive.writestr("app.js", rng.randbytes(rng.randint(4 * 1024, 900 * 1024)))
    return buffer.getvalue()


class Round:
    """One run of the load between a (re)start and the kill."""

    def __init__(self, bench: Bench, mode: str) -> None:
        self.bench = bench
        self.mode = mode  # "timer" or "finalize"
        self.stop = asyncio.Event()
        self.killed_at: float | None = None
        self.finalizing = 0  # final PATCHes in flight
        self.timers: set[asyncio.Task[None]] = set()
        self.started = time.monotonic()
        self.armed_at = self.started + bench.rng.uniform(bench.args.min_run, bench.args.max_run / 2)
        self.kill_during_finalize = False

    async def maybe_kill_on_final_patch(self) -> None:
        """In "finalize" rounds, the first last-byte PATCH sent once the round is armed (after
        some load) is followed, within 30 ms, by the kill: it lands inside the finalisation."""
        if self.mode != "finalize" or self.stop.is_set() or time.monotonic() < self.armed_at:
            return
        await asyncio.sleep(self.bench.rng.uniform(0, 0.03))
        self.kill()

    def kill(self) -> None:
        if self.stop.is_set():
            return
        if self.finalizing:
            self.kill_during_finalize = True
        self.bench.kill_pids.append(self.bench.server.kill())
        self.killed_at = time.monotonic()
        self.stop.set()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.journal = Journal()
        self.version_counter = 0
        self.key_counter = 0
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"crash-{args.engine}-"))
        self.pg_db: str | None = None
        self.port = free_port()
        self.apikey = ""
        self.org_id = ""
        self.main_key_id: int | None = None
        self.resume_queue: list[UploadState] = []
        self.devices = [
            [str(uuid.UUID(int=self.rng.getrandbits(128), version=4)) for _ in range(40)]
            for _ in range(2)
        ]
        self.env: dict[str, str] = {}
        self.server: Server
        self.kills = 0
        self.kills_in_finalize = 0
        self.rounds_ok = 0
        self.load_seconds = 0.0
        self.kill_pids: list[list[int]] = []
        self.restart_seconds: list[float] = []
        self.integrity_runs = 0
        self.download_bytes = 0

    # -- setup --

    def database_url(self) -> str:
        if self.args.engine == "sqlite":
            return f"sqlite+aiosqlite:///{self.data_dir / 'capgo.db'}"
        parts = urlsplit(self.args.pg_url)
        self.pg_db = f"crash_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        return f"postgresql+asyncpg://{parts.netloc}/{self.pg_db}"

    def pg_target_url(self) -> str:
        parts = urlsplit(self.args.pg_url)
        return f"postgresql://{parts.netloc}/{self.pg_db}"

    async def setup(self) -> None:
        url = self.database_url()
        if self.pg_db:
            await admin_execute(self.args.pg_url, f'CREATE DATABASE "{self.pg_db}"')
        base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "CAPGO_DATA_DIR": str(self.data_dir),
            "CAPGO_DATABASE_URL": url,
            "CAPGO_PUBLIC_URL": base,
            "CAPGO_SECRET": "crash-safety-" + uuid.uuid4().hex,
            "CAPGO_RATE_LIMIT_API_KEY_PER_MINUTE": "100000000",
            "CAPGO_RATE_LIMIT_DEVICE_PER_MINUTE": "100000000",
            "CAPGO_RATE_LIMIT_IP_PER_MINUTE": "100000000",
            "CAPGO_RATE_LIMIT_FAILED_AUTH": "100000000",
            "CAPGO_RATE_LIMIT_CHANNEL_SELF_SAME_CHANNEL_SECONDS": "0",
        }
        self.server = Server(self.env, self.port, self.data_dir / "serve.log", self.args.workers)
        self.restart_seconds.append(await asyncio.to_thread(self.server.start))
        created = subprocess.run(
            [CLI, "create-user", "crash@example.com", "--org-name", "Crash safety"],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode != 0:
            raise Failure(f"create-user failed: {created.stderr.strip()}")
        account = json.loads(created.stdout)
        self.apikey, self.org_id = account["apikey"], account["org_id"]
        async with self.client() as http:
            response = await http.post(
                "/app", json={"app_id": APP_ID, "name": "Crash", "owner_org": self.org_id}
            )
            expect(response, 200, "create app")
            for name in CHANNELS:
                body = {
                    "app_id": APP_ID,
                    "channel": name,
                    "version": "builtin",
                    "public": name == "production",
                    "android": True,
                    "ios": True,
                    "allow_dev": True,
                    "allow_emulator": True,
                    "allow_device_self_set": name in SELF_SET_CHANNELS,
                }
                expect(await http.post("/channel", json=body), 200, f"create channel {name}")
                self.journal.channels[name] = "builtin"
            keys = expect(await http.get("/apikey"), 200, "list keys")
            self.main_key_id = next(k["id"] for k in keys if k["key"] == self.apikey)

    def client(self, timeout: float = 30.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.server.base,
            headers={"authorization": self.apikey},
            timeout=httpx.Timeout(timeout, connect=5.0),
        )

    # -- workers --

    async def uploader(self, round_: Round, worker: int) -> None:
        async with self.client() as http:
            tus = TusUploader(http, headers={"authorization": self.apikey}, chunk_size=CHUNK)
            while not round_.stop.is_set():
                if self.resume_queue:
                    state = self.resume_queue.pop()
                    try:
                        offset = await self._resume_offset(tus, state)
                    except httpx.TransportError:
                        self.resume_queue.append(state)
                        return
                    if offset is None:
                        continue
                    self.journal.notes["uploads resumed after a restart"] += 1
                else:
                    state = self.new_upload()
                    offset = 0
                    if not await self._create(http, state):
                        return
                if not await self._send(http, round_, state, offset):
                    return

    def new_upload(self) -> UploadState:
        self.version_counter += 1
        version = f"1.0.{self.version_counter}"
        data = make_zip(self.rng, version)
        state = UploadState(version, data, hashlib.sha256(data).hexdigest())
        draw = self.rng.random()
        if draw < 0.1:
            state.bad_checksum = True
        elif draw < 0.15 and state.length > CHUNK:
            state.abandon_at = CHUNK
        self.journal.uploads[version] = state
        return state

    async def _create(
        self, http: httpx.AsyncClient, state: UploadState, *, again: bool = False
    ) -> bool:
        """tus creation; True when acknowledged (201). ``again``: a retry after a kill, which may
        find the first creation pending (400 ``version_already_exists`` with its ``upload_url``)."""
        checksum = "0" * 64 if state.bad_checksum else state.sha256
        metadata = {
            "filename": f"orgs/{self.org_id}/apps/{APP_ID}/{state.version}.zip",
            "filetype": "application/zip",
            "checksum": checksum,
        }
        headers = {
            "Tus-Resumable": TUS_VERSION,
            "Upload-Length": str(state.length),
            "Upload-Metadata": encode_metadata(metadata),
        }
        state.creation_sent = True
        try:
            response = await http.post(UPLOAD_PATH, headers=headers)
        except httpx.TransportError:
            if again:
                raise
            self.journal.in_doubt["upload creations"] += 1
            return False
        if again and response.status_code == 400:
            pending = response.json().get("moreInfo", {}).get("upload_url")
            if isinstance(pending, str):
                state.url_path = urlsplit(pending).path
                check = await http.head(state.url_path, headers={"Tus-Resumable": TUS_VERSION})
                expect(check, 200, f"HEAD {state.version}")
                offset = check.headers.get("Upload-Offset")
                if offset != "0":
                    self.journal.fail(f"{state.version}: a new upload at offset {offset}")
            return False
        expect(response, 201, f"create upload {state.version}")
        state.url_path = urlsplit(response.headers["Location"]).path
        self.journal.acked["upload creations"] += 1
        return True

    async def _resume_offset(self, tus: TusUploader, state: UploadState) -> int | None:
        """Where an upload interrupted by a kill continues (the server's offset)."""
        assert state.url_path is not None
        response = await tus.http.head(
            state.url_path, headers={"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
        )
        if response.status_code == 404:
            return None  # settled by the verification (finished or refused)
        expect(response, 200, f"HEAD upload {state.version}")
        return int(response.headers["Upload-Offset"])

    async def _send(
        self, http: httpx.AsyncClient, round_: Round, state: UploadState, offset: int
    ) -> bool:
        """PATCH until the upload completes; False when the server went away."""
        assert state.url_path is not None
        while offset < state.length:
            if state.abandon_at is not None and offset >= state.abandon_at:
                return await self._terminate(http, state)
            end = min(offset + CHUNK, state.length)
            final = end == state.length
            headers = {
                "Tus-Resumable": TUS_VERSION,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            }
            state.inflight_end = end
            if final:
                state.final_sent = True
                round_.finalizing += 1
                timer = asyncio.create_task(round_.maybe_kill_on_final_patch())
                round_.timers.add(timer)
                timer.add_done_callback(round_.timers.discard)
            try:
                response = await http.patch(
                    state.url_path, headers=headers, content=state.data[offset:end]
                )
            except httpx.TransportError:
                self.journal.in_doubt["upload final PATCHes" if final else "upload PATCHes"] += 1
                self.resume_queue.append(state)
                return False
            finally:
                if final:
                    round_.finalizing -= 1
            state.inflight_end = None
            if final and state.bad_checksum:
                body = expect(response, 400, f"final PATCH (bad checksum) {state.version}")
                if body.get("error") != "checksum_mismatch":
                    self.journal.fail(f"{state.version}: refused with {body}")
                state.status = "refused"
                self.journal.acked["upload refusals (bad checksum)"] += 1
                return True
            expect(response, 204, f"PATCH {state.version} at {offset}")
            offset = int(response.headers["Upload-Offset"])
            if offset != end:
                self.journal.fail(f"{state.version}: PATCH to {end} answered offset {offset}")
            state.acked_offset = offset
            self.journal.acked["upload PATCHes"] += 1
        state.status = "done"
        self.journal.acked["bundles uploaded"] += 1
        return True

    async def _terminate(self, http: httpx.AsyncClient, state: UploadState) -> bool:
        assert state.url_path is not None
        state.terminate_sent = True
        try:
            response = await http.delete(state.url_path, headers={"Tus-Resumable": TUS_VERSION})
        except httpx.TransportError:
            self.journal.in_doubt["upload terminations"] += 1
            self.resume_queue.append(state)
            return False
        expect(response, 204, f"terminate {state.version}")
        state.status = "terminated"
        self.journal.acked["upload terminations"] += 1
        return True

    async def channel_writer(self, round_: Round, name: str) -> None:
        async with self.client() as http:
            while not round_.stop.is_set():
                version = self.rng.choice([*self.journal.live_bundles()[-20:], "builtin"])
                body = {"app_id": APP_ID, "channel": name, "version": version}
                try:
                    response = await http.post("/channel", json=body)
                except httpx.TransportError:
                    self.journal.channel_pending[name] = version
                    self.journal.in_doubt["channel changes"] += 1
                    return
                expect(response, 200, f"set channel {name} to {version}")
                self.journal.channels[name] = version
                self.journal.acked["channel changes"] += 1
                await asyncio.sleep(self.rng.uniform(0, 0.02))

    async def key_writer(self, round_: Round, worker: int) -> None:
        journal = self.journal
        async with self.client() as http:
            while not round_.stop.is_set():
                mine = [
                    k
                    for k in journal.keys.values()
                    if not k.deleted and k.name.startswith(f"w{worker}-")
                ]
                draw = self.rng.random()
                try:
                    if not mine or (draw < 0.4 and len(mine) < 12):
                        self.key_counter += 1
                        name = f"w{worker}-key-{self.key_counter}"
                        mode = self.rng.choice(["read", "upload", "write", "all"])
                        journal.key_pending_create[name] = mode
                        response = await http.post("/apikey", json={"name": name, "mode": mode})
                        row = expect(response, 200, f"create key {name}")
                        del journal.key_pending_create[name]
                        journal.keys[row["id"]] = KeyState(row["id"], name, mode)
                        journal.acked["key creations"] += 1
                    elif draw < 0.75:
                        key = self.rng.choice(mine)
                        self.key_counter += 1
                        new_name = f"w{worker}-key-{self.key_counter}"
                        key.pending_name = new_name
                        response = await http.put(f"/apikey/{key.id}", json={"name": new_name})
                        expect(response, 200, f"rename key {key.id}")
                        key.name, key.pending_name = new_name, None
                        journal.acked["key renames"] += 1
                    else:
                        key = self.rng.choice(mine)
                        key.pending_delete = True
                        response = await http.delete(f"/apikey/{key.id}")
                        expect(response, 200, f"delete key {key.id}")
                        key.deleted, key.pending_delete = True, False
                        journal.acked["key deletions"] += 1
                except httpx.TransportError:
                    journal.in_doubt["key changes"] += 1
                    return

    def device_body(self, device_id: str, **fields: Any) -> dict[str, Any]:
        """What a plugin 7.0.0 on Android sends (old enough that ``/channel_self`` stores the
        device's channel on the server)."""
        return {
            "channel": "production",
            "platform": "android",
            "device_id": device_id,
            "app_id": APP_ID,
            "custom_id": "",
            "version_build": "1.0.0",
            "version_code": "1",
            "version_os": "13",
            "version_name": "1.0.0",
            "plugin_version": "7.0.0",
            "is_emulator": False,
            "is_prod": True,
            **fields,
        }

    async def device(self, round_: Round, worker: int) -> None:
        journal = self.journal
        devices = self.devices[worker]
        async with self.client() as http:
            while not round_.stop.is_set():
                device_id = self.rng.choice(devices)
                draw = self.rng.random()
                pinned = journal.overrides.get(device_id)
                try:
                    if draw < 0.15 or (draw < 0.25 and pinned is None):
                        channel = self.rng.choice(SELF_SET_CHANNELS)
                        journal.override_pending[device_id] = channel
                        body = self.device_body(device_id, channel=channel)
                        answer = expect(await http.post("/channel_self", json=body), 200, "set")
                        if answer.get("status") != "ok":
                            journal.fail(f"POST /channel_self answered {answer}")
                        journal.overrides[device_id] = channel
                        journal.override_pending.pop(device_id)
                        journal.acked["device channel overrides set (/channel_self)"] += 1
                        continue
                    if draw < 0.25:
                        journal.override_pending[device_id] = None
                        query = {
                            k: str(v).lower() if isinstance(v, bool) else v
                            for k, v in self.device_body(device_id).items()
                        }
                        response = await http.delete("/channel_self", params=query)
                        answer = expect(response, 200, "unset")
                        if answer.get("status") != "ok":
                            journal.fail(f"DELETE /channel_self answered {answer}")
                        journal.overrides[device_id] = None
                        journal.override_pending.pop(device_id)
                        journal.acked["device channel overrides removed (/channel_self)"] += 1
                        continue
                    stats = draw < 0.55
                    body = self.device_body(
                        device_id, version_name=self.rng.choice(["builtin", "1.0.0"])
                    )
                    if stats:
                        body["action"] = self.rng.choice(["get", "set", "download_complete"])
                    response = await http.post("/stats" if stats else "/updates", json=body)
                except httpx.TransportError:
                    journal.in_doubt["device requests"] += 1
                    return
                answer = expect(response, 200, "device request")
                journal.acked["device requests (/stats)" if stats else "device (/updates)"] += 1
                if not stats and isinstance(answer.get("version"), str) and answer.get("url"):
                    journal.offered.add(answer["version"])

    # -- one round --

    async def run_round(self) -> None:
        mode = "finalize" if self.rng.random() < self.args.finalize_share else "timer"
        round_ = Round(self, mode)
        workers = [asyncio.create_task(self.uploader(round_, i)) for i in range(2)]
        workers += [asyncio.create_task(self.channel_writer(round_, name)) for name in CHANNELS]
        workers += [asyncio.create_task(self.key_writer(round_, i)) for i in range(2)]
        workers += [asyncio.create_task(self.device(round_, i)) for i in range(2)]
        delay = self.rng.uniform(self.args.min_run, self.args.max_run)
        deadline = time.monotonic() + (delay if mode == "timer" else self.args.max_run * 2)
        while not round_.stop.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
            for task in workers:
                if task.done() and task.exception() is not None:
                    round_.stop.set()
                    self.server.kill()
                    raise task.exception()  # type: ignore[misc]
        round_.kill()
        self.kills += 1
        self.load_seconds += (round_.killed_at or time.monotonic()) - round_.started
        if round_.kill_during_finalize:
            self.kills_in_finalize += 1
        results = await asyncio.gather(*workers, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    # -- checks --

    async def integrity(self) -> None:
        """The database as the crash left it (the server is down)."""
        self.integrity_runs += 1
        if self.args.engine == "sqlite":
            await asyncio.to_thread(self._sqlite_integrity)
        else:
            await self._pg_integrity()

    def _sqlite_integrity(self) -> None:
        conn = sqlite3.connect(self.data_dir / "capgo.db")
        try:
            result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if result != ["ok"]:
                self.journal.fail(f"SQLite integrity_check: {result[:5]}")
            fk = conn.execute("PRAGMA foreign_key_check").fetchall()
            if fk:
                self.journal.fail(f"SQLite foreign_key_check: {fk[:5]}")
            self._consistency(lambda sql: conn.execute(sql).fetchall())
        finally:
            conn.close()
        self.journal.verified["integrity checks passed"] += 1

    async def _pg_integrity(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.pg_target_url())
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
            indexes = await conn.fetch(
                "SELECT c.oid, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE a.amname = 'btree' AND n.nspname = 'public'"
            )
            for index in indexes:
                try:
                    await conn.execute(
                        "SELECT bt_index_check($1::oid::regclass, true)", index["oid"]
                    )
                except asyncpg.PostgresError as exc:
                    self.journal.fail(f"amcheck {index['relname']}: {exc}")
            self.journal.notes["PostgreSQL indexes checked by amcheck (per run)"] = len(indexes)
            foreign_keys = await conn.fetch(
                "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent, "
                "(SELECT array_agg(attname ORDER BY k.i) FROM unnest(conkey) WITH ORDINALITY "
                " k(n, i) JOIN pg_attribute ON attrelid = conrelid AND attnum = k.n) AS cols, "
                "(SELECT array_agg(attname ORDER BY k.i) FROM unnest(confkey) WITH ORDINALITY "
                " k(n, i) JOIN pg_attribute ON attrelid = confrelid AND attnum = k.n) AS pcols "
                "FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace"
            )
            for fk in foreign_keys:
                present = " AND ".join(f'c."{c}" IS NOT NULL' for c in fk["cols"])
                match = " AND ".join(
                    f'p."{pc}" = c."{c}"' for c, pc in zip(fk["cols"], fk["pcols"], strict=True)
                )
                orphans = await conn.fetchval(
                    f"SELECT count(*) FROM {fk['child']} c WHERE {present} AND NOT EXISTS "
                    f"(SELECT 1 FROM {fk['parent']} p WHERE {match})"
                )
                if orphans:
                    self.journal.fail(f"{orphans} orphan rows in {fk['child']} ({fk['cols']})")
            rows: dict[str, list[Any]] = {}
            for sql in CONSISTENCY_SQL.values():
                rows[sql] = [tuple(r) for r in await conn.fetch(sql)]
            self._consistency(lambda sql: rows[sql])
        finally:
            await conn.close()
        self.journal.verified["integrity checks passed"] += 1

    def _consistency(self, query: Any) -> None:
        """Checks that hold on both engines: bundle rows and files, upload rows and parts."""
        store = self.data_dir / "bundles"
        both = query(CONSISTENCY_SQL["upload_and_bundle"])
        if both:
            self.journal.fail(f"upload rows beside a bundle of the same version: {both}")
        referenced = set()
        for name, r2_path, size in query(CONSISTENCY_SQL["live_files"]):
            referenced.add(r2_path)
            file = store / r2_path
            if not file.is_file():
                self.journal.fail(f"bundle {name}: its file {r2_path} is missing")
            elif file.stat().st_size != size:
                self.journal.fail(
                    f"bundle {name}: file has {file.stat().st_size} bytes, not {size}"
                )
        for upload_id, offset, length in query(CONSISTENCY_SQL["uploads"]):
            if offset > length:
                self.journal.fail(f"upload {upload_id}: offset {offset} past length {length}")
            covered = 0
            folder = store / "uploads" / upload_id
            parts = (
                sorted(p for p in folder.glob("*") if p.name.isdigit()) if folder.is_dir() else []
            )
            for part in parts:
                if int(part.name) != covered:
                    break
                covered += part.stat().st_size
            if covered < offset:
                self.journal.fail(f"upload {upload_id}: offset {offset}, parts cover {covered}")
        for app_id, counted, overrides in query(CONSISTENCY_SQL["override_count"]):
            if counted != overrides:
                self.journal.fail(f"{app_id}: channel_device_count {counted}, {overrides} rows")
        apps = store / "orgs"
        orphans = (
            [
                p
                for p in apps.rglob("*.zip")
                if str(p.relative_to(store)) not in referenced and not p.name.startswith(".")
            ]
            if apps.is_dir()
            else []
        )
        partials = list(store.rglob("*.partial")) if store.is_dir() else []
        self.journal.notes["orphan bundle files (no live row; refused or unfinished uploads)"] = (
            len(orphans)
        )
        self.journal.notes["leftover .partial files"] = len(partials)

    async def verify(self, *, everything: bool) -> None:
        """Over the API, after a restart: every acknowledged write is there and intact."""
        journal = self.journal
        async with self.client() as http:
            listed = await self._list_bundles(http)
            await self._verify_uploads(http, listed, everything)
            for version in sorted(journal.offered):
                if version not in listed and version not in ("builtin", "unknown"):
                    journal.fail(f"/updates offered {version}, which is no longer listed")
            journal.verified["bundles offered to devices, still listed"] = len(journal.offered)
            await self._verify_channels(http)
            await self._verify_keys(http)
            await self._verify_overrides(http)

    async def _list_bundles(self, http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        page = 0
        while True:
            response = await http.get("/bundle", params={"app_id": APP_ID, "page": page})
            batch = expect(response, 200, "list bundles")
            for row in batch:
                rows[row["name"]] = row
            if len(batch) < 50:
                return rows
            page += 1

    async def _verify_uploads(
        self, http: httpx.AsyncClient, listed: dict[str, dict[str, Any]], everything: bool
    ) -> None:
        journal = self.journal
        head = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
        for name in listed:
            if name not in journal.uploads and name not in ("builtin", "unknown"):
                journal.fail(f"bundle {name} is listed but was never uploaded")
        for state in journal.uploads.values():
            row = listed.get(state.version)
            if row is not None:
                if not state.final_sent:
                    journal.fail(f"{state.version}: listed, but its last byte was never sent")
                    continue
                if state.bad_checksum:
                    journal.fail(f"{state.version}: listed despite its wrong checksum")
                    continue
                if state.status in ("refused", "terminated"):
                    journal.fail(f"{state.version}: listed after an acknowledged {state.status}")
                    continue
                if state.status == "open":  # the in-doubt final PATCH went through
                    state.status = "done"
                    journal.notes["in-doubt final PATCHes that completed the bundle"] += 1
                    if state in self.resume_queue:
                        self.resume_queue.remove(state)
                if row["checksum"] != state.sha256 or row["size"] != state.length:
                    journal.fail(
                        f"{state.version}: listed with checksum {row['checksum']} size "
                        f"{row['size']}, uploaded {state.sha256} size {state.length}"
                    )
                    continue
                journal.verified["bundles listed with their checksum"] += 1
                if everything or not state.verified_download or self.rng.random() < 0.1:
                    await self._verify_download(http, state)
                continue
            # Not listed.
            if state.status == "done":
                journal.fail(f"{state.version}: acknowledged bundle is missing")
                continue
            if state.status in ("refused", "terminated"):
                continue
            if state.url_path is None:
                await self._recover_creation(http, state)
                continue
            response = await http.head(state.url_path, headers=head)
            if response.status_code == 404:
                if state.final_sent and state.bad_checksum:
                    state.status = "refused"
                    journal.notes["in-doubt final PATCHes refused (bad checksum)"] += 1
                elif state.terminate_sent:
                    state.status = "terminated"
                    journal.notes["in-doubt terminations that went through"] += 1
                else:
                    journal.fail(f"{state.version}: acknowledged upload creation is gone")
                    state.status = "lost"
                if state in self.resume_queue:
                    self.resume_queue.remove(state)
                continue
            expect(response, 200, f"HEAD {state.version}")
            offset = int(response.headers["Upload-Offset"])
            upper = state.inflight_end if state.inflight_end is not None else state.acked_offset
            if not state.acked_offset <= offset <= max(upper, state.acked_offset):
                journal.fail(
                    f"{state.version}: server offset {offset}, acknowledged {state.acked_offset}"
                )
            else:
                journal.verified["unfinished uploads at their acknowledged offset"] += 1
            if offset > state.acked_offset:
                journal.notes["in-doubt PATCHes that were kept"] += 1
            state.acked_offset = offset
            state.inflight_end = None
            if state not in self.resume_queue:
                self.resume_queue.append(state)

    async def _recover_creation(self, http: httpx.AsyncClient, state: UploadState) -> None:
        """A creation cut by the kill: create again. Either the first one never committed (201)
        or the server names the pending upload (``upload_url``), which must be at offset 0."""
        if await self._create(http, state, again=True):
            self.journal.notes["in-doubt upload creations that had not happened"] += 1
        elif state.url_path is not None:
            self.journal.notes["in-doubt upload creations found pending (upload_url)"] += 1
        else:
            self.journal.fail(f"{state.version}: cannot create the upload again")
            state.status = "lost"
            return
        self.resume_queue.append(state)

    async def _verify_download(self, http: httpx.AsyncClient, state: UploadState) -> None:
        response = await http.post(
            "/files/download_link", json={"app_id": APP_ID, "version": state.version}
        )
        url = expect(response, 200, f"download link {state.version}")["url"]
        got = await http.get(url)
        if got.status_code != 200:
            self.journal.fail(f"{state.version}: download answered {got.status_code}")
            return
        self.download_bytes += len(got.content)
        if hashlib.sha256(got.content).hexdigest() != state.sha256:
            self.journal.fail(f"{state.version}: downloaded bytes differ from the upload")
            return
        state.verified_download = True
        self.journal.verified["bundle downloads intact"] += 1

    async def _verify_channels(self, http: httpx.AsyncClient) -> None:
        journal = self.journal
        for name in CHANNELS:
            response = await http.get("/channel", params={"app_id": APP_ID, "channel": name})
            current = expect(response, 200, f"get channel {name}")["version"]["name"]
            allowed = {journal.channels[name], journal.channel_pending.get(name)}
            if current not in allowed:
                journal.fail(f"channel {name} points at {current}, acknowledged {allowed}")
                continue
            journal.verified["channels at their acknowledged bundle"] += 1
            if current != journal.channels[name]:
                journal.notes["in-doubt channel changes that went through"] += 1
            journal.channels[name] = current
            journal.channel_pending.pop(name, None)

    async def _verify_overrides(self, http: httpx.AsyncClient) -> None:
        """Each device's stored channel (``PUT /channel_self`` asks which it is on)."""
        journal = self.journal
        for device_id in sorted({*journal.overrides, *journal.override_pending}):
            body = self.device_body(device_id)
            answer = expect(await http.put("/channel_self", json=body), 200, "get channel")
            current = answer.get("channel") if answer.get("status") == "override" else None
            allowed = {journal.overrides.get(device_id)}
            if device_id in journal.override_pending:
                allowed.add(journal.override_pending.pop(device_id))
            if current not in allowed:
                journal.fail(f"device {device_id}: on {current}, acknowledged {allowed}")
                continue
            if current != journal.overrides.get(device_id):
                journal.notes["in-doubt device overrides that went through"] += 1
            journal.overrides[device_id] = current
            journal.verified["device overrides as acknowledged"] += 1

    async def _verify_keys(self, http: httpx.AsyncClient) -> None:
        journal = self.journal
        rows = {row["id"]: row for row in expect(await http.get("/apikey"), 200, "list keys")}
        for key in journal.keys.values():
            row = rows.pop(key.id, None)
            if key.deleted:
                if row is not None and row["name"] in (key.name, key.pending_name):
                    journal.fail(f"key {key.id}: deleted (acknowledged) but still listed")
                    continue
                if row is not None:
                    # Another key (names are unique per creation) under a deleted key's id: ids
                    # are never given again (on SQLite since AUTOINCREMENT, migration 0005), and
                    # a client deleting by id twice would delete that newer key.
                    journal.fail(f"key {key.id}: deleted (acknowledged), id given to {row['name']}")
                    continue
                journal.verified["deleted keys gone"] += 1
                continue
            if row is None:
                if key.pending_delete:
                    key.deleted = True
                    journal.notes["in-doubt key deletions that went through"] += 1
                else:
                    journal.fail(f"key {key.id} ({key.name}): acknowledged but missing")
                continue
            if row["name"] not in (key.name, key.pending_name) or row["mode"] != key.mode:
                journal.fail(f"key {key.id}: {row['name']}/{row['mode']}, acked {key.name}")
                continue
            journal.verified["keys present with their acknowledged name and mode"] += 1
            if row["name"] != key.name:
                journal.notes["in-doubt key renames that went through"] += 1
            key.name, key.pending_name, key.pending_delete = row["name"], None, False
        rows.pop(self.main_key_id, None)
        for row in rows.values():
            mode = journal.key_pending_create.pop(row["name"], None)
            if mode is None or row["mode"] != mode:
                journal.fail(f"key {row['id']} ({row['name']}) was never created by a client")
                continue
            journal.keys[row["id"]] = KeyState(row["id"], row["name"], mode)
            journal.notes["in-doubt key creations that went through"] += 1
        journal.key_pending_create.clear()

    # -- the whole run --

    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        try:
            await self.setup()
            for number in range(1, self.args.kills + 1):
                await self.run_round()
                await self.integrity()
                self.restart_seconds.append(await asyncio.to_thread(self.server.start))
                before = len(self.journal.failures)
                await self.verify(everything=number == self.args.kills)
                status = "ok" if len(self.journal.failures) == before else "FAILED"
                self.rounds_ok += status == "ok"
                say(
                    f"kill {number}/{self.args.kills}: {status}; bundles "
                    f"{len(self.journal.live_bundles())}, acked {sum(self.journal.acked.values())}"
                )
            exit_code = self.server.stop()
            if exit_code not in (0, -signal.SIGTERM):
                self.journal.fail(f"the final SIGTERM exited with {exit_code}")
        finally:
            server: Server | None = getattr(self, "server", None)
            if server is not None:
                server.stop()
        return self.report(time.monotonic() - started)

    def report(self, runtime: float) -> dict[str, Any]:
        journal = self.journal
        states = Counter(u.status for u in journal.uploads.values())
        return {
            "engine": self.args.engine,
            "seed": self.args.seed,
            "workers": self.args.workers,
            "kills_requested": self.args.kills,
            "kills": self.kills,
            "kills_survived": self.rounds_ok,
            "processes_killed_per_kill": sorted({len(p) for p in self.kill_pids}),
            "kills_during_upload_finalisation": self.kills_in_finalize,
            "integrity_checks": self.integrity_runs,
            "writes_acknowledged": dict(sorted(journal.acked.items())),
            "writes_acknowledged_total": sum(journal.acked.values()),
            "writes_in_doubt_at_kill": dict(sorted(journal.in_doubt.items())),
            "verified": dict(sorted(journal.verified.items())),
            "uploads_by_final_state": dict(sorted(states.items())),
            "notes": dict(sorted(journal.notes.items())),
            "bytes_downloaded_for_checks": self.download_bytes,
            "restart_seconds_max": round(max(self.restart_seconds), 2),
            "load_seconds": round(self.load_seconds, 1),
            "runtime_seconds": round(runtime, 1),
            "failures": journal.failures,
            "python": sys.version.split()[0],
        }

    async def cleanup(self) -> None:
        if not self.args.keep:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            if self.pg_db:
                await admin_execute(
                    self.args.pg_url, f'DROP DATABASE IF EXISTS "{self.pg_db}" WITH (FORCE)'
                )


CONSISTENCY_SQL = {
    "upload_and_bundle": (
        "SELECT u.version_name FROM uploads u JOIN app_versions b "
        "ON b.app_id = u.app_id AND b.name = u.version_name"
    ),
    "live_files": (
        "SELECT name, r2_path, size FROM app_versions "
        "WHERE r2_path IS NOT NULL AND deleted = false AND external_url IS NULL"
    ),
    "uploads": 'SELECT id, "offset", length FROM uploads',
    "override_count": (
        "SELECT a.app_id, a.channel_device_count, (SELECT count(*) FROM channel_devices c "
        "WHERE c.app_id = a.app_id) FROM apps a"
    ),
}


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def expect(response: httpx.Response, status: int, what: str) -> Any:
    if response.status_code != status:
        raise Failure(f"{what}: HTTP {response.status_code} {response.text[:300]}")
    if not response.content:
        return {}
    return response.json()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--min-run", type=float, default=1.5, help="least seconds of load")
    parser.add_argument("--max-run", type=float, default=6.0, help="most seconds of load")
    parser.add_argument(
        "--finalize-share",
        type=float,
        default=0.4,
        help="share of kills aimed at an upload's last PATCH",
    )
    parser.add_argument("--pg-url", default=os.environ.get("CRASH_PG_URL", DEFAULT_PG))
    parser.add_argument("--out", type=Path, help="results file (default bench/results/...)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and database")
    args = parser.parse_args()
    bench = Bench(args)
    try:
        report = asyncio.run(bench.run())
    except Failure as exc:
        bench.journal.fail(f"aborted: {exc}")
        report = bench.report(0.0)
        report["aborted"] = True
        say(f"data kept in {bench.data_dir}")
        args.keep = True
    finally:
        asyncio.run(bench.cleanup())
    out = args.out or RESULTS / f"crash-safety-{args.engine}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    say(json.dumps(report, indent=2))
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
