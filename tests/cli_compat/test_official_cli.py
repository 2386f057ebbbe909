"""The official ``@capgo/cli`` (8.68.1 and 8.35.0, from npm) against a real ``serve``, on SQLite
and PostgreSQL: issue #16's command list in order, each step checked through our own API, and a
device that downloads what the CLI uploaded and checks its checksum (decrypting it when the CLI
encrypted it).

The CLI reaches nothing but this server: ``guard.cjs`` refuses any other connection, and only npm's
registry (the CLI's own version check) may appear in its log.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli_compat.official import (
    ALLOWED_REMOTE_HOSTS,
    APP_ID,
    REPO,
    VERSIONS,
    CliRun,
    OfficialCli,
    decrypt_bundle,
    device_update,
    download,
    encrypted_checksum,
    key_id_of,
    official_cli_and_server,
    public_key_of,
    sha256_hex,
)
from tests.conftest import Account
from tests.live import LiveServer

#: The Supabase anon value the CLI sends as ``apikey`` and bearer; it identifies nobody.
ANON = "anon"
EXTERNAL_URL = "https://cdn.example.com/e2e/1.0.5.zip"


@pytest.fixture(params=VERSIONS)
def official_cli(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[tuple[OfficialCli, LiveServer]]:
    with official_cli_and_server(request.param, database_url, tmp_path) as pair:
        yield pair


def api_get(api: httpx.Client, path: str, **params: Any) -> Any:
    response = api.get(path, params=params)
    assert response.status_code == 200, f"GET {path} {params}: {response.text}"
    return response.json()


def channels(api: httpx.Client) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in api_get(api, "/channel", app_id=APP_ID)}


def bundles(api: httpx.Client) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in api_get(api, "/bundle", app_id=APP_ID)}


def serves(api: httpx.Client, channel: str) -> str:
    """The name of the bundle ``channel`` serves."""
    served: str = channels(api)[channel]["version"]["name"]
    return served


def pin_device(api: httpx.Client, device_id: str, channel: str) -> None:
    """Put a device on ``channel`` (an override), so any channel can be checked as a device."""
    body = {"app_id": APP_ID, "device_id": device_id, "channel": channel}
    response = api.post("/device", json=body)
    assert response.status_code == 200, response.text


def device_gets(api: httpx.Client, channel: str, version: str, **changes: Any) -> dict[str, Any]:
    """A device pinned to ``channel`` is offered ``version``; the offer."""
    device_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"device on {channel}"))
    pin_device(api, device_id, channel)
    offer = device_update(api, APP_ID, device_id=device_id, **changes)
    assert offer.get("version") == version, offer
    return offer


def assert_delivered(api: httpx.Client, channel: str, version: str) -> bytes:
    """The device downloads ``version`` from ``channel`` and its SHA-256 is the checksum the
    CLI computed (and stored through our API); the zip."""
    offer = device_gets(api, channel, version)
    stored = bundles(api)[version]["checksum"]
    data = download(api, offer["url"])
    assert sha256_hex(data) == offer["checksum"] == stored
    return data


def assert_web_bundle(data: bytes, marker: str) -> None:
    """The zip the CLI made of www/, with the content written for this version."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = {name.rsplit("/", 1)[-1] for name in archive.namelist()}
        assert {"index.html", "app.js"} <= names, archive.namelist()
        script = next(n for n in archive.namelist() if n.endswith("app.js"))
        assert marker in archive.read(script).decode()


def upload(cli: OfficialCli, version: str, *options: str) -> CliRun:
    cli.set_web_content(f"bundle {version}")
    return cli.ok("bundle", "upload", "--bundle", version, *options)


def test_every_command_of_issue_16(official_cli: tuple[OfficialCli, LiveServer]) -> None:
    cli, live = official_cli
    with live.http() as api:
        # login saves the key for the following commands; doctor asks the server nothing.
        cli.ok("login", live.key)
        assert (cli.home / ".capgo").read_text().strip() == live.key
        doctor = cli.run("doctor")
        assert f"App ID: {APP_ID}" in doctor.output, doctor.describe()
        assert "@capgo/capacitor-updater: 7.30.0" in doctor.output, doctor.describe()
        # 8.35.0 compares the installed packages with npm's latest, which the guard keeps it
        # from reading, so it reports them out of date; 8.68.1 skips what it could not read.
        assert doctor.returncode == (1 if cli.version == "8.35.0" else 0), doctor.describe()

        # app add, then again: 8.68.1 recovers from our 409 (same org), 8.35.0 stops on its
        # GET /app/{id} pre-check.
        cli.ok("app", "add", APP_ID, "--name", "E2E App")
        app = api_get(api, f"/app/{APP_ID}")
        assert (app["app_id"], app["name"], app["owner_org"]) == (APP_ID, "E2E App", live.org_id)
        again = cli.run("app", "add", APP_ID, "--name", "E2E App")
        assert "already exist" in again.output, again.describe()
        assert again.returncode == (1 if cli.version == "8.35.0" else 0), again.describe()
        assert [row["app_id"] for row in api_get(api, "/app")] == [APP_ID]
        assert APP_ID in cli.ok("app", "list").output

        # Plain upload: no --channel, so the app's default upload channel, created on the way.
        default = app["default_upload_channel"]
        assert default == "dev"  # what POST /app gives, as Capgo's does
        upload(cli, "1.0.1")
        assert serves(api, default) == "1.0.1"
        assert_web_bundle(assert_delivered(api, default, "1.0.1"), "bundle 1.0.1")

        # --channel: a new channel, then the same (existing) one, taking --self-assign along.
        upload(cli, "1.0.2", "--channel", "beta")
        assert serves(api, "beta") == "1.0.2"
        assert channels(api)["beta"]["allow_device_self_set"] is False
        upload(cli, "1.0.3", "--channel", "beta", "--self-assign")
        assert serves(api, "beta") == "1.0.3"
        assert channels(api)["beta"]["allow_device_self_set"] is True
        assert_delivered(api, "beta", "1.0.3")

        # Without --channel again: the existing default channel moves on.
        upload(cli, "1.0.4")
        assert serves(api, default) == "1.0.4"
        assert_web_bundle(assert_delivered(api, default, "1.0.4"), "bundle 1.0.4")

        # --external: no upload, the device is sent to the URL.
        upload(cli, "1.0.5", "--channel", "ext", "--external", EXTERNAL_URL)
        assert bundles(api)["1.0.5"]["external_url"] == EXTERNAL_URL
        assert device_gets(api, "ext", "1.0.5")["url"] == EXTERNAL_URL

        # A version that exists is refused, and nothing changes.
        before = bundles(api)
        cli.set_web_content("a second 1.0.3")
        refused = cli.run("bundle", "upload", "--bundle", "1.0.3", "--channel", "beta")
        assert refused.returncode == 1, refused.describe()
        assert "Version 1.0.3 already exists" in refused.output, refused.describe()
        assert bundles(api) == before
        assert serves(api, "beta") == "1.0.3"

        # Encrypted: key create writes the key pair and the public key into capacitor.config;
        # the upload then encrypts. The device decrypts the session key with the public key,
        # then the bundle, and checks the decrypted checksum against the plain zip.
        cli.ok("key", "create")
        public_pem = cli.capacitor_config()["plugins"]["CapacitorUpdater"]["publicKey"]
        public_key = public_key_of(public_pem)
        upload(cli, "1.1.0", "--channel", "secure")
        stored = bundles(api)["1.1.0"]
        assert stored["key_id"] == key_id_of(public_pem), stored
        assert ":" in stored["session_key"], stored
        offer = device_gets(api, "secure", "1.1.0", key_id=stored["key_id"])
        assert (offer["session_key"], offer["checksum"]) == (
            stored["session_key"],
            stored["checksum"],
        )
        ciphertext = download(api, offer["url"])
        plain = decrypt_bundle(public_key, offer["session_key"], ciphertext)
        assert sha256_hex(plain) == encrypted_checksum(public_key, offer["checksum"])
        assert_web_bundle(plain, "bundle 1.1.0")

        # bundle list, and bundle delete of a bundle no channel serves.
        listed = cli.ok("bundle", "list").output
        assert all(name in listed for name in ("1.0.1", "1.0.3", "1.0.4", "1.1.0")), listed
        cli.ok("bundle", "delete", "1.0.1")
        assert "1.0.1" not in bundles(api)
        # Of one a channel serves: the CLI asks (so it runs in a terminal), unlinks, deletes.
        cli_delete = cli.run_confirming("bundle", "delete", "1.0.3", prompt="unlink it?")
        assert cli_delete.returncode == 0, cli_delete.describe()
        assert "1.0.3" not in bundles(api)
        assert serves(api, "beta") == "unknown"

        # channel add (one plain, one devices may join), list, set, delete.
        cli.ok("channel", "add", "staging")
        cli.ok("channel", "add", "gamma", "--self-assign")
        rows = channels(api)
        assert (rows["staging"]["allow_device_self_set"], rows["staging"]["public"]) == (
            False,
            False,
        )
        assert rows["gamma"]["allow_device_self_set"] is True
        listed = cli.ok("channel", "list").output
        assert all(name in listed for name in (default, "beta", "staging", "gamma")), listed

        cli.ok("channel", "set", "staging", "--bundle", "1.0.2")
        assert serves(api, "staging") == "1.0.2"
        cli.ok("channel", "set", "staging", "--state", "default", "--no-ios", "--self-assign")
        staging = channels(api)["staging"]
        assert (staging["public"], staging["ios"], staging["android"]) == (True, False, True)
        assert staging["allow_device_self_set"] is True
        assert staging["version"]["name"] == "1.0.2"

        cli.ok("channel", "delete", "gamma")
        assert "gamma" not in channels(api)
        cli.ok("channel", "delete", "ext", "--delete-bundle")
        assert "ext" not in channels(api)
        assert "1.0.5" not in bundles(api)

        # probe asks /updates as a fresh Android install would: the default channel answers.
        probed = cli.ok("probe", "--platform", "android")
        assert "1.0.2" in probed.output, probed.describe()
        unpinned = device_update(api, APP_ID, device_id="5e1f0c3a-7d2b-4e8f-9a6c-1b2d3e4f5a6b")
        assert unpinned["version"] == "1.0.2", unpinned
        assert sha256_hex(download(api, unpinned["url"])) == unpinned["checksum"]

        # --delta-only would upload nothing here (delta updates are off): refused, and no
        # bundle is left behind, nor on the channel.
        cli.set_web_content("delta only")
        args = ("bundle", "upload", "--bundle", "1.3.0", "--channel", "staging", "--delta-only")
        delta_only = cli.run(*args)
        assert delta_only.returncode == 1, delta_only.describe()
        assert "--delta-only" in delta_only.output, delta_only.describe()
        assert "1.3.0" not in bundles(api)
        assert serves(api, "staging") == "1.0.2"

        if cli.version == VERSIONS[0]:  # the server's side of these is the same for both
            assert_zip_refused(cli, api)
            assert_key_modes(cli, api)

    assert cli.blocked_hosts() <= ALLOWED_REMOTE_HOSTS, cli.guard_log.read_text()


def assert_zip_refused(cli: OfficialCli, api: httpx.Client) -> None:
    """``--zip`` (the legacy presigned upload) is refused: uploads go through tus."""
    cli.set_web_content("zip")
    zipped = cli.run("bundle", "upload", "--bundle", "1.3.1", "--channel", "staging", "--zip")
    assert zipped.returncode == 1, zipped.describe()
    assert "tus" in zipped.output, zipped.describe()
    assert "1.3.1" not in bundles(api)


def assert_key_modes(cli: OfficialCli, api: httpx.Client) -> None:
    """What the README says of key modes: a ``write`` key uploads and sets channels; deleting
    a channel takes an ``all`` key, as ``DELETE /channel`` does; an ``upload`` key is not
    enough for ``bundle upload``, which sets a channel."""
    created = api.post("/apikey", json={"name": "ci", "mode": "write"})
    assert created.status_code == 200, created.text
    write_key = created.json()["key"]
    upload(cli, "1.2.0", "--channel", "staging", "-a", write_key)
    assert serves(api, "staging") == "1.2.0"
    refused = cli.run("channel", "delete", "beta", "-a", write_key)
    assert refused.returncode == 1, refused.describe()
    assert "beta" in channels(api)
    # An upload key uploads, but cannot set a channel, and then no bundle is left behind.
    created = api.post("/apikey", json={"name": "ci upload", "mode": "upload"})
    assert created.status_code == 200, created.text
    cli.set_web_content("upload key")
    args = ("bundle", "upload", "--bundle", "1.2.1", "--channel", "staging")
    upload_only = cli.run(*args, "-a", created.json()["key"])
    assert upload_only.returncode == 1, upload_only.describe()
    assert "1.2.1" not in bundles(api)
    assert serves(api, "staging") == "1.2.0"


def test_ci_and_make_install_the_versions_tested() -> None:
    """The pins live in three places: the tests, the Makefile's default and .ci/run."""
    pins = " ".join(VERSIONS)
    assert f"CAPGO_CLI_VERSIONS ?= {pins}\n" in (REPO / "Makefile").read_text()
    assert f'make capgo-cli CAPGO_CLI_VERSIONS="{pins}"\n' in (REPO / ".ci" / "run").read_text()


@pytest.mark.parametrize(
    ("cli_version", "fatal"), [("8.28.2", True), ("8.34.9", True), ("8.35.0", False)]
)
async def test_a_cli_older_than_8_35_is_stopped_with_a_message(
    client: httpx.AsyncClient, alice: Account, cli_version: str, fatal: bool
) -> None:
    """Older CLIs need far more of Supabase than we serve; ``bundle upload`` asks for these
    warnings first (8.28.2 too) and stops on a fatal one, printing its message. Installing
    such a CLI is out of scope, so this is its request as it sends it."""
    response = await client.post(
        "/rest/v1/rpc/get_organization_cli_warnings",
        json={"orgid": alice.org_id, "cli_version": cli_version},
        headers={"capgkey": alice.key, "apikey": ANON, "authorization": f"Bearer {ANON}"},
    )
    assert response.status_code == 200, response.text
    warnings = response.json()
    if not fatal:
        assert warnings == []
        return
    assert [warning["fatal"] for warning in warnings] == [True], warnings
    assert "8.35" in warnings[0]["message"], warnings
