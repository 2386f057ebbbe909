"""The official ``@capgo/cli``, as installed from npm by ``make capgo-cli``, run against a real
``serve`` (tests/live.py) from a generated Capacitor project, and a device to check the result.

The project points every host the CLI knows at the server (``localApi``, ``localApiFiles``,
``localHost``, ``localWebHost``) and the device URLs too (``updateUrl``, ``statsUrl``,
``channelUrl``). The CLI runs with a home of its own, telemetry and the update prompt off, and
``guard.cjs`` preloaded: it refuses every non-loopback connection and logs it, so a test proves
that nothing but npm's registry (the CLI's version check) was even attempted.

Without an install the tests skip, unless ``CAPGO_TEST_REQUIRE_CAPGO_CLI=1`` (``.ci/run``).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.live import LiveServer, live_server

REPO = Path(__file__).resolve().parents[2]
#: Where ``make capgo-cli`` installs each pinned version (``.cache/`` is git-ignored).
CLI_ROOT = REPO / ".cache" / "capgo-cli"
#: The newest published CLI and the oldest this server supports (issue #16); the Makefile and
#: .ci/run install exactly these.
VERSIONS = ("8.68.1", "8.35.0")
GUARD = Path(__file__).with_name("guard.cjs")
#: The only host the CLI may try to reach: npm's registry, for its "newer version" check.
ALLOWED_REMOTE_HOSTS = {"registry.npmjs.org"}
COMMAND_TIMEOUT = 120
#: The updater version the project declares: 7.30.0 and later get the V3 encrypted checksum.
UPDATER_VERSION = "7.30.0"
NATIVE_VERSION = "1.0.0"

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[=>]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text).replace("\r\n", "\n")


def cli_entry(version: str) -> Path:
    """The installed CLI of ``version``; skips (or fails under CI) when it is not installed."""
    entry = CLI_ROOT / version / "node_modules" / "@capgo" / "cli" / "dist" / "index.js"
    if not entry.is_file():
        message = f"@capgo/cli {version} is not installed at {entry}: run `make capgo-cli`"
        if os.environ.get("CAPGO_TEST_REQUIRE_CAPGO_CLI") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return entry


@dataclass(frozen=True)
class CliRun:
    """One command's exit code and output (stdout and stderr interleaved, ANSI stripped)."""

    args: tuple[str, ...]
    returncode: int
    output: str

    def describe(self) -> str:
        return f"capgo {' '.join(self.args)} -> exit {self.returncode}\n{self.output}"


@dataclass
class OfficialCli:
    """One installed CLI version, in its own project and home, pointed at one live server."""

    version: str
    entry: Path
    project: Path
    home: Path
    env: dict[str, str]
    guard_log: Path

    @classmethod
    def make(cls, version: str, root: Path, base_url: str, app_id: str) -> OfficialCli:
        entry = cli_entry(version)
        root.mkdir(parents=True, exist_ok=True)
        project, home = root / "project", root / "home"
        home.mkdir()
        write_project(project, base_url, app_id)
        guard_log = root / "guard.log"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "CI": "1",
            "CAPGO_DISABLE_TELEMETRY": "1",
            "CAPGO_SKIP_UPDATE_PROMPT": "1",
            "NO_COLOR": "1",
            "NODE_OPTIONS": f"--require {GUARD}",
            "CAPGO_GUARD_LOG": str(guard_log),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
        }
        return cls(version, entry, project, home, env, guard_log)

    def run(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> CliRun:
        """The CLI without a terminal (stdin /dev/null), as in a CI job."""
        try:
            result = subprocess.run(
                ["node", str(self.entry), *args],
                cwd=self.project,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            so_far = strip_ansi((expired.output or b"").decode(errors="replace"))
            pytest.fail(f"capgo {' '.join(args)} did not finish in {timeout}s:\n{so_far}")
        return CliRun(args, result.returncode, strip_ansi(result.stdout.decode(errors="replace")))

    def run_confirming(self, *args: str, prompt: str, timeout: float = COMMAND_TIMEOUT) -> CliRun:
        """The CLI in a terminal (a pty, without ``CI``), answering its one yes/no question with
        Enter (Yes is the default) once ``prompt`` shows. ``bundle delete`` of a bundle a channel
        serves asks before unlinking it, and without a terminal exits 0 having deleted nothing."""
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {key: value for key, value in self.env.items() if key != "CI"}
        env["TERM"] = "xterm"
        process = subprocess.Popen(
            ["node", str(self.entry), *args],
            cwd=self.project,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        received = bytearray()
        answered = False
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.2)
                if not ready:
                    continue
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every holder of the terminal's other end has exited
                    break
                if not chunk:
                    break
                received += chunk
                if not answered and prompt in strip_ansi(received.decode(errors="replace")):
                    time.sleep(0.5)  # let the prompt settle before the key arrives
                    os.write(master, b"\r")
                    answered = True
            else:
                process.kill()
                pytest.fail(f"capgo {' '.join(args)} did not finish in {timeout}s:\n{received!r}")
            returncode = process.wait(timeout=10)
        finally:
            os.close(master)
            if process.poll() is None:
                process.kill()
                process.wait()
        output = strip_ansi(received.decode(errors="replace"))
        assert answered, f"capgo {' '.join(args)} never asked {prompt!r}:\n{output}"
        return CliRun(args, returncode, output)

    def ok(self, *args: str) -> CliRun:
        """Run a command that must succeed."""
        result = self.run(*args)
        assert result.returncode == 0, result.describe()
        return result

    def capacitor_config(self) -> dict[str, Any]:
        config: dict[str, Any] = json.loads((self.project / "capacitor.config.json").read_text())
        return config

    def set_web_content(self, marker: str) -> None:
        """Make the next bundle's content differ (the CLI refuses a bundle whose checksum is the
        one its channel already serves)."""
        write_web_content(self.project, marker)

    def blocked_hosts(self) -> set[str]:
        """The hosts the guard refused (each attempt logged as host:port)."""
        if not self.guard_log.exists():
            return set()
        return {line.rsplit(":", 1)[0] for line in self.guard_log.read_text().split()}


def write_project(project: Path, base_url: str, app_id: str) -> None:
    """A Capacitor project as far as the CLI looks: config, package.json, the two packages it
    checks in node_modules, a web dir calling ``notifyAppReady`` and Android's native version
    (read by ``probe``)."""
    updater = {
        "localApi": base_url,
        "localApiFiles": base_url,
        "localHost": base_url,
        "localWebHost": base_url,
        "updateUrl": f"{base_url}/updates",
        "statsUrl": f"{base_url}/stats",
        "channelUrl": f"{base_url}/channel_self",
    }
    config = {
        "appId": app_id,
        "appName": "E2E App",
        "webDir": "www",
        "plugins": {"CapacitorUpdater": updater},
    }
    packages = {"@capgo/capacitor-updater": UPDATER_VERSION, "@capacitor/core": "7.4.0"}
    files = {
        "capacitor.config.json": json.dumps(config, indent=2),
        "package.json": json.dumps(
            {"name": "e2e-app", "version": NATIVE_VERSION, "dependencies": packages}, indent=2
        ),
        "www/index.html": '<!doctype html><html><body><script src="app.js"></script></body></html>',
        "android/app/build.gradle": (
            "android {\n    defaultConfig {\n"
            f'        applicationId "{app_id}"\n        versionCode 1\n'
            f'        versionName "{NATIVE_VERSION}"\n    }}\n}}\n'
        ),
    }
    for name, version in packages.items():
        files[f"node_modules/{name}/package.json"] = json.dumps({"name": name, "version": version})
    for relative, text in files.items():
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    write_web_content(project, "initial")


def write_web_content(project: Path, marker: str) -> None:
    """The web dir's script: it calls ``notifyAppReady`` (the CLI checks) and logs ``marker``."""
    (project / "www" / "app.js").write_text(
        "import { CapacitorUpdater } from '@capgo/capacitor-updater';\n"
        "CapacitorUpdater.notifyAppReady();\n"
        f"console.log({json.dumps(marker)});\n"
    )


@contextmanager
def official_cli_and_server(
    version: str, database_url: str, tmp_path: Path
) -> Iterator[tuple[OfficialCli, LiveServer]]:
    """A CLI version (checked installed before the server starts) and a live server."""
    cli_entry(version)
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    with live_server(database_url, server_dir) as live:
        yield OfficialCli.make(version, tmp_path / "cli", live.base_url, APP_ID), live


APP_ID = "com.example.officialcli"


# --- the device ---------------------------------------------------------------------------------

DEVICE_ID = "8c5a2a3e-5b6f-4c4e-9f3e-0d7a1b2c3d4e"


def device_update(http: httpx.Client, app_id: str, **changes: Any) -> dict[str, Any]:
    """What ``/updates`` offers a fresh install (builtin bundle) of the app on Android."""
    body = {
        "app_id": app_id,
        "device_id": DEVICE_ID,
        "version_name": "builtin",
        "version_build": NATIVE_VERSION,
        "version_code": "1",
        "version_os": "14",
        "platform": "android",
        "plugin_version": UPDATER_VERSION,
        "is_emulator": False,
        "is_prod": True,
        **changes,
    }
    response = http.post("/updates", json=body)
    assert response.status_code == 200, response.text
    offer: dict[str, Any] = response.json()
    return offer


def download(http: httpx.Client, url: str) -> bytes:
    """The device's download: the signed URL, no credential."""
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, f"GET {url} -> {response.status_code} {response.text}"
    return response.content


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def public_key_of(pem: str) -> rsa.RSAPublicKey:
    """The key ``key create`` wrote to capacitor.config (PKCS#1 PEM)."""
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def key_id_of(pem: str) -> str:
    """The key id the CLI sends along an encrypted bundle: the public key's first 20 base64
    characters, PEM armour removed."""
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))[:20]


def public_decrypt(key: rsa.RSAPublicKey, block: bytes) -> bytes:
    """Undo the CLI's RSA private-key encryption (PKCS#1 v1.5 type 1) as the plugin does."""
    numbers = key.public_numbers()
    size = (numbers.n.bit_length() + 7) // 8
    padded = pow(int.from_bytes(block, "big"), numbers.e, numbers.n).to_bytes(size, "big")
    assert padded[:2] == b"\x00\x01", "not a PKCS#1 type-1 block for this key"
    return padded[padded.index(b"\x00", 2) + 1 :]


def decrypt_bundle(key: rsa.RSAPublicKey, session_key: str, data: bytes) -> bytes:
    """The device's decryption: ``session_key`` is base64(iv):base64(RSA(aes key)), the bundle
    AES-128-CBC with PKCS#7 padding."""
    iv_b64, key_b64 = session_key.split(":")
    aes_key = public_decrypt(key, base64.b64decode(key_b64))
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(base64.b64decode(iv_b64))).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    plain = decryptor.update(data) + decryptor.finalize()
    return unpadder.update(plain) + unpadder.finalize()


def encrypted_checksum(key: rsa.RSAPublicKey, checksum: str) -> str:
    """The hex SHA-256 an encrypted checksum carries: V3 (updater 7.30.0 and later) encrypts the
    digest's 32 bytes and writes the result in hex."""
    return public_decrypt(key, bytes.fromhex(checksum)).hex()
