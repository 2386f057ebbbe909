"""The ``/updates`` decision without HTTP: gates the API cannot reach, the kinds of every refusal,
the plugin-version floors; and the device rate limit of the route."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from capgo_server.app import create_app
from capgo_server.models import Bundle, Channel
from capgo_server.plugin.common import SemVer
from capgo_server.plugin.update_rules import (
    GATES,
    REFUSAL_KINDS,
    Situation,
    UpdateRequest,
    decide,
    gets_manifest,
    gets_metadata,
)
from capgo_server.settings import Settings

DEVICE = "00009a6b-eefe-490a-9c60-8e965132ae51"


def request(**changes: object) -> UpdateRequest:
    body: dict[str, object] = {
        "app_id": "com.demo.app",
        "device_id": DEVICE,
        "version_name": "1.0.0",
        "version_build": "1.0.0",
        "is_emulator": False,
        "is_prod": True,
        "platform": "android",
        "plugin_version": "7.0.0",
        **changes,
    }
    return UpdateRequest.model_validate(body)


def channel(**flags: object) -> Channel:
    values: dict[str, object] = {
        "name": "private",
        "public": False,
        "allow_device_self_set": False,
        "disable_auto_update": "none",
        "disable_auto_update_under_native": True,
        "ios": True,
        "android": True,
        "electron": True,
        "allow_emulator": True,
        "allow_device": True,
        "allow_dev": True,
        "allow_prod": True,
        **flags,
    }
    return Channel(**values)


def bundle(name: str = "1.2.0") -> Bundle:
    return Bundle(name=name, deleted=False, external_url="https://cdn.example.com/b.zip")


def test_private_channel_message_without_default_channel() -> None:
    refusal = decide(Situation(request(version_name="1.1.0"), channel(), False, bundle()))
    assert refusal is not None
    assert refusal.body() == {
        "error": "cannot_update_via_private_channel",
        "message": 'Cannot update via a private channel. The channel "private" does not allow '
        'device self-assignment. Please set a defaultChannel with "Allow devices to self '
        'dissociate/associate" enabled.',
        "kind": "blocked",
    }
    assert refusal.action == "cannotUpdateViaPrivateChannel"


def test_offerable_situation() -> None:
    situation = Situation(request(version_name="1.1.0"), channel(public=True), False, bundle())
    assert decide(situation) is None
    assert len(GATES) == 12


def test_every_refusal_has_a_kind() -> None:
    assert set(REFUSAL_KINDS.values()) == {"up_to_date", "blocked", "failed"}
    assert {code for code, kind in REFUSAL_KINDS.items() if kind != "blocked"} == {
        "no_new_version_available",
        "already_on_builtin",
        "no_bundle",
        "no_bundle_url",
    }


@pytest.mark.parametrize(
    ("version", "manifest", "metadata"),
    [
        ("5.9.9", False, False),
        ("5.10.0", True, False),
        ("5.35.0", True, True),
        ("6.24.9", False, False),
        ("6.25.0", True, False),
        ("7.0.34", False, False),
        ("7.0.35", True, False),
        ("7.35.0", True, True),
        ("8.0.0", True, False),
        ("8.35.0", True, True),
        ("9.0.0", True, True),
        ("3.0.0", False, False),
    ],
)
def test_plugin_version_floors(version: str, manifest: bool, metadata: bool) -> None:
    parsed = SemVer.parse(version)
    assert parsed is not None
    assert (gets_manifest(parsed), gets_metadata(parsed)) == (manifest, metadata)


def test_request_defaults_and_extra_fields() -> None:
    parsed = UpdateRequest.model_validate(
        {
            "app_id": "com.demo.app",
            "device_id": DEVICE.upper(),
            "version_name": "1.0.0",
            "version_build": "1.0.0",
            "is_emulator": False,
            "is_prod": True,
            "platform": "ios",
            "install_source": "store",
        }
    )
    assert parsed.plugin_version == "2.3.3"
    assert parsed.device_id == DEVICE
    with pytest.raises(ValidationError):
        request(device_id=DEVICE + "0")


async def test_device_rate_limit(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limit_device_per_minute": 2})
    application = create_app(limited)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://capgo.test") as client:
            body = {**request().model_dump(), "app_id": "com.nobody.app"}
            statuses = [(await client.post("/updates", json=body)).status_code for _ in range(2)]
            assert statuses == [429, 429]  # unknown app: on_premise_app
            third = await client.post("/plugin/updates", json=body)
    assert third.status_code == 429
    assert third.json()["error"] == "too_many_requests"
    assert int(third.headers["retry-after"]) > 0
