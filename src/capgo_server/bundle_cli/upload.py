"""The bundle file (a folder zipped with index.html at its root, or a zip) and its upload."""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx
from rich.console import Console
from rich.markup import escape

from capgo_server.bundle_cli.api import (
    ApiClient,
    AppInfo,
    CliError,
    Refusal,
    explain,
    list_bundles,
    read_app,
    set_channel,
)
from capgo_server.bundle_cli.channels import ChannelPlan, plan_channel, private_channel_notes
from capgo_server.bundle_cli.progress import DEFAULT_INTERVAL, upload_progress
from capgo_server.tus_client import (
    DEFAULT_CHUNK_SIZE,
    TusError,
    TusGaveUpError,
    TusUploader,
    TusUploadGoneError,
)
from capgo_server.validation import is_app_id, is_semver

UPLOAD_PATH = "/files/upload/attachments/"
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def bundle_file(path: Path) -> Iterator[BinaryIO]:
    """The zip to upload: ``path`` itself if it is a zip, else its contents zipped.

    A folder is zipped with ``index.html`` at the root of the archive (what the plugin expects),
    subfolders kept, in a temporary file (memory stays flat).
    """
    check_source(path)
    if path.is_dir():
        with tempfile.TemporaryFile(suffix=".zip") as handle:
            zip_folder(path, handle)
            handle.seek(0)
            yield handle
        return
    with path.open("rb") as handle:
        yield handle


def check_source(path: Path) -> None:
    """Refuse a path that is not a built web folder (with its index.html) nor a zip."""
    if not path.exists():
        raise CliError(f"{path} does not exist")
    if path.is_dir():
        if not (path / "index.html").is_file():
            raise CliError(
                f"{path} has no index.html: point PATH at the built web folder (e.g. dist/)"
            )
    elif not zipfile.is_zipfile(path):
        raise CliError(f"{path} is neither a folder nor a zip file")


def zip_folder(folder: Path, destination: BinaryIO) -> int:
    """Write ``folder``'s contents to ``destination`` as a zip; returns the number of files."""
    count = 0
    with zipfile.ZipFile(
        destination, "w", compression=zipfile.ZIP_DEFLATED, strict_timestamps=False
    ) as archive:
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                file = Path(root, name)
                archive.write(file, file.relative_to(folder).as_posix())
                count += 1
    return count


def measure(handle: BinaryIO) -> tuple[int, str]:
    """Size in bytes and SHA-256 (hex) of a file, read in pieces."""
    handle.seek(0)
    digest = hashlib.sha256()
    size = 0
    while piece := handle.read(1024 * 1024):
        digest.update(piece)
        size += len(piece)
    handle.seek(0)
    return size, digest.hexdigest()


# --- upload ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadRequest:
    api: str
    apikey: str
    app_id: str
    version: str
    path: Path
    channel: str | None = None
    org_id: str | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    retries: int = 5
    backoff: float = 0.5
    create_channel: bool = False
    no_channel: bool = False
    progress_interval: float = DEFAULT_INTERVAL


@dataclass(frozen=True)
class UploadResult:
    app_id: str
    version: str
    size: int
    checksum: str
    interruptions: int
    plan: ChannelPlan

    def as_json(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "app_id": self.app_id,
            "version": self.version,
            "size": self.size,
            "checksum": self.checksum,
            "channel": plan.name,
            "channel_created": None if plan.name is None else plan.creates,
            "channel_source": plan.source,
            "previous_version": plan.previous,
            "interruptions": self.interruptions,
            "warning": plan.warning,
        }


def _check_request(request: UploadRequest) -> None:
    if not is_app_id(request.app_id):
        raise CliError(f"{request.app_id!r} is not an app id (expected e.g. com.example.app)")
    if not is_semver(request.version):
        raise CliError(f"{request.version!r} is not a semantic version (expected e.g. 1.2.3)")
    if request.channel is not None and not request.channel.strip():
        raise CliError("--channel is empty: give a channel name, or --no-channel")
    if request.no_channel and (request.channel or request.create_channel):
        option = "--channel" if request.channel else "--create-channel"
        raise CliError(f"--no-channel and {option} contradict each other: give one")
    check_source(request.path)


async def upload_bundle(
    request: UploadRequest, *, transport: httpx.AsyncBaseTransport | None = None
) -> UploadResult:
    """Check the target channel, zip, upload (resuming as needed), then set the channel.

    Every refusal that can be known in advance (app, key, channel) comes before any byte is
    sent. A channel that cannot be set afterwards is reported with the bundle kept.
    """
    _check_request(request)
    async with ApiClient(request.api, request.apikey, transport=transport) as client:
        if request.org_id and (request.channel or request.no_channel):
            app = AppInfo(request.org_id, None)  # no need to read the app (a key may not)
        else:
            app = await read_app(client, request.app_id, request.org_id)
        plan = await plan_channel(
            client,
            app,
            app_id=request.app_id,
            version=request.version,
            channel=request.channel,
            create=request.create_channel,
            no_channel=request.no_channel,
        )
        with bundle_file(request.path) as handle:
            size, checksum = measure(handle)
            interruptions = await _send(client, request, app.owner_org, handle, size, checksum)
        if plan.name is not None:
            try:
                await set_channel(client, request.app_id, plan.name, request.version)
            except CliError as exc:
                raise CliError(f"bundle {request.version} was uploaded, but {exc}") from exc
            if plan.creates:
                for note in private_channel_notes(request.app_id, plan.name):
                    stderr.print(f"[bold]note:[/] {escape(note)}")
    if plan.warning:
        _warn(plan.warning)
    return UploadResult(request.app_id, request.version, size, checksum, interruptions, plan)


async def _send(
    client: ApiClient,
    request: UploadRequest,
    org: str,
    handle: BinaryIO,
    size: int,
    checksum: str,
) -> int:
    """Create the tus upload and send every byte; returns how many interruptions it survived.

    An upload of the same version that an earlier run left unfinished is resumed when it has
    the same length (the server checks the checksum given at its creation when the last byte
    arrives; on a mismatch the upload starts over once).
    """
    uploader = TusUploader(
        client.http,
        chunk_size=await _chunk_size(client, request.chunk_size),
        retries=request.retries,
        backoff=request.backoff,
        on_retry=_warn,
    )
    location, offset, earlier = await _create(client, uploader, request, org, size, checksum)
    for attempt in (1, 2):
        try:
            await _transfer(uploader, location, handle, size, offset, request)
        except TusError as exc:
            if attempt == 2 or not (earlier and exc.code == "checksum_mismatch"):
                raise await _refused(client, uploader, location, exc, request, org) from exc
            _warn(f"the unfinished upload of {request.version} held other bytes; starting over")
            location, offset, earlier = await _create(
                client, uploader, request, org, size, checksum
            )
        except TusUploadGoneError as exc:
            if exc.sent_everything and await _arrived(client, request, checksum):
                break
            raise CliError("the server dropped the upload while it was being resumed") from exc
        except TusGaveUpError as exc:
            raise CliError(
                f"upload interrupted at byte {exc.offset} of {size}: {exc.reason}; "
                "run the same command again to resume it"
            ) from exc
        else:
            break
    return uploader.interruptions


def _warn(message: str) -> None:
    stderr.print(f"[yellow]warning:[/] {escape(message)}")


async def _chunk_size(client: ApiClient, wanted: int) -> int:
    """``wanted``, at most the server's ``maxChunkSize`` (``GET /files/config``) if it says."""
    response = await client.call("GET", "/files/config")
    try:
        limit = response.json().get("maxChunkSize") if response.status_code == 200 else None
    except (ValueError, AttributeError):
        limit = None
    return min(wanted, limit) if isinstance(limit, int) and limit > 0 else wanted


async def _create(
    client: ApiClient,
    uploader: TusUploader,
    request: UploadRequest,
    org: str,
    size: int,
    checksum: str,
    *,
    again: bool = True,
) -> tuple[str, int, bool]:
    """The upload's URL, the offset to start from, and whether an earlier run began it."""
    metadata = {
        "filename": f"orgs/{org}/apps/{request.app_id}/{request.version}.zip",
        "filetype": "application/zip",
        "checksum": checksum,
    }
    try:
        location = await client.guard(uploader.create(client.url(UPLOAD_PATH), size, metadata))
    except TusError as exc:
        pending = exc.more_info.get("upload_url") if exc.code == "version_already_exists" else None
        if not isinstance(pending, str) or not again:
            raise await _refused(client, uploader, None, exc, request, org) from exc
        try:
            offset, length = await client.guard(uploader.status(pending))
        except TusUploadGoneError:  # finished or dropped meanwhile: ask again
            return await _create(client, uploader, request, org, size, checksum, again=False)
        except TusError as status_error:
            raise await _refused(client, uploader, None, status_error, request, org) from exc
        if length == size:
            _warn(f"resuming the unfinished upload of {request.version} at byte {offset}")
            return pending, offset, True
        _warn(f"discarding an unfinished upload of {request.version} of another size")
        with suppress(TusError):
            await client.guard(uploader.terminate(pending))
        return await _create(client, uploader, request, org, size, checksum, again=False)
    return location, 0, False


async def _transfer(
    uploader: TusUploader,
    location: str,
    handle: BinaryIO,
    size: int,
    offset: int,
    request: UploadRequest,
) -> None:
    """Send the bytes from ``offset`` on, showing progress on stderr."""
    description = f"{request.app_id} {request.version}"
    with upload_progress(stderr, description, size, offset, request.progress_interval) as shown:
        await uploader.upload(location, handle, size, offset=offset, on_progress=shown)


async def _refused(
    client: ApiClient,
    uploader: TusUploader,
    location: str | None,
    error: TusError,
    request: UploadRequest,
    org: str,
) -> CliError:
    """The message for a refused upload, after freeing the version name (best effort)."""
    if location is not None:
        with suppress(TusError, httpx.HTTPError):
            await uploader.terminate(location)
    if error.code == "invalid_file_path" and request.org_id:
        return CliError(f"app {request.app_id} does not belong to organization {org}")
    refusal = Refusal(error.status, error.code, error.message)
    return await explain(
        client,
        refusal,
        app_id=request.app_id,
        version=request.version,
        action="upload",
        modes="all, write or upload",
    )


async def _arrived(client: ApiClient, request: UploadRequest, checksum: str) -> bool:
    """After the connection dropped on the last byte: does the bundle exist with our bytes?"""
    try:
        rows = await list_bundles(client, request.app_id)
    except CliError:
        return False
    return any(
        row.get("name") == request.version and row.get("checksum") == checksum for row in rows
    )
