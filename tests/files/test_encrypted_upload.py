"""An encrypted upload (``session_key`` in its metadata) cannot be unzipped, but what can be
checked without the key is: the session key is an IV and an RSA block as the Capgo CLI writes
them, the checksum is an RSA block of the same size, and the length is one AES-CBC produces."""

from __future__ import annotations

import base64
import io
import os
import zipfile

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Account, error_of
from tests.files.support import (
    ENCRYPTED_CHECKSUM,
    ENCRYPTED_CHECKSUM_V2,
    SESSION_KEY,
    Tus,
    bundle_path,
    bundle_row,
    sha256,
    store_of,
    upload_rows,
)

KEY_ID = "MIIBCgKCAQEAx"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class TestLength:
    async def test_bytes_aes_cannot_have_produced_are_refused_at_creation(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        path = bundle_path(alice, app_id, "1.0.0")
        response = await tus.create(
            path, 5000, session_key=SESSION_KEY, key_id=KEY_ID, checksum=ENCRYPTED_CHECKSUM
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_bundle_zip",
            "message": "An encrypted bundle is AES-128-CBC ciphertext, a multiple of 16 bytes "
            "long; this one is 5000 bytes",
            "moreInfo": {"upload_length": 5000},
        }
        assert await upload_rows(app) == []
        assert await store_of(app).list_prefix("uploads/") == []
        link = await client.post(
            "/files/download_link",
            json={"app_id": app_id, "version": "1.0.0"},
            headers=alice.headers,
        )
        assert error_of(link) == (404, "bundle_not_found")

    @pytest.mark.parametrize("checksum", [ENCRYPTED_CHECKSUM, ENCRYPTED_CHECKSUM_V2])
    async def test_ciphertext_shaped_bytes_are_accepted(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI, checksum: str
    ) -> None:
        ciphertext = os.urandom(5008)
        response = await tus.upload(
            bundle_path(alice, app_id, "1.0.0"),
            ciphertext,
            session_key=SESSION_KEY,
            key_id=KEY_ID,
            checksum=checksum,
        )
        assert response.status_code == 204, response.text
        bundle = await bundle_row(app, app_id, "1.0.0")
        assert bundle is not None
        assert (bundle.session_key, bundle.checksum, bundle.size) == (SESSION_KEY, checksum, 5008)

    async def test_a_plain_zip_declared_encrypted_is_refused(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        """Sent in clear with a session key, every device would fail to decrypt it."""
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("index.html", "<!doctype html>")
        plain = archive.getvalue()
        plain += b"\0" * (-len(plain) % 16)  # the length AES-CBC would give
        response = await tus.upload(
            bundle_path(alice, app_id, "1.0.0"),
            plain,
            session_key=SESSION_KEY,
            key_id=KEY_ID,
            checksum=ENCRYPTED_CHECKSUM,
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_bundle_zip"
        assert "plain zip" in response.json()["message"]
        assert await bundle_row(app, app_id, "1.0.0") is None
        assert await upload_rows(app) == []

    async def test_a_4096_bit_key_is_accepted(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        session_key = f"{b64(os.urandom(16))}:{b64(os.urandom(512))}"
        response = await tus.upload(
            bundle_path(alice, app_id, "1.0.0"),
            os.urandom(1024),
            session_key=session_key,
            checksum=b64(os.urandom(512)),
        )
        assert response.status_code == 204, response.text


BAD_SESSION_KEYS = {
    "short-iv": "aXY=:a2V5",
    "aes-key-not-rsa-encrypted": f"{b64(bytes(16))}:{b64(bytes(16))}",
    "iv-without-padding": f"{b64(bytes(16)).rstrip('=')}:{b64(bytes(256))}",
    "url-safe-alphabet": f"{b64(bytes(16))}:{b64(bytes([251]) * 256).replace('+', '-')}",
    "iv-in-hex": f"{bytes(16).hex()}:{b64(bytes(256))}",
}


class TestShapes:
    @pytest.mark.parametrize("name", list(BAD_SESSION_KEYS))
    async def test_session_key_must_be_an_iv_and_an_rsa_block(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI, name: str
    ) -> None:
        response = await tus.create(
            bundle_path(alice, app_id, "1.0.0"),
            1024,
            session_key=BAD_SESSION_KEYS[name],
            checksum=ENCRYPTED_CHECKSUM,
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_session_key",
            "message": "session_key must be '<base64 of a 16-byte IV>:<base64 of the "
            "RSA-encrypted AES key>', as the Capgo CLI writes it",
            "moreInfo": {},
        }
        assert await upload_rows(app) == []

    @pytest.mark.parametrize(
        "checksum",
        [
            sha256(b"the plain zip"),  # a plain SHA-256: devices would decrypt it into noise
            os.urandom(128).hex(),  # an RSA block of another key size
            b64(os.urandom(255)),
            "zz" * 256,
        ],
        ids=["plain-sha256", "rsa-1024-block", "base64-of-255-bytes", "neither-hex-nor-base64"],
    )
    async def test_checksum_must_be_an_rsa_block_of_the_session_keys_size(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI, checksum: str
    ) -> None:
        response = await tus.create(
            bundle_path(alice, app_id, "1.0.0"), 1024, session_key=SESSION_KEY, checksum=checksum
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_checksum",
            "message": "An encrypted bundle's checksum is its SHA-256 encrypted with the same "
            "RSA key as the session key: 256 bytes in hex or base64",
            "moreInfo": {"checksum": checksum},
        }
        assert await upload_rows(app) == []
