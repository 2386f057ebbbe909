"""The tus 1.0 wire format (https://tus.io/protocols/resumable-upload): headers and their errors.

We implement the core protocol plus the ``creation`` and ``termination`` extensions.
"""

from __future__ import annotations

import base64
import binascii
import re

from fastapi import Request

from capgo_server.errors import ApiError
from capgo_server.integers import BIGINT_MAX, digits_at_most

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"

_METADATA_KEY = re.compile(r"[A-Za-z0-9._~!#$&'*+^`|-]+")


def require_tus_resumable(request: Request) -> None:
    """Every tus request but OPTIONS names the protocol version (412 otherwise)."""
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise ApiError(
            412,
            "unsupported_tus_version",
            f"Tus-Resumable must be {TUS_VERSION}",
            {"tus_resumable": request.headers.get("tus-resumable")},
            headers={"Tus-Version": TUS_VERSION, "Tus-Resumable": TUS_VERSION},
        )


def _non_negative(value: str | None) -> int | None:
    """A byte count or offset; ``None`` when absent, not digits, or past a ``BIGINT`` column."""
    return None if value is None else digits_at_most(value.strip(), BIGINT_MAX)


def upload_length(request: Request, max_bytes: int) -> int:
    """``Upload-Length``: 400 when missing, not a positive integer; 413 past ``max_bytes``."""
    length = _non_negative(request.headers.get("upload-length"))
    if length is None or length == 0:
        raise ApiError(
            400,
            "invalid_upload_length",
            "Upload-Length must be a positive number of bytes",
            {"upload_length": request.headers.get("upload-length")},
        )
    if length > max_bytes:
        raise ApiError(
            413,
            "upload_too_large",
            f"The bundle is larger than this server accepts ({max_bytes} bytes)",
            {"upload_length": length, "max_bytes": max_bytes},
            headers={"Tus-Max-Size": str(max_bytes), "Tus-Resumable": TUS_VERSION},
        )
    return length


def upload_offset(request: Request) -> int:
    offset = _non_negative(request.headers.get("upload-offset"))
    if offset is None:
        raise ApiError(
            400,
            "invalid_upload_offset",
            "Upload-Offset must be a non-negative number of bytes",
            {"upload_offset": request.headers.get("upload-offset")},
        )
    return offset


def content_length(request: Request) -> int | None:
    return _non_negative(request.headers.get("content-length"))


def require_offset_content_type(request: Request) -> None:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != OFFSET_CONTENT_TYPE:
        raise ApiError(
            415,
            "invalid_content_type",
            f"PATCH bodies must be sent as {OFFSET_CONTENT_TYPE}",
            {"content_type": request.headers.get("content-type")},
        )


def upload_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64(value)`` pairs (the value is optional).

    400 ``invalid_upload_metadata`` on a malformed pair, bad base64, non-UTF-8 text or a
    repeated key.
    """
    invalid = ApiError(
        400,
        "invalid_upload_metadata",
        "Upload-Metadata must be comma-separated 'key base64value' pairs",
    )
    metadata: dict[str, str] = {}
    if header is None or not header.strip():
        return metadata
    for pair in header.split(","):
        fields = pair.strip().split(" ")
        if len(fields) > 2 or not _METADATA_KEY.fullmatch(fields[0]) or fields[0] in metadata:
            raise invalid
        value = ""
        if len(fields) == 2:
            try:
                value = base64.b64decode(fields[1], validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                raise invalid from None
        metadata[fields[0]] = value
    return metadata
