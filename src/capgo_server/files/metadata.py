"""What an upload's tus ``Upload-Metadata`` may say: the bundle it targets, its checksum, and
the encryption fields of an encrypted bundle.

An encrypted bundle is what the Capgo CLI writes (encryption v2): the zip encrypted with
AES-128-CBC and PKCS#7 padding under a random key and IV; ``session_key`` is
``<base64 of the 16-byte IV>:<base64 of the AES key RSA-encrypted with the private key>``, and
``checksum`` is the SHA-256 of the *unencrypted* zip RSA-encrypted with the same key, in hex (v3)
or base64 (v2). Without the public key none of it can be decrypted, so the server checks what
the shapes promise: an IV of 16 bytes, an RSA block, a checksum that is an RSA block of the same
size, and a file length that AES-CBC can produce.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re

from capgo_server.auth.access import is_uuid
from capgo_server.errors import ApiError
from capgo_server.storage.layout import bundle_file_path
from capgo_server.storage.local import safe_relative
from capgo_server.validation import is_app_id, is_semver, version_details

_BUNDLE_PATH = re.compile(r"orgs/(?P<org>[^/]+)/apps/(?P<app>[^/]+)/(?P<version>[^/]+)\.zip")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_HEX = re.compile(r"[0-9a-fA-F]*")
#: AES block size: AES-CBC with PKCS#7 padding produces a positive multiple of it.
AES_BLOCK = 16
#: RSA blocks of 1024- to 4096-bit keys (the CLI makes 2048-bit keys: 256 bytes).
_RSA_BLOCK_BYTES = range(128, 513)
INVALID_SESSION_KEY = ApiError(
    400,
    "invalid_session_key",
    "session_key must be '<base64 of a 16-byte IV>:<base64 of the RSA-encrypted AES key>', "
    "as the Capgo CLI writes it",
)


@dataclasses.dataclass(frozen=True)
class BundleTarget:
    org_id: str
    app_id: str
    version: str

    @property
    def path(self) -> str:
        return bundle_file_path(self.org_id, self.app_id, self.version)


@dataclasses.dataclass(frozen=True)
class Encryption:
    session_key: str
    key_id: str | None
    checksum: str


def invalid_file_path(filename: object) -> ApiError:
    return ApiError(
        400,
        "invalid_file_path",
        "The file name must be orgs/<org_id>/apps/<app_id>/<version>.zip",
        {"filename": filename},
    )


def parse_target(filename: str | None) -> BundleTarget:
    """The bundle an upload's ``filename`` names; 400 ``invalid_file_path`` for any other shape,
    400 ``invalid_version_format`` when the version is not strict semver."""
    match = _BUNDLE_PATH.fullmatch(filename or "")
    if filename is None or match is None or ".." in filename:
        raise invalid_file_path(filename)
    try:
        safe_relative(filename)
    except ValueError:
        raise invalid_file_path(filename) from None
    if not is_uuid(match["org"]) or not is_app_id(match["app"]):
        raise invalid_file_path(filename)
    if not is_semver(match["version"]):
        raise ApiError(
            400,
            "invalid_version_format",
            "The version must follow semantic versioning (for example 1.2.3)",
            version_details(match["version"]),
        )
    return BundleTarget(org_id=match["org"], app_id=match["app"], version=match["version"])


def encryption_of(metadata: dict[str, str]) -> Encryption | None:
    session_key = metadata.get("session_key") or None
    key_id = metadata.get("key_id") or None
    checksum = metadata.get("checksum") or None
    if session_key is None:
        if key_id is not None:
            raise ApiError(400, "invalid_session_key", "key_id is only valid with a session_key")
        return None
    rsa_block = _rsa_block_size(session_key)
    if key_id is not None and len(key_id) > 20:
        raise ApiError(400, "invalid_key_id", "key_id must be at most 20 characters")
    if checksum is None or len(checksum) > 1000 or _rsa_length(checksum) != rsa_block:
        raise ApiError(
            400,
            "invalid_checksum",
            "An encrypted bundle's checksum is its SHA-256 encrypted with the same RSA key as "
            f"the session key: {rsa_block} bytes in hex or base64",
            {"checksum": checksum},
        )
    return Encryption(session_key=session_key, key_id=key_id, checksum=checksum)


def _base64_bytes(text: str) -> bytes | None:
    """Standard, padded base64 (what Node's ``toString('base64')`` writes), decoded."""
    if len(text) % 4 or not _BASE64.fullmatch(text):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return None


def _rsa_block_size(session_key: str) -> int:
    """The size of the session key's RSA block; 400 ``invalid_session_key`` for another shape."""
    if len(session_key) > 2000 or session_key.count(":") != 1:
        raise INVALID_SESSION_KEY
    iv, encrypted_key = (_base64_bytes(part) for part in session_key.split(":"))
    if iv is None or len(iv) != AES_BLOCK:
        raise INVALID_SESSION_KEY
    if encrypted_key is None or len(encrypted_key) not in _RSA_BLOCK_BYTES:
        raise INVALID_SESSION_KEY
    return len(encrypted_key)


def _rsa_length(checksum: str) -> int | None:
    """How many bytes an encrypted checksum holds: hex (CLI checksum v3) or base64 (v2)."""
    if _HEX.fullmatch(checksum) and len(checksum) % 2 == 0:
        return len(checksum) // 2
    decoded = _base64_bytes(checksum)
    return None if decoded is None else len(decoded)


def check_ciphertext_length(length: int) -> None:
    """400 ``invalid_bundle_zip`` unless ``length`` is one AES-CBC can produce."""
    if length % AES_BLOCK:
        raise ApiError(
            400,
            "invalid_bundle_zip",
            f"An encrypted bundle is AES-128-CBC ciphertext, a multiple of {AES_BLOCK} bytes "
            f"long; this one is {length} bytes",
            {"upload_length": length},
        )


def plain_checksum_of(metadata: dict[str, str]) -> str | None:
    checksum = metadata.get("checksum") or None
    if checksum is not None and not _SHA256_HEX.fullmatch(checksum):
        raise ApiError(
            400,
            "invalid_checksum",
            "checksum must be the SHA-256 of the zip in hexadecimal",
            {"checksum": checksum},
        )
    return checksum.lower() if checksum else None
