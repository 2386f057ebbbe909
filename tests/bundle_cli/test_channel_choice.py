"""Where ``capgo-server bundle upload`` puts a bundle, and ``bundle promote``, as processes
against a real ``capgo-server serve`` (SQLite and PostgreSQL).

A release must not vanish: without ``--channel`` the bundle goes to the app's default upload
channel (``dev`` for an app created through ``POST /app``, as in Capgo), or a warning says that
no channel serves it; a channel that does not exist is refused before any byte is sent unless
``--create-channel`` is given.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.bundle_cli.test_end_to_end import (
    CHUNK,
    Live,
    channel_version,
    live_server,
    summary,
    web_folder,
)
from tests.test_cli import describe, error_line


@pytest.fixture(scope="module")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_server(database_url, tmp_path_factory.mktemp("channels")) as server:
        yield server


def upload(live: Live, app_id: str, version: str, *options: str, key: str | None = None) -> Any:
    folder, _ = web_folder(live.cwd, filler=1000)
    return live.cli(
        "bundle", "upload", "--app-id", app_id, "--version", version, *options, str(folder),
        key=key,
    )  # fmt: skip


def promote(live: Live, app_id: str, version: str, channel: str, *options: str) -> Any:
    return live.cli(
        "bundle", "promote", "--app-id", app_id, "--version", version, "--channel", channel,
        *options,
    )  # fmt: skip


def make_channel(live: Live, app_id: str, name: str, **fields: Any) -> None:
    with live.http() as http:
        response = http.post("/channel", json={"app_id": app_id, "channel": name, **fields})
    assert response.status_code == 200, response.text


def bundle_names(live: Live, app_id: str) -> list[str]:
    with live.http() as http:
        response = http.get("/bundle", params={"app_id": app_id})
    assert response.status_code == 200, response.text
    return [row["name"] for row in response.json()]


def channel_row(live: Live, app_id: str, name: str) -> Any:
    with live.http() as http:
        return http.get("/channel", params={"app_id": app_id, "channel": name})


def key_of_mode(live: Live, mode: str) -> str:
    with live.http() as http:
        created = http.post("/apikey", json={"name": mode, "mode": mode})
    assert created.status_code == 200, created.text
    key: str = created.json()["key"]
    return key


def stderr_of(result: Any, prefix: str) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith(prefix)]


def private_notes(app_id: str, channel: str) -> list[str]:
    public = json.dumps({"app_id": app_id, "channel": channel, "public": True})
    return [
        f"note: created channel {channel!r} of {app_id}: it is private, so only devices with an "
        f"override to it (POST /device) or defaultChannel {channel!r} in their app's "
        "capacitor.config get its bundles",
        f"note: to serve every device from it, make it public: POST /channel {public}",
    ]


class TestDefaultChannel:
    def test_the_default_upload_channel_gets_the_bundle_and_is_named(
        self, live: Live, app_id: str
    ) -> None:
        make_channel(live, app_id, "dev")  # POST /app gave the app default_upload_channel "dev"
        result = upload(live, app_id, "1.0.0")
        assert summary(result)[-1] == (
            "  channel  dev (updated, was unknown; the app's default upload channel)"
        )
        assert stderr_of(result, "warning:") == []
        assert channel_version(live, app_id, "dev") == "1.0.0"

    def test_json_names_the_channel_and_where_it_came_from(self, live: Live, app_id: str) -> None:
        make_channel(live, app_id, "dev")
        summary(upload(live, app_id, "1.0.0"))
        result = upload(live, app_id, "1.0.1", "--json")
        outcome = json.loads("".join(summary(result)))
        assert {key: outcome[key] for key in ("channel", "channel_created", "channel_source")} == {
            "channel": "dev",
            "channel_created": False,
            "channel_source": "default",
        }
        assert (outcome["previous_version"], outcome["warning"]) == ("1.0.0", None)
        assert channel_version(live, app_id, "dev") == "1.0.1"

    def test_a_missing_default_channel_is_not_created_and_a_warning_says_so(
        self, live: Live, app_id: str
    ) -> None:
        make_channel(live, app_id, "production")
        result = upload(live, app_id, "1.0.1")
        assert summary(result)[-1] == "  channel  none (see the warning)"
        assert result.stderr.splitlines()[-1] == (
            f"warning: no channel serves 1.0.1: {app_id}'s default upload channel 'dev' does "
            f"not exist (channels of {app_id}: production); to serve this bundle run "
            f"`capgo-server bundle promote --app-id {app_id} --version 1.0.1 --channel dev "
            f"--create-channel`; or `capgo-server bundle promote --app-id {app_id} "
            "--version 1.0.1 --channel production`"
        )
        assert bundle_names(live, app_id) == ["1.0.1"]
        missing = channel_row(live, app_id, "dev")
        assert (missing.status_code, missing.json()["error"]) == (400, "cannot_find_version")
        assert channel_version(live, app_id, "production") == "unknown"

    def test_the_warning_is_in_the_json_too(self, live: Live, app_id: str) -> None:
        result = upload(live, app_id, "1.0.0", "--json")
        outcome = json.loads(result.stdout)
        assert (outcome["channel"], outcome["channel_created"]) == (None, None)
        assert outcome["warning"] == (
            f"no channel serves 1.0.0: {app_id}'s default upload channel 'dev' does not exist "
            f"({app_id} has no channels yet); to serve this bundle run `capgo-server bundle "
            f"promote --app-id {app_id} --version 1.0.0 --channel dev --create-channel`"
        )
        assert result.stderr.splitlines()[-1] == "warning: " + outcome["warning"]

    def test_a_key_that_cannot_read_the_app_is_warned(self, live: Live, app_id: str) -> None:
        make_channel(live, app_id, "dev")
        result = upload(live, app_id, "1.0.0", key=key_of_mode(live, "write"))
        assert summary(result)[-1] == "  channel  none (see the warning)"
        assert stderr_of(result, "warning:") == [
            f"warning: no channel serves 1.0.0: this API key may not read {app_id}'s default "
            "upload channel (keys of mode write or upload cannot read apps); name it with "
            f"--channel (a key of mode write may), or run `capgo-server bundle promote --app-id "
            f"{app_id} --version 1.0.0 --channel NAME` with a key of mode all or write; "
            "--no-channel says that no channel is wanted"
        ]
        assert channel_version(live, app_id, "dev") == "unknown"

    def test_no_channel_uploads_only_and_says_nothing_more(self, live: Live, app_id: str) -> None:
        make_channel(live, app_id, "dev")
        result = upload(live, app_id, "1.0.0", "--no-channel")
        assert summary(result)[-1] == "  channel  none (--no-channel)"
        assert stderr_of(result, "warning:") == []
        assert channel_version(live, app_id, "dev") == "unknown"
        assert bundle_names(live, app_id) == ["1.0.0"]

    @pytest.mark.parametrize("option", ["--channel=beta", "--create-channel"])
    def test_no_channel_contradicts_the_channel_options(
        self, live: Live, app_id: str, option: str
    ) -> None:
        result = upload(live, app_id, "1.0.0", "--no-channel", option)
        name = option.split("=")[0]
        assert error_line(result) == (
            f"error: --no-channel and {name} contradict each other: give one"
        )
        assert bundle_names(live, app_id) == []


class TestChannelOption:
    def test_an_empty_name_is_refused(self, live: Live, app_id: str) -> None:
        make_channel(live, app_id, "dev")
        result = upload(live, app_id, "1.0.0", "--channel", "")
        assert error_line(result) == (
            "error: --channel is empty: give a channel name, or --no-channel"
        )
        assert bundle_names(live, app_id) == []

    def test_a_typo_is_refused_before_any_byte_is_sent(self, live: Live, app_id: str) -> None:
        make_channel(live, app_id, "production")
        make_channel(live, app_id, "beta")
        result = upload(live, app_id, "1.0.0", "--channel", "prod")
        assert error_line(result) == (
            f"error: channel 'prod' does not exist (channels of {app_id}: production, beta; "
            "did you mean 'production'?); nothing was uploaded: check the name, or pass "
            "--create-channel to create it"
        )
        assert bundle_names(live, app_id) == []
        assert channel_row(live, app_id, "prod").status_code == 400
        # Nothing half-done: the same command with the right name works.
        summary(upload(live, app_id, "1.0.0", "--channel", "production"))
        assert channel_version(live, app_id, "production") == "1.0.0"

    def test_create_channel_makes_a_private_channel_and_says_what_that_means(
        self, live: Live, app_id: str
    ) -> None:
        result = upload(live, app_id, "1.0.0", "--channel", "beta", "--create-channel")
        assert summary(result)[-1] == "  channel  beta (created)"
        assert stderr_of(result, "note:") == private_notes(app_id, "beta")
        created = channel_row(live, app_id, "beta")
        assert created.status_code == 200, created.text
        assert (created.json()["public"], created.json()["version"]["name"]) == (False, "1.0.0")

    def test_create_channel_on_an_existing_channel_just_sets_it(
        self, live: Live, app_id: str
    ) -> None:
        make_channel(live, app_id, "beta", public=True)
        result = upload(live, app_id, "1.0.0", "--channel", "beta", "--create-channel")
        assert summary(result)[-1] == "  channel  beta (updated, was unknown)"
        assert stderr_of(result, "note:") == []
        assert channel_row(live, app_id, "beta").json()["public"] is True


class TestPromote:
    def test_promote_moves_the_channel_and_says_from_what(self, live: Live, app_id: str) -> None:
        summary(upload(live, app_id, "1.0.0", "--channel", "production", "--create-channel"))
        summary(upload(live, app_id, "1.0.1", "--no-channel"))
        result = promote(live, app_id, "1.0.1", "production")
        assert summary(result) == [f"channel production of {app_id}: 1.0.0 -> 1.0.1"]
        assert result.stderr == ""
        assert channel_version(live, app_id, "production") == "1.0.1"
        again = promote(live, app_id, "1.0.1", "production", "--json")
        assert json.loads(again.stdout) == {
            "app_id": app_id,
            "channel": "production",
            "version": "1.0.1",
            "previous_version": "1.0.1",
            "changed": False,
            "channel_created": False,
        }
        plain = promote(live, app_id, "1.0.1", "production")
        assert summary(plain) == [
            f"channel production of {app_id} already serves 1.0.1: nothing changed"
        ]
        back = promote(live, app_id, "1.0.0", "production", "--json")
        assert json.loads(back.stdout)["previous_version"] == "1.0.1"
        assert channel_version(live, app_id, "production") == "1.0.0"

    def test_create_channel(self, live: Live, app_id: str) -> None:
        summary(upload(live, app_id, "1.0.0", "--no-channel"))
        result = promote(live, app_id, "1.0.0", "dev", "--create-channel")
        assert summary(result) == [f"channel dev of {app_id}: created, serving 1.0.0"]
        assert result.stderr.splitlines() == private_notes(app_id, "dev")
        assert channel_row(live, app_id, "dev").json()["public"] is False
        assert channel_version(live, app_id, "dev") == "1.0.0"

    def test_unknown_channel_is_not_created(self, live: Live, app_id: str) -> None:
        summary(upload(live, app_id, "1.0.0", "--channel", "production", "--create-channel"))
        result = promote(live, app_id, "1.0.0", "prod")
        assert error_line(result) == (
            f"error: channel 'prod' does not exist (channels of {app_id}: production; did you "
            "mean 'production'?); check the name, or pass --create-channel to create it"
        )
        assert channel_row(live, app_id, "prod").status_code == 400

    @pytest.mark.parametrize("create", [False, True])
    def test_unknown_version(self, live: Live, app_id: str, create: bool) -> None:
        make_channel(live, app_id, "production")
        options = ["--create-channel"] if create else []
        result = promote(live, app_id, "9.9.9", "production" if not create else "new", *options)
        assert error_line(result) == (
            f"error: version 9.9.9 not found for {app_id} "
            f"(`capgo-server bundle list --app-id {app_id}` lists its bundles)"
        )
        assert channel_version(live, app_id, "production") == "unknown"
        assert channel_row(live, app_id, "new").status_code == 400  # nothing half-made

    def test_unknown_app(self, live: Live) -> None:
        result = promote(live, "com.e2e.nosuchapp", "1.0.0", "production")
        assert error_line(result) == (
            "error: app com.e2e.nosuchapp not found or not accessible with this key"
        )

    def test_app_id_that_is_not_one(self, live: Live) -> None:
        result = promote(live, "no spaces", "1.0.0", "production")
        assert error_line(result) == (
            "error: 'no spaces' is not an app id (expected e.g. com.example.app)"
        )

    def test_an_empty_channel_name(self, live: Live, app_id: str) -> None:
        summary(upload(live, app_id, "1.0.0", "--no-channel"))
        result = promote(live, app_id, "1.0.0", " ")
        assert error_line(result) == "error: --channel is empty: give a channel name"

    def test_wrong_key(self, live: Live, app_id: str) -> None:
        result = live.cli(
            "bundle", "promote", "--app-id", app_id, "--version", "1.0.0",
            "--channel", "production", key=str(uuid.uuid4()),
        )  # fmt: skip
        assert error_line(result) == "error: invalid API key"

    def test_a_read_key_may_not_promote(self, live: Live, app_id: str) -> None:
        summary(upload(live, app_id, "1.0.0", "--no-channel"))
        make_channel(live, app_id, "production")
        result = live.cli(
            "bundle", "promote", "--app-id", app_id, "--version", "1.0.0",
            "--channel", "production", key=key_of_mode(live, "read"),
        )  # fmt: skip
        assert error_line(result) == (
            "error: this API key may not set channel production (it needs a key of mode all or "
            "write)"
        )
        assert channel_version(live, app_id, "production") == "unknown"


PROGRESS = re.compile(
    r"progress: (?P<what>\S+ \S+)  (?P<sent>\S+ (?:B|KiB|MiB)) of (?P<size>\S+ (?:B|KiB|MiB)) "
    r"\((?P<share>\d+)%\)(?P<tail>  \S+ (?:B|KiB|MiB)/s| in \d+\.\d s)?"
)


class TestProgressWithoutTerminal:
    def test_a_multi_chunk_upload_logs_lines_in_binary_units(self, live: Live, app_id: str) -> None:
        folder, _ = web_folder(live.cwd, filler=40 * CHUNK)
        result = live.cli(
            "bundle", "upload", "--app-id", app_id, "--version", "1.0.0", "--no-channel",
            "--chunk-size", str(CHUNK), "--progress-interval", "0", str(folder),
        )  # fmt: skip
        lines = summary(result)
        assert lines[1].startswith("  size     5.0 MiB ("), lines
        logged = stderr_of(result, "progress:")
        assert logged == result.stderr.splitlines(), describe(result)
        matches = [PROGRESS.fullmatch(line) for line in logged]
        assert all(matches), logged
        shares = [int(match["share"]) for match in matches if match]
        # Start, one line per 10% at most (40 chunks sent), end: never one line per chunk.
        assert 10 <= len(logged) <= 12, logged
        assert (shares[0], shares[-1]) == (0, 100)
        assert shares == sorted(shares)
        assert all(b - a >= 9 for a, b in itertools.pairwise(shares[:-1])), shares
        assert re.search(r" in \d+\.\d s$", logged[-1]), logged
        assert all(match["size"] == "5.0 MiB" for match in matches if match)

    def test_a_fast_upload_logs_its_start_and_end_only(self, live: Live, app_id: str) -> None:
        folder, _ = web_folder(live.cwd, filler=8 * CHUNK)
        result = live.cli(
            "bundle", "upload", "--app-id", app_id, "--version", "1.0.0", "--no-channel",
            "--chunk-size", str(CHUNK), str(folder),
        )  # fmt: skip
        summary(result)
        logged = result.stderr.splitlines()
        assert 2 <= len(logged) <= 11, describe(result)  # 2 unless the machine is very slow
        assert logged[0].startswith(f"progress: {app_id} 1.0.0  0 B of 1.0 MiB (0%)")
        assert logged[-1].startswith(f"progress: {app_id} 1.0.0  1.0 MiB of 1.0 MiB (100%) in ")
