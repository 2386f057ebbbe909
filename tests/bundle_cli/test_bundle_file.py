"""What ``bundle upload`` sends: a built folder zipped with index.html at the root, or a zip as is.

These run before any request, so the command-line cases use an API address nobody listens on:
reaching the network at all would be a different error.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from capgo_server.bundle_cli.api import CliError
from capgo_server.bundle_cli.upload import bundle_file, measure, zip_folder
from tests.test_cli import cli_env, error_line
from tests.warm_cli import run_cli_warm

UNREACHABLE_API = "http://127.0.0.1:1"


def web_folder(root: Path) -> Path:
    folder = root / "dist"
    (folder / "assets" / "img").mkdir(parents=True)
    (folder / "index.html").write_text("<!doctype html><script src=assets/app.js></script>")
    (folder / "assets" / "app.js").write_text("console.log('hi')")
    (folder / "assets" / "img" / "logo.png").write_bytes(bytes(range(256)) * 40)
    (folder / "assets" / "empty.txt").write_bytes(b"")
    return folder


def entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def upload_args(path: Path) -> list[str]:
    return [
        "bundle",
        "upload",
        "--api",
        UNREACHABLE_API,
        "--apikey",
        "some-key",
        "--app-id",
        "com.example.app",
        "--version",
        "1.0.0",
        str(path),
    ]


class TestZipFolder:
    def test_index_html_is_at_the_root_and_subfolders_are_kept(self, tmp_path: Path) -> None:
        folder = web_folder(tmp_path)
        buffer = io.BytesIO()
        assert zip_folder(folder, buffer) == 4
        assert entries(buffer.getvalue()) == {
            "index.html": (folder / "index.html").read_bytes(),
            "assets/app.js": b"console.log('hi')",
            "assets/empty.txt": b"",
            "assets/img/logo.png": bytes(range(256)) * 40,
        }

    def test_entries_are_compressed_and_in_a_stable_order(self, tmp_path: Path) -> None:
        folder = web_folder(tmp_path)
        buffer = io.BytesIO()
        zip_folder(folder, buffer)
        with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
            infos = archive.infolist()
        assert [info.filename for info in infos] == [
            "index.html",
            "assets/app.js",
            "assets/empty.txt",
            "assets/img/logo.png",
        ]
        assert {info.compress_type for info in infos} == {zipfile.ZIP_DEFLATED}
        assert infos[-1].compress_size < infos[-1].file_size


class TestBundleFile:
    def test_a_folder_is_zipped_into_a_temporary_file(self, tmp_path: Path) -> None:
        folder = web_folder(tmp_path)
        with bundle_file(folder) as handle:
            data = handle.read()
            size, checksum = measure(handle)
        assert set(entries(data)) == {
            "index.html",
            "assets/app.js",
            "assets/empty.txt",
            "assets/img/logo.png",
        }
        assert size == len(data)
        assert checksum == hashlib.sha256(data).hexdigest()
        assert sorted(path.name for path in tmp_path.iterdir()) == ["dist"]

    def test_a_zip_is_sent_byte_for_byte(self, tmp_path: Path) -> None:
        archive = tmp_path / "bundle.zip"
        with zipfile.ZipFile(archive, "w") as out:
            out.writestr("www/index.html", "<html></html>")
        with bundle_file(archive) as handle:
            assert handle.read() == archive.read_bytes()
            assert measure(handle) == (
                archive.stat().st_size,
                hashlib.sha256(archive.read_bytes()).hexdigest(),
            )

    def test_measure_rewinds_the_file(self, tmp_path: Path) -> None:
        with bundle_file(web_folder(tmp_path)) as handle:
            measure(handle)
            assert handle.tell() == 0

    def test_a_missing_path_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(CliError, match=r"does not exist$"), bundle_file(tmp_path / "nope"):
            pass

    def test_a_folder_without_index_html_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "app.js").write_text("x")
        with pytest.raises(CliError, match=r"has no index\.html"), bundle_file(tmp_path):
            pass

    def test_a_file_that_is_not_a_zip_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "bundle.zip"
        path.write_text("not a zip")
        with pytest.raises(CliError, match="neither a folder nor a zip file"), bundle_file(path):
            pass


class TestUploadCommandChecksThePathFirst:
    """One line on stderr, exit 1, nothing on stdout, before any network access."""

    def test_missing_path(self, tmp_path: Path) -> None:
        result = run_cli_warm(*upload_args(tmp_path / "dist"), env=cli_env(tmp_path), cwd=tmp_path)
        assert error_line(result) == f"error: {tmp_path / 'dist'} does not exist"

    def test_folder_without_index_html(self, tmp_path: Path) -> None:
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "main.ts").write_text("x")
        result = run_cli_warm(*upload_args(tmp_path / "src"), env=cli_env(tmp_path), cwd=tmp_path)
        assert error_line(result) == (
            f"error: {tmp_path / 'src'} has no index.html: point PATH "
            "at the built web folder (e.g. dist/)"
        )

    def test_not_a_zip(self, tmp_path: Path) -> None:
        (tmp_path / "notes.txt").write_text("hello")
        result = run_cli_warm(
            *upload_args(tmp_path / "notes.txt"), env=cli_env(tmp_path), cwd=tmp_path
        )
        assert error_line(result) == (
            f"error: {tmp_path / 'notes.txt'} is neither a folder nor a zip file"
        )

    def test_invalid_app_id(self, tmp_path: Path) -> None:
        args = upload_args(web_folder(tmp_path))
        args[args.index("com.example.app")] = "not_an_app_id"
        result = run_cli_warm(*args, env=cli_env(tmp_path), cwd=tmp_path)
        assert error_line(result) == (
            "error: 'not_an_app_id' is not an app id (expected e.g. com.example.app)"
        )

    def test_api_must_be_an_http_url(self, tmp_path: Path) -> None:
        args = upload_args(web_folder(tmp_path))
        args[args.index(UNREACHABLE_API)] = "capgo.example.com"
        result = run_cli_warm(*args, env=cli_env(tmp_path), cwd=tmp_path)
        assert error_line(result) == (
            "error: --api must be an http(s) URL such as "
            "https://capgo.example.com: 'capgo.example.com'"
        )

    def test_unreachable_server(self, tmp_path: Path) -> None:
        result = run_cli_warm(
            *upload_args(web_folder(tmp_path)), env=cli_env(tmp_path), cwd=tmp_path
        )
        assert error_line(result) == (
            f"error: cannot reach the server at {UNREACHABLE_API}: All connection attempts failed"
        )
