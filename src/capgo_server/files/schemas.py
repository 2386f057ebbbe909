"""Request and response shapes of ``/files``."""

from __future__ import annotations

from pydantic import BaseModel, Field

from capgo_server.schema_types import AppIdText, JsDatetime


class DownloadLinkRequest(BaseModel):
    """The body of ``POST /files/download_link``."""

    app_id: AppIdText = Field(min_length=1)
    version: str = Field(min_length=1)


class DownloadLink(BaseModel):
    """A signed URL for a bundle's zip, fetchable without credentials until ``expires_at``."""

    url: str
    expires_at: JsDatetime


class FilesConfig(BaseModel):
    """What the upload endpoint accepts (Capgo's ``GET /files/config``, read by its CLI;
    Capgo's field names)."""

    partialUpload: bool = False
    partialUploadForced: bool = False
    TUSUpload: bool = True
    TUSUploadForced: bool = True
    maxUploadLength: int
    maxChunkSize: int
    alertUploadSize: int


class UploadStatus(BaseModel):
    """``GET`` of an upload: how much of it is stored."""

    id: str
    offset: int
    length: int
