"""T13 and T14 over HTTP (plan §1.3, §4.4, §5 Q4): ``channel delete --delete-bundle``
soft-deletes the channel's bundle as ``DELETE /bundle`` does, just before it deletes the
channel; the CLI's undo of that (T14) is refused, since the bundle's file is gone."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import AuditLog, Bundle
from tests.apps.helpers import add_bundle, create_app, rows, store_file, stored_paths
from tests.cli_compat.table_data import sb
from tests.conftest import Account, make_key

APP = "com.rec.demo"
T13 = "/rest/v1/app_versions?app_id=eq.{app}&deleted=eq.false&name=eq.{ver}"
T14 = "/rest/v1/app_versions?app_id=eq.{app}&name=in.({names})"


def pg(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "details": None, "hint": None}


async def delete_version(
    client: httpx.AsyncClient, key: str, version: str, body: Any = None, app_id: str = APP
) -> httpx.Response:
    return await client.patch(
        T13.format(app=app_id, ver=version),
        json={"deleted": True} if body is None else body,
        headers=sb(key),
    )


async def restore(client: httpx.AsyncClient, key: str, *names: str) -> httpx.Response:
    return await client.patch(
        T14.format(app=APP, names=",".join(names)), json={"deleted": False}, headers=sb(key)
    )


async def serve(client: httpx.AsyncClient, owner: Account, channel: str, version: str) -> None:
    response = await client.post(
        "/channel",
        json={"app_id": APP, "channel": channel, "version": version},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text


async def live(app: FastAPI) -> list[str]:
    return [bundle.name for bundle in await rows(app, Bundle, app_id=APP, deleted=False)]


@pytest.fixture
async def gamma(app: FastAPI, client: httpx.AsyncClient, alice: Account) -> int:
    """Bundle 1.0.5, stored, served by channel ``gamma`` only (trace chdel3)."""
    await create_app(client, alice, APP)
    bundle_id = await add_bundle(app, APP, "1.0.5")
    await store_file(app, f"orgs/{alice.org_id}/apps/{APP}/1.0.5.zip")
    await serve(client, alice, "gamma", "1.0.5")
    return bundle_id


class TestDelete:
    async def test_the_bundle_of_the_channel_being_deleted(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, gamma: int
    ) -> None:
        response = await delete_version(client, alice.key, "1.0.5")
        assert (response.status_code, response.content) == (204, b"")
        [bundle] = await rows(app, Bundle, id=gamma)
        assert bundle.deleted
        assert bundle.deleted_at is not None
        assert await stored_paths(app, f"orgs/{alice.org_id}/apps/{APP}/") == []
        audited = await rows(app, AuditLog, table_name="app_versions", record_id=str(gamma))
        assert [(entry.operation, entry.changed_fields) for entry in audited] == [
            ("UPDATE", ["deleted", "deleted_at"])
        ]
        listed = await client.get("/bundle", params={"app_id": APP}, headers=alice.headers)
        assert listed.json() == []
        again = await delete_version(client, alice.key, "1.0.5")
        assert (again.status_code, again.json()) == (
            404,
            pg("PGRST116", f"no row matches: no live bundle 1.0.5 in app {APP}"),
        )

    async def test_a_bundle_two_channels_serve_is_kept(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, gamma: int
    ) -> None:
        await serve(client, alice, "beta", "1.0.5")
        response = await delete_version(client, alice.key, "1.0.5")
        assert (response.status_code, response.json()) == (
            400,
            pg(
                "cannot_delete_linked_version",
                "Channels beta, gamma serve bundle 1.0.5: set another bundle on all but the "
                "channel being deleted first",
            ),
        )
        assert await live(app) == ["1.0.5"]

    async def test_internal_bundles_are_refused(
        self, client: httpx.AsyncClient, alice: Account, gamma: int
    ) -> None:
        response = await delete_version(client, alice.key, "unknown")
        assert (response.status_code, response.json()) == (
            400,
            pg(
                "cannot_delete_version",
                "unknown names the app's native state, not a bundle: it cannot be deleted",
            ),
        )

    @pytest.mark.parametrize("mode", ["read", "upload"])
    async def test_keys_without_write_are_refused(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, gamma: int, mode: str
    ) -> None:
        key = (await make_key(client, alice, mode=mode))["key"]
        response = await delete_version(client, key, "1.0.5")
        assert (response.status_code, response.json()) == (
            403,
            pg("42501", f"permission denied: this key may not delete bundles of {APP}"),
        )
        assert await live(app) == ["1.0.5"]

    async def test_another_tenant_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, bob: Account, gamma: int
    ) -> None:
        response = await delete_version(client, bob.key, "1.0.5")
        assert response.status_code == 403
        assert response.json()["code"] == "42501"
        assert await live(app) == ["1.0.5"]

    @pytest.mark.parametrize("body", [{"deleted": False}, {"deleted": True, "name": "x"}, []])
    async def test_only_deleted_true(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, gamma: int, body: Any
    ) -> None:
        response = await delete_version(client, alice.key, "1.0.5", body)
        assert (response.status_code, response.json()) == (
            400,
            pg("PGRST100", "only {deleted: true} of a live bundle is supported"),
        )
        assert await live(app) == ["1.0.5"]


class TestRestore:
    async def test_restoring_is_refused_clearly(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, bob: Account, gamma: int
    ) -> None:
        assert (await delete_version(client, alice.key, "1.0.5")).status_code == 204
        response = await restore(client, alice.key, "1.0.5")
        assert (response.status_code, response.json()) == (
            400,
            pg(
                "restore_not_supported",
                "Restoring deleted bundles is not supported: a deleted bundle's file is removed "
                "when it is deleted. Upload the bundle again under a new version.",
            ),
        )
        foreign = await restore(client, bob.key, "1.0.5")
        assert (foreign.status_code, foreign.json()["code"]) == (403, "42501")
        assert await live(app) == []
