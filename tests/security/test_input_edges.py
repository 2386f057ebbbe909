"""Values at the edges of what Python and the database can hold: each was a 500 (a traceback,
twice without a key), or a bundle upload stuck for good; each is now the route's own refusal.

* integers of 4,301 digits: past Python's int-string conversion limit (``ValueError``);
* integers one past a ``BIGINT`` column: PostgreSQL refuses the statement;
* timestamps at the calendar's ends whose UTC instant is outside it (``OverflowError``);
* a well-formed version too long for the bundle's name column and for its file's name.

Every case also sends an ordinary bad value of the same parameter, to prove the edge value gets
the code that parameter always gets.
"""

from __future__ import annotations

import errno
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.integers import BIGINT_MAX
from capgo_server.validation import MAX_VERSION_LENGTH
from tests.apps.helpers import create_app
from tests.bundles.helpers import create_bundle
from tests.conftest import Account, error_of, make_key
from tests.files.support import (
    OCTETS,
    TUS,
    UPLOADS,
    Tus,
    bundle_path,
    bundle_row,
    local_path,
    store_of,
    upload_rows,
    web_bundle,
)
from tests.plugin.seed import APP_ID, base_data, channel_ids, save_channel

#: One digit past Python's limit on converting strings to integers (4,300 digits).
DIGITS_4301 = "9" * 4301
#: One past the largest ``BIGINT``.
PAST_BIGINT = str(BIGINT_MAX + 1)
#: ``from``/``to`` values whose instant in UTC is in the year 0 and in the year 10000.
CALENDAR_START = "0001-01-01T00:00:00+14:00"
CALENDAR_END = "9999-12-31T23:59:59-14:00"
#: Strict semver, 306 characters: longer than the bundle's name column.
LONG_SEMVER = "1.0.0-" + "a" * 300


@dataclass(frozen=True)
class Seeded:
    """Alice's app, one of its bundles and channels, and a key to edit."""

    client: httpx.AsyncClient
    owner: Account
    bundle_id: int
    channel_id: int
    key_id: int

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.owner.headers)

    async def send(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.request(method, path, json=body, headers=self.owner.headers)

    async def device(self, path: str, **fields: Any) -> httpx.Response:
        """A device request; each from a new device, so no per-device limit interferes."""
        body = base_data(**{"device_id": str(uuid.uuid4()), "action": "get", **fields})
        return await self.client.post(path, json=body)


@pytest.fixture
async def seeded(app: FastAPI, client: httpx.AsyncClient, alice: Account) -> Seeded:
    """Alice's app with one bundle served on its public channel ``production``."""
    await create_app(client, alice, APP_ID)
    bundle = await create_bundle(client, alice, "1.0.0", APP_ID)
    await save_channel(client, alice, APP_ID, "production", version="1.0.0", public=True)
    key = await make_key(client, alice, name="edited")
    channel = (await channel_ids(app))["production"]
    return Seeded(client, alice, bundle["id"], channel, key["id"])


Send = Callable[[Seeded, Any], Awaitable[httpx.Response]]

#: (parameter, how to send a value of it, the route's refusal, an ordinary bad value).
INTEGER_PARAMETERS: list[tuple[str, Send, tuple[int, str], Any]] = [
    (
        "GET /device limit",
        lambda s, v: s.get("/device", app_id=APP_ID, limit=v),
        (400, "invalid_limit"),
        "0",
    ),
    ("GET /app limit", lambda s, v: s.get("/app", limit=v), (400, "invalid_body"), "0"),
    (
        "GET /organization/audit limit",
        lambda s, v: s.get("/organization/audit", orgId=s.owner.org_id, limit=v),
        (400, "invalid_body"),
        "0",
    ),
    (
        "PUT /bundle version_id",
        lambda s, v: s.send(
            "PUT", "/bundle", {"app_id": APP_ID, "version_id": v, "channel_id": s.channel_id}
        ),
        (400, "cannot_find_version"),
        "abc",
    ),
    (
        "PUT /bundle channel_id",
        lambda s, v: s.send(
            "PUT", "/bundle", {"app_id": APP_ID, "version_id": s.bundle_id, "channel_id": v}
        ),
        (400, "cannot_find_channel"),
        "abc",
    ),
    (
        "POST /bundle/metadata version_id",
        lambda s, v: s.send(
            "POST", "/bundle/metadata", {"app_id": APP_ID, "version_id": v, "comment": "c"}
        ),
        (400, "cannot_find_version"),
        "abc",
    ),
    (
        "POST /device channel_id",
        lambda s, v: s.send(
            "POST",
            "/device",
            {"app_id": APP_ID, "device_id": str(uuid.uuid4()), "channel_id": v},
        ),
        (404, "channel_not_found"),
        "no-such-channel",
    ),
    (
        "POST /updates version_build",
        lambda s, v: s.device("/updates", version_build=v),
        (400, "semver_error"),
        "abc",
    ),
    (
        "POST /stats version_build",
        lambda s, v: s.device("/stats", version_build=v),
        (400, "semver_error"),
        "abc",
    ),
    (
        "POST /channel_self version_build",
        lambda s, v: s.device("/channel_self", version_build=v),
        (400, "semver_error"),
        "abc",
    ),
    (
        "tus Upload-Length",
        lambda s, v: s.client.post(
            UPLOADS,
            headers={**s.owner.headers, **TUS, "Upload-Length": v, "Upload-Metadata": ""},
        ),
        (400, "invalid_upload_length"),
        "abc",
    ),
]


@pytest.mark.parametrize("value", [DIGITS_4301, PAST_BIGINT], ids=["4301-digits", "past-bigint"])
@pytest.mark.parametrize(
    ("send", "refusal", "ordinary"),
    [pytest.param(*case[1:], id=case[0]) for case in INTEGER_PARAMETERS],
)
async def test_integers_past_every_bound_get_the_routes_refusal(
    seeded: Seeded, send: Send, refusal: tuple[int, str], ordinary: Any, value: str
) -> None:
    assert error_of(await send(seeded, ordinary)) == refusal
    assert error_of(await send(seeded, value)) == refusal


async def test_a_version_with_a_huge_number_is_no_version_for_devices(seeded: Seeded) -> None:
    """Inside a full version, not only a bare number; past JavaScript's safe integers (which
    bound the semver parsers Capgo's clients use) a number is no version part either."""
    for version in (f"{DIGITS_4301}.0.0", f"1.{2**53}.0"):
        response = await seeded.device("/updates", version_build=version)
        assert error_of(response) == (400, "semver_error")
    response = await seeded.device("/updates", version_build=f"1.{2**53 - 1}.0")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("percentage", [10**4000, -(10**4000)], ids=["huge", "huge-negative"])
async def test_a_rollout_percentage_of_thousands_of_digits(seeded: Seeded, percentage: int) -> None:
    """A JSON integer too large to become a float (``math.isfinite`` overflowed)."""
    body = {"app_id": APP_ID, "channel": "production", "rollout_percentage": percentage}
    for value in (101, percentage):
        response = await seeded.send("POST", "/channel", {**body, "rollout_percentage": value})
        assert error_of(response) == (400, "invalid_rollout_percentage")


async def test_an_upload_offset_past_bigint(seeded: Seeded) -> None:
    tus = Tus(seeded.client, seeded.owner.headers)
    url = await tus.start(bundle_path(seeded.owner, APP_ID, "9.0.0"), 10)
    for offset in ("abc", DIGITS_4301, PAST_BIGINT):
        response = await tus.patch(url, 0, b"x", **{"Upload-Offset": offset})
        assert error_of(response) == (400, "invalid_upload_offset")
    assert await tus.offset(url) == 0


async def test_a_content_length_of_4301_digits_is_too_large(seeded: Seeded) -> None:
    response = await seeded.client.post(
        "/apikey",
        content=b'{"name": "n"}',
        headers={
            **seeded.owner.headers,
            "content-type": "application/json",
            "content-length": DIGITS_4301,
        },
    )
    assert error_of(response) == (413, "body_too_large")


# --- timestamps -----------------------------------------------------------------------------

#: (parameter, how to send a timestamp in it, the route's refusal, an ordinary bad value).
TIMESTAMP_PARAMETERS: list[tuple[str, Send, tuple[int, str], str]] = [
    *(
        (
            f"GET {path} {field}",
            lambda s, v, path=path, field=field: s.get(
                path.replace("ORG", s.owner.org_id),
                **{"from": "2026-01-01", "to": "2026-01-02", field: v},
            ),
            (400, "invalid_body"),
            "2026-13-01",
        )
        for path in (
            f"/statistics/app/{APP_ID}",
            f"/statistics/app/{APP_ID}/bundle_usage",
            "/statistics/org/ORG",
            "/statistics/user",
        )
        for field in ("from", "to")
    ),
    (
        "GET /device cursor",
        lambda s, v: s.get("/device", app_id=APP_ID, cursor=f"{v}|{uuid.uuid4()}"),
        (400, "invalid_cursor"),
        "yesterday",
    ),
    (
        "POST /apikey expires_at",
        lambda s, v: s.send("POST", "/apikey", {"name": "k", "expires_at": v}),
        (400, "invalid_expiration_date"),
        "yesterday",
    ),
    (
        "PUT /apikey/:id expires_at",
        lambda s, v: s.send("PUT", f"/apikey/{s.key_id}", {"expires_at": v}),
        (400, "invalid_expiration_date"),
        "yesterday",
    ),
]


@pytest.mark.parametrize("value", [CALENDAR_START, CALENDAR_END], ids=["year-0", "year-10000"])
@pytest.mark.parametrize(
    ("send", "refusal", "ordinary"),
    [pytest.param(*case[1:], id=case[0]) for case in TIMESTAMP_PARAMETERS],
)
async def test_timestamps_outside_the_calendar_in_utc_get_the_routes_refusal(
    seeded: Seeded, send: Send, refusal: tuple[int, str], ordinary: str, value: str
) -> None:
    assert error_of(await send(seeded, ordinary)) == refusal
    assert error_of(await send(seeded, value)) == refusal


async def test_the_calendars_last_instant_in_utc_is_a_valid_expiry(seeded: Seeded) -> None:
    response = await seeded.send(
        "POST", "/apikey", {"name": "k", "expires_at": "9999-12-31T23:59:59Z"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["expires_at"] == "9999-12-31T23:59:59.000Z"


# --- versions -------------------------------------------------------------------------------


async def test_post_bundle_refuses_a_version_too_long_as_a_bad_version(seeded: Seeded) -> None:
    body = {"app_id": APP_ID, "external_url": "https://cdn.example/b.zip", "checksum": "c"}
    for version in ("1.0", LONG_SEMVER, "1.0.0-" + "a" * (MAX_VERSION_LENGTH - 5)):
        response = await seeded.send("POST", "/bundle", {**body, "version": version})
        assert error_of(response) == (400, "invalid_version_format")
    assert response.json()["moreInfo"]["max_length"] == MAX_VERSION_LENGTH
    longest = "1.0.0-" + "a" * (MAX_VERSION_LENGTH - 6)
    response = await seeded.send("POST", "/bundle", {**body, "version": longest})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("version", [LONG_SEMVER, "1.0.0-" + "a" * (MAX_VERSION_LENGTH - 5)])
async def test_an_upload_of_a_version_too_long_is_refused_and_the_version_stays_free(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, version: str
) -> None:
    """The upload was accepted, then failed after its last byte (the file's name was too long
    for the disk; on PostgreSQL the upload row was): every retry answered 500, and a new upload
    ``version_already_exists`` with ``upload_in_progress``."""
    await create_app(client, alice, APP_ID)
    tus, data = Tus(client, alice.headers), web_bundle(1000)
    for attempt in range(2):
        response = await tus.create(bundle_path(alice, APP_ID, version), len(data))
        assert error_of(response) == (400, "invalid_version_format"), attempt
        assert response.json()["moreInfo"]["max_length"] == MAX_VERSION_LENGTH
        assert await upload_rows(app) == []
    assert (await tus.upload(bundle_path(alice, APP_ID, "2.0.0"), data)).status_code == 204
    assert await bundle_row(app, APP_ID, "2.0.0") is not None


async def test_the_longest_version_uploads_and_downloads(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    """Its file's name, and the name the local store writes it under first, fit the disk."""
    await create_app(client, alice, APP_ID)
    longest = "1.0.0-" + "a" * (MAX_VERSION_LENGTH - 6)
    data = web_bundle(1000)
    uploaded = await Tus(client, alice.headers).upload(bundle_path(alice, APP_ID, longest), data)
    assert uploaded.status_code == 204, uploaded.text
    linked = await client.post(
        "/files/download_link", json={"app_id": APP_ID, "version": longest}, headers=alice.headers
    )
    assert linked.status_code == 200, linked.text
    downloaded = await client.get(local_path(linked.json()["url"]))
    assert downloaded.status_code == 200
    assert downloaded.content == data


async def test_a_store_that_cannot_name_the_file_discards_the_upload(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system holding shorter names than versions may have (eCryptfs: 143 bytes): the
    upload is refused and discarded, not kept to fail on every retry."""
    await create_app(client, alice, APP_ID)
    store = store_of(app)
    write = store.write
    version = "1.0.0-" + "a" * 200
    target = bundle_path(alice, APP_ID, version)

    async def short_names(path: str, chunks: AsyncIterable[bytes]) -> int:
        if path == target:
            raise OSError(errno.ENAMETOOLONG, "File name too long", path)
        written: int = await write(path, chunks)
        return written

    monkeypatch.setattr(store, "write", short_names)
    tus, data = Tus(client, alice.headers), web_bundle(1000)
    url = await tus.start(target, len(data))
    response = await tus.send_all(url, data, 400)
    assert error_of(response) == (400, "invalid_version_format")
    assert await upload_rows(app) == []
    assert await bundle_row(app, APP_ID, version) is None
    response = await client.patch(
        url,
        content=data,
        headers={**alice.headers, **TUS, "Content-Type": OCTETS, "Upload-Offset": "0"},
    )
    assert error_of(response) == (404, "upload_not_found")
    assert (await tus.create(target, len(data))).status_code == 201
