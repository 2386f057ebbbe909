"""Dangerous zips are refused when the upload's last byte arrives (400 ``invalid_bundle_zip`` on
the PATCH that completes it), and nothing of them is kept or served: traversal, absolute and
Windows paths, links, duplicate names, bombs (honest or lying headers), hidden and overlapping
entries, and the ``CAPGO_BUNDLE_MAX_*`` limits."""

from __future__ import annotations

import io
import os
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.files import signing
from capgo_server.settings import Settings
from tests.conftest import Account
from tests.files import hostile_zips as hz
from tests.files.support import (
    Tus,
    bundle_path,
    bundle_row,
    local_path,
    make_zip,
    store_of,
    upload_rows,
)

INDEX = hz.stored("index.html", b"<!doctype html><script src=main.js></script>")
MAIN = hz.deflated("main.js", b"console.log('hi');\n" * 200)


def with_index(*entries: hz.Entry) -> Callable[[], bytes]:
    return lambda: hz.build([INDEX, MAIN, *entries])


def duplicate_index() -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate it is asked to write
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("index.html", b"<html>first")
            archive.writestr("index.html", b"<html>second")
    return buffer.getvalue()


def symlink() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.html", b"<html>")
        link = zipfile.ZipInfo("assets/config.js")
        link.create_system = 3
        link.external_attr = hz.SYMLINK
        archive.writestr(link, "/data/data/com.example.app/shared_prefs/secrets.xml")
    return buffer.getvalue()


def lying_bomb() -> bytes:
    """A GiB of zeros whose headers (both) say it is 1,000 bytes, with the CRC of those."""
    bomb = hz.zeros("assets/bomb.bin", 1024)
    bomb.file_size = 1000
    bomb.crc = hz.zlib.crc32(bytes(1000))
    return hz.build([INDEX, bomb])


LOCAL_HEADER = 30
INDEX_END = LOCAL_HEADER + len("index.html") + len(INDEX.data)

#: (archive, message, moreInfo beside the path)
REFUSED: dict[str, tuple[Callable[[], bytes], str, dict[str, object]]] = {
    "dot-dot": (
        with_index(hz.stored("../evil.js", b"x")),
        "Entry '../evil.js' climbs out of the bundle folder with '..'",
        {"entry": "../evil.js"},
    ),
    "dot-dot-inside": (
        with_index(hz.stored("js/../../evil.js", b"x")),
        "Entry 'js/../../evil.js' climbs out of the bundle folder with '..'",
        {"entry": "js/../../evil.js"},
    ),
    "absolute": (
        with_index(hz.stored("/etc/evil.js", b"x")),
        "Entry '/etc/evil.js' is an absolute path",
        {"entry": "/etc/evil.js"},
    ),
    "drive-letter": (
        with_index(hz.stored("C:/evil.js", b"x")),
        "Entry 'C:/evil.js' starts with a drive letter",
        {"entry": "C:/evil.js"},
    ),
    "backslash-dot-dot": (
        with_index(hz.stored("..\\evil.js", b"x")),
        "Entry '..\\\\evil.js' uses a backslash: zip names use '/', and the plugin refuses "
        "Windows-style paths",
        {"entry": "..\\evil.js"},
    ),
    "backslash-drive": (
        with_index(hz.stored("C:\\evil.js", b"x")),
        "Entry 'C:\\\\evil.js' uses a backslash: zip names use '/', and the plugin refuses "
        "Windows-style paths",
        {"entry": "C:\\evil.js"},
    ),
    "dot-part": (
        with_index(hz.stored("js/./app.js", b"x")),
        "Entry 'js/./app.js' is not a canonical path (an empty or '.' part)",
        {"entry": "js/./app.js"},
    ),
    "nul-byte": (
        with_index(hz.stored("evil.js\x00.png", b"x")),
        "Entry 'evil.js\\x00.png' has a control character in its name",
        {"entry": "evil.js\x00.png"},
    ),
    "symlink": (
        symlink,
        "Entry 'assets/config.js' is a symbolic link",
        {"entry": "assets/config.js"},
    ),
    "fifo": (
        with_index(hz.stored("pipe", b"", external_attr=0o010644 << 16)),
        "Entry 'pipe' is a special file (mode 10000), not a file or folder",
        {"entry": "pipe"},
    ),
    "duplicate": (
        duplicate_index,
        "Two entries of the zip are named 'index.html' (letter case and Unicode forms aside, "
        "as iOS and macOS file systems compare names); which one a device keeps is undefined",
        {"entry": "index.html"},
    ),
    "duplicate-in-another-case": (
        with_index(hz.stored("INDEX.HTML", b"<html>")),
        "Two entries of the zip are named 'INDEX.HTML' (letter case and Unicode forms aside, "
        "as iOS and macOS file systems compare names); which one a device keeps is undefined",
        {"entry": "INDEX.HTML"},
    ),
    "duplicate-in-another-unicode-form": (
        with_index(hz.stored("caf\u00e9.js", b"1"), hz.stored("cafe\u0301.js", b"2")),
        "Two entries of the zip are named 'cafe\u0301.js' (letter case and Unicode forms "
        "aside, as iOS and macOS file systems compare names); which one a device keeps is "
        "undefined",
        {"entry": "cafe\u0301.js"},
    ),
    "file-and-folder": (
        with_index(hz.stored("js", b"1"), hz.stored("js/app.js", b"2")),
        "Entry 'js' is a file, and a folder of other entries",
        {"entry": "js"},
    ),
    "bomb": (
        lambda: hz.build([INDEX, hz.zeros("assets/bomb.bin", 1024)]),
        "The zip unpacks to more than 536870912 bytes",
        {"max_uncompressed_bytes": 512 * 1024 * 1024},
    ),
    "bomb-with-lying-headers": (
        lying_bomb,
        f"The zip unpacks to more than 100 times its size ({len(lying_bomb())} bytes): "
        "a web bundle does not compress that well",
        {"max_compression_ratio": 100},
    ),
    "size-lie": (
        with_index(hz.deflated("data.bin", os.urandom(20_000), file_size=50)),
        "Entry 'data.bin' unpacks to 20000 bytes, not the 50 its header declares",
        {"entry": "data.bin"},
    ),
    "hidden-local-entry": (
        lambda: hz.build([INDEX, hz.stored("../evil.js", b"alert(1)", listed=False), MAIN]),
        f"The zip has {LOCAL_HEADER + 10 + 8} bytes at offset {INDEX_END} that no entry "
        "accounts for",
        {"offset": INDEX_END},
    ),
    "local-name-differs": (
        with_index(hz.stored("aaaa.js", b"x", local_name="../a.js")),
        "Entry 'aaaa.js' is described differently in its local header than in the central "
        "directory",
        {"entry": "aaaa.js"},
    ),
    "overlapping-entries": (
        with_index(hz.Entry("copy.html", b"", 0, 0, shares_bytes_of="index.html")),
        "Entry 'copy.html' overlaps the entry before it",
        {"offset": INDEX_END},
    ),
    "password-protected": (
        with_index(hz.stored("secret.js", b"x", flags=0x01)),
        "Entry 'secret.js' is password-protected",
        {"entry": "secret.js"},
    ),
    "bzip2": (
        with_index(hz.Entry("app.js", b"BZh9", 1, 0, method=12)),
        "Entry 'app.js' uses compression method 12; devices unpack only stored and deflate entries",
        {"entry": "app.js"},
    ),
    "bad-crc": (
        with_index(hz.Entry("app.js", b"abc", 3, 12345, method=hz.STORED)),
        "Entry 'app.js' is damaged: its CRC-32 does not match its content",
        {"entry": "app.js"},
    ),
    "truncated-deflate": (
        with_index(hz.Entry("app.js", hz.deflated("x", b"y" * 5000).data[:-3], 5000, 0)),
        "Entry 'app.js' is damaged: its compressed data does not end where its size says",
        {"entry": "app.js"},
    ),
}


async def upload_refused(
    tus: Tus, owner: Account, app_id: str, data: bytes, version: str = "1.0.0"
) -> tuple[httpx.Response, str, str]:
    """Upload ``data`` in several PATCHes; the last one's answer, the upload URL, the path."""
    path = bundle_path(owner, app_id, version)
    url = await tus.start(path, len(data))
    return await tus.send_all(url, data, 400_000), url, path


async def assert_nothing_served(
    app: FastAPI, client: httpx.AsyncClient, tus: Tus, owner: Account, url: str, path: str
) -> None:
    """No upload, no bundle, no file: no download link, and a signed URL finds nothing."""
    app_id, version = path.split("/")[3], path.rsplit("/", 1)[1].removesuffix(".zip")
    assert (await tus.head(url)).status_code == 404
    assert await upload_rows(app) == []
    assert await bundle_row(app, app_id, version) is None
    assert await store_of(app).size(path) is None
    assert await store_of(app).list_prefix("uploads/") == []
    link = await client.post(
        "/files/download_link", json={"app_id": app_id, "version": version}, headers=owner.headers
    )
    assert link.status_code == 404
    assert link.json()["error"] == "bundle_not_found"
    signed = local_path(signing.sign_path(app.state.settings, path).url)
    assert (await client.get(signed)).status_code == 404


class TestRefused:
    @pytest.mark.parametrize("case", list(REFUSED))
    async def test_dangerous_zip_is_refused_and_not_served(
        self,
        case: str,
        tus: Tus,
        alice: Account,
        app_id: str,
        app: FastAPI,
        client: httpx.AsyncClient,
    ) -> None:
        build, message, more = REFUSED[case]
        response, url, path = await upload_refused(tus, alice, app_id, build())
        assert response.status_code == 400, response.text
        assert response.json() == {
            "error": "invalid_bundle_zip",
            "message": message,
            "moreInfo": {"path": path, **more},
        }
        await assert_nothing_served(app, client, tus, alice, url, path)

    async def test_the_version_can_be_uploaded_again_once_fixed(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        response, _, path = await upload_refused(tus, alice, app_id, symlink())
        assert response.status_code == 400
        fixed = make_zip({"index.html": b"<html>", "assets/config.js": b"x"})
        assert (await tus.upload(path, fixed)).status_code == 204
        assert await bundle_row(app, app_id, "1.0.0") is not None


class TestAccepted:
    async def test_a_deflated_bundle_with_folders_is_accepted(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("dist/", b"")
            archive.writestr("dist/index.html", b"<!doctype html>" + b"<p>hello</p>" * 500)
            archive.writestr("dist/assets/", b"")
            archive.writestr("dist/assets/app-3f2a.js", b"export const a = 1;\n" * 5000)
            archive.writestr("dist/assets/logo.png", os.urandom(40_000))
        data = buffer.getvalue()
        response = await tus.upload(bundle_path(alice, app_id, "1.0.0"), data, chunk=30_000)
        assert response.status_code == 204, response.text
        bundle = await bundle_row(app, app_id, "1.0.0")
        assert bundle is not None
        assert bundle.size == len(data)

    async def test_entries_written_with_data_descriptors_are_accepted(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        """A zip written to a stream (sizes after the data, as many tools do) leaves a data
        descriptor between entries: those bytes are accounted for."""

        class Unseekable(io.RawIOBase):
            def __init__(self) -> None:
                self.data = bytearray()

            def writable(self) -> bool:
                return True

            def write(self, chunk: object) -> int:
                view = memoryview(chunk)  # type: ignore[arg-type]
                self.data += view
                return len(view)

        sink = Unseekable()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("index.html", b"<html>" * 100)
            archive.writestr("main.js", os.urandom(5000))
        assert zipfile.ZipFile(io.BytesIO(sink.data)).infolist()[0].flag_bits & 0x08
        response = await tus.upload(bundle_path(alice, app_id, "1.0.0"), bytes(sink.data))
        assert response.status_code == 204, response.text


class TestLimits:
    """The ``CAPGO_BUNDLE_MAX_*`` settings, made small."""

    @pytest.fixture
    def settings(self, database_url: str, tmp_path: Path) -> Settings:
        return Settings(
            database_url=database_url,
            data_dir=tmp_path / "data",
            secret="test-secret-limits",
            bundle_max_entries=3,
            bundle_max_uncompressed_bytes=100_000,
            bundle_max_compression_ratio=5,
        )

    async def test_too_many_entries(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        data = make_zip({"index.html": b"<html>", "a.js": b"a", "b.js": b"b", "c.js": b"c"})
        response, url, path = await upload_refused(tus, alice, app_id, data)
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_bundle_zip",
            "message": "The zip has 4 entries; at most 3 are accepted",
            "moreInfo": {"path": path, "entries": 4, "max_entries": 3},
        }
        await assert_nothing_served(app, client, tus, alice, url, path)

    async def test_too_large_unpacked(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        data = make_zip({"index.html": b"<html>", "a.bin": os.urandom(100_001)})
        response, url, path = await upload_refused(tus, alice, app_id, data)
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_bundle_zip",
            "message": "The zip unpacks to more than 100000 bytes",
            "moreInfo": {"path": path, "max_uncompressed_bytes": 100_000},
        }
        await assert_nothing_served(app, client, tus, alice, url, path)

    async def test_compressing_too_well(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        data = hz.build([INDEX, hz.deflated("app.js", b"let a = 1;\n" * 5000)])
        response, url, path = await upload_refused(tus, alice, app_id, data)
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_bundle_zip",
            "message": f"The zip unpacks to more than 5 times its size ({len(data)} bytes): "
            "a web bundle does not compress that well",
            "moreInfo": {"path": path, "max_compression_ratio": 5},
        }
        await assert_nothing_served(app, client, tus, alice, url, path)

    async def test_a_bundle_within_the_limits_is_accepted(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        data = make_zip({"index.html": b"<html>", "a.bin": os.urandom(90_000)})
        response = await tus.upload(bundle_path(alice, app_id, "1.0.0"), data)
        assert response.status_code == 204, response.text


def test_the_limits_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPGO_BUNDLE_MAX_ENTRIES", "7")
    monkeypatch.setenv("CAPGO_BUNDLE_MAX_UNCOMPRESSED_BYTES", "1234")
    monkeypatch.setenv("CAPGO_BUNDLE_MAX_COMPRESSION_RATIO", "9")
    settings = Settings()
    assert (
        settings.bundle_max_entries,
        settings.bundle_max_uncompressed_bytes,
        settings.bundle_max_compression_ratio,
    ) == (7, 1234, 9)
    defaults = Settings.model_fields
    assert (
        defaults["bundle_max_entries"].default,
        defaults["bundle_max_uncompressed_bytes"].default,
        defaults["bundle_max_compression_ratio"].default,
    ) == (20_000, 512 * 1024 * 1024, 100)
