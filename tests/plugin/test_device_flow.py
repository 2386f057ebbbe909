"""End to end, as a device sees it: a bundle is uploaded through tus and put on ``production``; a
device asks ``/updates``, downloads the signed URL, checks the file, reports ``set``, asks again,
and is finally sent back to its built-in bundle. Then the same with an encrypted bundle (spec §6):
the session key and the encrypted checksum arrive intact and the device can decrypt the zip."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import httpx
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi import FastAPI
from sqlalchemy import select

from capgo_server.models import DailyVersion, Device
from tests.conftest import Account
from tests.files.support import Tus, bundle_path, local_path, sha256, web_bundle

APP_ID = "com.demo.flow"
DEVICE = "6d3f1a2b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"


def device_body(**changes: Any) -> dict[str, Any]:
    return {
        "platform": "android",
        "device_id": DEVICE,
        "app_id": APP_ID,
        "custom_id": "",
        "version_build": "1.0.0",
        "version_code": "1",
        "version_os": "14",
        "version_name": "1.0.0",
        "plugin_version": "7.30.0",
        "is_emulator": False,
        "is_prod": True,
        **changes,
    }


async def create_app(client: httpx.AsyncClient, owner: Account) -> None:
    response = await client.post(
        "/app",
        json={"app_id": APP_ID, "name": "Flow", "owner_org": owner.org_id},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text


async def point_production(client: httpx.AsyncClient, owner: Account, version: str) -> None:
    response = await client.post(
        "/channel",
        json={"app_id": APP_ID, "channel": "production", "version": version, "public": True},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text


async def check(client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    response = await client.post("/updates", json=device_body(**changes))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def download(client: httpx.AsyncClient, url: str) -> bytes:
    """What the device fetches: our signed ``/files/read/attachments`` URL, without the host."""
    assert "/files/read/attachments/" in url
    response = await client.get(local_path(url))
    assert response.status_code == 200, response.text
    return response.content


async def test_device_update_flow(app: FastAPI, client: httpx.AsyncClient, alice: Account) -> None:
    await create_app(client, alice)
    data = web_bundle(60_000)
    uploaded = await Tus(client, alice.headers).upload(bundle_path(alice, APP_ID, "1.0.1"), data)
    assert uploaded.status_code == 204, uploaded.text
    await point_production(client, alice, "1.0.1")

    offer = await check(client)
    url = offer.pop("url")
    assert offer == {"version": "1.0.1", "session_key": "", "checksum": sha256(data)}
    fetched = await download(client, url)
    assert fetched == data
    assert hashlib.sha256(fetched).hexdigest() == offer["checksum"]

    reported = await client.post(
        "/stats", json=device_body(action="set", version_name="1.0.1", old_version_name="1.0.0")
    )
    assert reported.status_code == 200, reported.text
    assert reported.json() == {"status": "ok"}

    assert await check(client, version_name="1.0.1") == {
        "error": "no_new_version_available",
        "message": "No new version available",
        "kind": "up_to_date",
    }

    await point_production(client, alice, "builtin")
    assert await check(client, version_name="1.0.1") == {
        "error": "already_on_builtin",
        "message": "Already on builtin",
        "kind": "up_to_date",
        "version": "builtin",
    }

    async with app.state.sessionmaker() as session:
        device = await session.get(Device, (APP_ID, DEVICE))
        counts = await session.scalar(
            select(DailyVersion).where(
                DailyVersion.app_id == APP_ID, DailyVersion.version_name == "1.0.1"
            )
        )
    assert device is not None
    assert device.version_name == "1.0.1"
    assert counts is not None
    assert (counts.get, counts.install) == (1, 1)


# --- encryption as Capgo's CLI does it (spec §6, v2 keys) ----------------------------------------


def _private_op(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """RSA "private encrypt" with PKCS#1 v1.5 type-1 padding (Node's ``privateEncrypt``): the
    raw private-key operation the CLI uses, so that the device decrypts with the public key."""
    numbers = key.private_numbers()
    size = (numbers.public_numbers.n.bit_length() + 7) // 8
    padded = b"\x00\x01" + b"\xff" * (size - len(data) - 3) + b"\x00" + data
    value = pow(int.from_bytes(padded, "big"), numbers.d, numbers.public_numbers.n)
    return value.to_bytes(size, "big")


def _public_op(key: rsa.RSAPublicKey, data: bytes) -> bytes:
    """The device's side (``publicDecrypt``): undo :func:`_private_op` with the public key."""
    numbers = key.public_numbers()
    size = (numbers.n.bit_length() + 7) // 8
    padded = pow(int.from_bytes(data, "big"), numbers.e, numbers.n).to_bytes(size, "big")
    assert padded[:2] == b"\x00\x01"
    return padded[padded.index(b"\x00", 2) + 1 :]


def _key_id(key: rsa.RSAPublicKey) -> str:
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    return body[:20]


def _aes(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    if encrypt:
        padder = padding.PKCS7(128).padder()
        encryptor = cipher.encryptor()
        return encryptor.update(padder.update(data) + padder.finalize()) + encryptor.finalize()
    decryptor = cipher.decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    plain = decryptor.update(data) + decryptor.finalize()
    return unpadder.update(plain) + unpadder.finalize()


async def test_encrypted_bundle_flow(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_key = private_key.public_key()
    key_id = _key_id(public_key)
    plain_zip = web_bundle(30_000)
    session, iv = os.urandom(16), os.urandom(16)
    encrypted_zip = _aes(session, iv, plain_zip, encrypt=True)
    session_key = (
        f"{base64.b64encode(iv).decode()}:"
        f"{base64.b64encode(_private_op(private_key, session)).decode()}"
    )
    # V3 checksum: the hex SHA-256 of the plain zip, private-key encrypted, in hex.
    checksum = _private_op(private_key, sha256(plain_zip).encode()).hex()

    await create_app(client, alice)
    uploaded = await Tus(client, alice.headers).upload(
        bundle_path(alice, APP_ID, "1.0.1"),
        encrypted_zip,
        session_key=session_key,
        key_id=key_id,
        checksum=checksum,
    )
    assert uploaded.status_code == 204, uploaded.text
    await point_production(client, alice, "1.0.1")

    offer = await check(client, key_id=key_id, plugin_version="8.41.0")
    url = offer.pop("url")
    assert offer == {"version": "1.0.1", "session_key": session_key, "checksum": checksum}

    # The device: decrypt the session key and the checksum with the public key, then the zip.
    iv_b64, key_b64 = offer["session_key"].split(":")
    aes_key = _public_op(public_key, base64.b64decode(key_b64))
    fetched = await download(client, url)
    assert fetched == encrypted_zip
    decrypted = _aes(aes_key, base64.b64decode(iv_b64), fetched, encrypt=False)
    assert decrypted == plain_zip
    expected = _public_op(public_key, bytes.fromhex(offer["checksum"])).decode()
    assert expected == hashlib.sha256(decrypted).hexdigest()

    # A device holding another key is refused by plugins newer than 8.40.7.
    refused = await check(client, key_id="another-key-id", plugin_version="8.41.0")
    assert refused == {
        "error": "key_id_mismatch",
        "message": "Device encryption key does not match bundle encryption key. "
        "The bundle was encrypted with another key than the one configured in the app.",
        "kind": "blocked",
        "deviceKeyId": "another-key-id",
        "bundleKeyId": key_id,
    }
