"""``DELETE /app/:id`` (spec §3.7): the app goes with everything it owns, files included."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import (
    App,
    AuditLog,
    Bundle,
    Channel,
    ChannelOverride,
    DailyBandwidth,
    DeployHistory,
    Device,
    Upload,
)
from tests.apps.helpers import (
    add_bundle,
    add_device_and_usage,
    add_override,
    create_app,
    key_of,
    rows,
    store_file,
    stored_paths,
)
from tests.conftest import Account, error_of
from tests.members.helpers import add_member

OWNED_TABLES = (Bundle, Channel, ChannelOverride, DeployHistory, Device, DailyBandwidth, Upload)


def cannot_delete(app_id: str) -> dict[str, Any]:
    return {
        "error": "cannot_delete_app",
        "message": "You can't delete this app",
        "moreInfo": {"app_id": app_id},
    }


async def populate(client: httpx.AsyncClient, app: FastAPI, owner: Account, app_id: str) -> str:
    """An app with a stored bundle on a channel, an override, a device and usage rows; returns
    the app's storage prefix."""
    await create_app(client, owner, app_id)
    await add_bundle(app, app_id, "1.0.0")
    prefix = f"orgs/{owner.org_id}/apps/{app_id}/"
    await store_file(app, f"{prefix}1.0.0.zip")
    response = await client.post(
        "/channel",
        json={"app_id": app_id, "channel": "production", "version": "1.0.0"},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    (channel,) = await rows(app, Channel, app_id=app_id)
    await add_override(app, app_id, channel.id)
    await add_device_and_usage(app, app_id, owner.user_id)
    return prefix


async def owned_row_counts(app: FastAPI, app_id: str) -> dict[str, int]:
    return {model.__name__: len(await rows(app, model, app_id=app_id)) for model in OWNED_TABLES}


class FailingStore:
    """The real store, except that deleting a prefix fails."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def delete_prefix(self, prefix: str) -> None:
        raise OSError("disk unavailable")


class TestDeleteApp:
    async def test_deletes_rows_and_files(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        prefix = await populate(client, app, alice, "com.alice.app")
        counts = await owned_row_counts(app, "com.alice.app")
        assert all(counts.values()), counts
        response = await client.delete("/app/com.alice.app", headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert await rows(app, App) == []
        assert set((await owned_row_counts(app, "com.alice.app")).values()) == {0}
        assert await stored_paths(app, prefix) == []
        response = await client.get("/app/com.alice.app", headers=alice.headers)
        assert error_of(response) == (401, "cannot_access_app")

    async def test_other_apps_keep_their_rows_and_files(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await populate(client, app, alice, "com.alice.app")
        kept_prefix = await populate(client, app, alice, "com.alice.app2")
        kept = await owned_row_counts(app, "com.alice.app2")
        response = await client.delete("/app/com.alice.app", headers=alice.headers)
        assert response.status_code == 200
        assert await owned_row_counts(app, "com.alice.app2") == kept
        assert await stored_paths(app, kept_prefix) == [f"{kept_prefix}1.0.0.zip"]

    async def test_the_app_id_can_be_used_again(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await populate(client, app, alice, "com.alice.app")
        await client.delete("/app/com.alice.app", headers=alice.headers)
        again = await create_app(client, alice, "com.alice.app")
        assert again["app_id"] == "com.alice.app"
        names = sorted(b.name for b in await rows(app, Bundle, app_id="com.alice.app"))
        assert names == ["builtin", "unknown"]

    async def test_is_recorded_in_the_audit_trail(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        created = await create_app(client, alice, "com.alice.app")
        await client.delete("/app/com.alice.app", headers=alice.headers)
        entries = [(e.operation, e.record_id) for e in await rows(app, AuditLog, table_name="apps")]
        assert entries == [("INSERT", created["id"]), ("DELETE", created["id"])]

    async def test_storage_failure_after_commit_leaves_only_an_orphan_file(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        alice: Account,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        prefix = await populate(client, app, alice, "com.alice.app")
        monkeypatch.setattr(app.state, "bundle_store", FailingStore(app.state.bundle_store))
        response = await client.delete("/app/com.alice.app", headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert await rows(app, App) == []
        assert set((await owned_row_counts(app, "com.alice.app")).values()) == {0}
        assert await stored_paths(app, prefix) == [f"{prefix}1.0.0.zip"]
        assert f"could not remove the stored files under {prefix}" in caplog.text

    async def test_unknown_app_is_400(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.delete("/app/com.nobody.app", headers=alice.headers)
        assert response.status_code == 400
        assert response.json() == cannot_delete("com.nobody.app")

    async def test_foreign_app_is_refused_like_an_unknown_one(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        prefix = await populate(client, app, bob, "com.bob.app")
        response = await client.delete("/app/com.bob.app", headers=alice.headers)
        assert response.status_code == 400
        assert response.json() == cannot_delete("com.bob.app")
        assert [a.app_id for a in await rows(app, App)] == ["com.bob.app"]
        assert await stored_paths(app, prefix) == [f"{prefix}1.0.0.zip"]

    async def test_invalid_app_id(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.delete("/app/invalid_app", headers=alice.headers)
        assert error_of(response) == (400, "invalid_app_id")

    @pytest.mark.parametrize("role", ["read", "upload"])
    async def test_members_below_write_are_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, role: str
    ) -> None:
        await create_app(client, alice, "com.alice.app")
        member = await add_member(client, app, alice, f"{role}@example.com", role)
        response = await client.delete("/app/com.alice.app", headers=member.headers)
        assert response.status_code == 400
        assert response.json() == cannot_delete("com.alice.app")
        assert len(await rows(app, App)) == 1

    async def test_write_member_may_delete(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, "com.alice.app")
        member = await add_member(client, app, alice, "writer@example.com", "write")
        response = await client.delete("/app/com.alice.app", headers=member.headers)
        assert response.status_code == 200
        assert await rows(app, App) == []

    async def test_read_key_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, "com.alice.app")
        headers = await key_of(client, alice, mode="read")
        response = await client.delete("/app/com.alice.app", headers=headers)
        assert error_of(response) == (401, "invalid_apikey")
        assert len(await rows(app, App)) == 1

    async def test_key_limited_to_other_apps_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, "com.alice.one")
        await create_app(client, alice, "com.alice.two")
        headers = await key_of(client, alice, mode="write", limited_to_apps=["com.alice.two"])
        response = await client.delete("/app/com.alice.one", headers=headers)
        assert response.status_code == 400
        assert response.json() == cannot_delete("com.alice.one")
        assert len(await rows(app, App)) == 2
