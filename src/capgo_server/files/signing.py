"""Bundle download URLs: ``<public_url>/files/read/attachments/<r2_path>?exp=<unix>&sig=<mac>``.

The MAC is HMAC-SHA256 with ``CAPGO_SECRET`` over the path, the expiry and the optional device id,
so a URL cannot be guessed, outlives its expiry, or be pointed at another file.

Every backend, S3 included, is served through this endpoint rather than through S3 presigned URLs:
only then is every byte counted as the app's bandwidth (a device fetching S3 directly is invisible
to us), and only then does deleting a bundle stop its downloads at once (a presigned URL stays
valid until it expires, up to seven days later).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from capgo_server.clock import utcnow
from capgo_server.errors import ApiError
from capgo_server.models import Bundle
from capgo_server.settings import Settings

READ_ROUTE = "/files/read/attachments/"
#: Keeps these MACs distinct from anything else ever signed with the same secret.
_PURPOSE = "capgo-bundle-download"


def invalid_signature() -> ApiError:
    return ApiError(403, "invalid_signature", "This download URL is not valid")


def url_expired() -> ApiError:
    return ApiError(403, "url_expired", "This download URL has expired")


@dataclass(frozen=True)
class SignedUrl:
    url: str
    expires_at: datetime


def _mac(secret: str, path: str, expires: int, device_id: str | None) -> str:
    message = "|".join((_PURPOSE, path, str(expires), device_id or ""))
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_path(
    settings: Settings,
    path: str,
    device_id: str | None = None,
    *,
    ttl_seconds: int | None = None,
    now: datetime | None = None,
) -> SignedUrl:
    """A download URL for the stored file ``path``, valid ``ttl_seconds`` (default: settings)."""
    ttl = settings.download_url_ttl_seconds if ttl_seconds is None else ttl_seconds
    expires = int((now or utcnow()).timestamp()) + ttl
    query = {"exp": str(expires), "sig": _mac(settings.resolved_secret(), path, expires, device_id)}
    if device_id:
        query["device_id"] = device_id
    base = settings.public_url.rstrip("/")
    return SignedUrl(
        url=f"{base}{READ_ROUTE}{quote(path, safe='/')}?{urlencode(query)}",
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


def download_url(settings: Settings, bundle: Bundle, device_id: str | None) -> str:
    """The URL a device downloads ``bundle`` from (the device protocol hands it out)."""
    if not bundle.r2_path:
        raise ValueError(f"bundle {bundle.id} has no stored file")
    return sign_path(settings, bundle.r2_path, device_id).url


def verify(
    settings: Settings,
    path: str,
    expires: str | None,
    signature: str | None,
    device_id: str | None,
    *,
    now: datetime | None = None,
) -> None:
    """Raise 403 ``invalid_signature`` for a forged or malformed URL, 403 ``url_expired`` for a
    genuine one past its expiry."""
    if not expires or not signature or not expires.isdigit() or len(expires) > 12:
        raise invalid_signature()
    expected = _mac(settings.resolved_secret(), path, int(expires), device_id)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise invalid_signature()
    if int(expires) < (now or utcnow()).timestamp():
        raise url_expired()
