"""What a device must never be handed: the rules a bundle zip is held to before it is served.

A device unpacks whatever it downloads, so the server refuses a zip whose entries would land
outside the bundle folder (``..``, absolute names, drive letters), use Windows separators (the
plugin refuses those: ``windows_path_fail``), are links or other special files, share a name, are
password-protected or compressed by a method devices cannot unpack, hide bytes that no central
directory entry accounts for, or unpack to more than the configured limits.

Sizes written in the zip's headers are not trusted: every entry is inflated and the bytes it
really produces are counted, and the limits are applied while they are produced, so a bomb is
stopped after at most ``limit`` bytes of work whatever its headers claim.

Everything here runs in a worker thread on a seekable, buffered view of the stored file.
"""

from __future__ import annotations

import dataclasses
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from typing import BinaryIO

#: Decompressed bytes asked of an entry at a time (memory per check stays about this size).
INFLATE_CHUNK = 1024 * 1024

#: A local file header: signature, then fixed fields; the name and extra-field lengths are the
#: two 16-bit fields at offset 26.
_LOCAL_HEADER = 30
_LOCAL_SIGNATURE = b"PK\x03\x04"
#: The largest data descriptor (signature, CRC, 64-bit sizes). A gap this small cannot hide a
#: local entry, whose header alone is 30 bytes.
_MAX_DESCRIPTOR = 24
_DESCRIPTOR_FLAG = 0x08
_ENCRYPTED_FLAG = 0x01
_DRIVE = re.compile(r"[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UTF8_FLAG = 0x800
#: A 32-bit size field saying "see the zip64 extra field".
_ZIP64_SIZE = 0xFFFFFFFF
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}


@dataclasses.dataclass(frozen=True)
class ZipLimits:
    """How much a bundle may unpack to (``CAPGO_BUNDLE_MAX_*``)."""

    max_entries: int
    max_uncompressed_bytes: int
    #: Unpacked bytes per byte of the zip file, for the whole archive.
    max_compression_ratio: int


class ZipRefusedError(Exception):
    """The zip must not be served: ``message`` says why, ``details`` go to ``moreInfo``."""

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def name_problem(name: str) -> str | None:
    """Why an entry name cannot be unpacked safely inside the bundle folder, or ``None``."""
    if name in ("", "/"):
        return "An entry of the zip has no name"
    if _CONTROL.search(name):
        return f"Entry {name!r} has a control character in its name"
    if "\\" in name:
        return (
            f"Entry {name!r} uses a backslash: zip names use '/', and the plugin refuses "
            "Windows-style paths"
        )
    if name.startswith("/"):
        return f"Entry {name!r} is an absolute path"
    if _DRIVE.match(name):
        return f"Entry {name!r} starts with a drive letter"
    parts = name.removesuffix("/").split("/")
    if ".." in parts:
        return f"Entry {name!r} climbs out of the bundle folder with '..'"
    if any(part in ("", ".") for part in parts):
        return f"Entry {name!r} is not a canonical path (an empty or '.' part)"
    return None


def entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an entry is not a plain file or folder devices can unpack, or ``None``."""
    name = info.orig_filename
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return f"Entry {name!r} is a symbolic link"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return f"Entry {name!r} is a special file (mode {kind:o}), not a file or folder"
    if info.flag_bits & _ENCRYPTED_FLAG:
        return f"Entry {name!r} is password-protected"
    if info.compress_type not in _METHODS:
        return (
            f"Entry {name!r} uses compression method {info.compress_type}; "
            "devices unpack only stored and deflate entries"
        )
    return None


def check_entries(entries: list[zipfile.ZipInfo], limits: ZipLimits, size: int) -> None:
    """Names, kinds, count and declared sizes: everything that needs no byte of data."""
    if len(entries) > limits.max_entries:
        raise ZipRefusedError(
            f"The zip has {len(entries)} entries; at most {limits.max_entries} are accepted",
            entries=len(entries),
            max_entries=limits.max_entries,
        )
    seen: set[str] = set()
    folders: set[str] = set()
    for info in entries:
        # orig_filename: zipfile cuts ``filename`` at a NUL byte, a device may not.
        problem = name_problem(info.orig_filename) or entry_problem(info)
        if problem is not None:
            raise ZipRefusedError(problem, entry=info.orig_filename)
        key = _device_name(info).removesuffix("/")
        if _folded(key) in seen:
            raise ZipRefusedError(
                f"Two entries of the zip are named {key!r} (letter case and Unicode forms "
                "aside, as iOS and macOS file systems compare names); which one a device keeps "
                "is undefined",
                entry=_device_name(info),
            )
        seen.add(_folded(key))
        parts = key.split("/")
        folders.update(_folded("/".join(parts[:end])) for end in range(1, len(parts)))
    for info in entries:
        if not info.is_dir() and _folded(_device_name(info)) in folders:
            raise ZipRefusedError(
                f"Entry {_device_name(info)!r} is a file, and a folder of other entries",
                entry=_device_name(info),
            )
    _check_total(sum(info.file_size for info in entries), limits, size)


def _device_name(info: zipfile.ZipInfo) -> str:
    """The name a device unpacks: without the zip's UTF-8 flag, zipfile reads a name as CP437,
    while the plugin's unzippers read UTF-8."""
    if info.flag_bits & 0x800:
        return info.orig_filename
    try:
        return info.orig_filename.encode("cp437").decode("utf-8")
    except UnicodeError:
        return info.orig_filename


def _folded(name: str) -> str:
    """``name`` as a case-insensitive, normalising file system (APFS, HFS+) compares it."""
    return unicodedata.normalize("NFC", name).casefold()


def _check_total(total: int, limits: ZipLimits, size: int) -> None:
    if total > limits.max_uncompressed_bytes:
        raise ZipRefusedError(
            f"The zip unpacks to more than {limits.max_uncompressed_bytes} bytes",
            max_uncompressed_bytes=limits.max_uncompressed_bytes,
        )
    if total > limits.max_compression_ratio * size:
        raise ZipRefusedError(
            f"The zip unpacks to more than {limits.max_compression_ratio} times its size "
            f"({size} bytes): a web bundle does not compress that well",
            max_compression_ratio=limits.max_compression_ratio,
        )


def walk_entries(
    file: BinaryIO,
    entries: list[zipfile.ZipInfo],
    central_directory: int,
    limits: ZipLimits,
    size: int,
) -> int:
    """Read every entry in file order and unpack it into nothing; returns the unpacked total.

    The entries must cover the file from byte 0 to the central directory (at offset
    ``central_directory``) without overlapping or leaving room between them, and each local
    header must say what the central directory says. Android's unzip reads local headers one
    after the other and never looks at the central directory, so a local entry the central
    directory does not list, or one that names or sizes itself differently there, would be
    unpacked by a device though this check never saw it; overlapping entries are the classic
    zip bomb.
    """
    expected = 0
    total = 0
    previous: zipfile.ZipInfo | None = None
    for info in sorted(entries, key=lambda entry: entry.header_offset):
        if info.header_offset + _LOCAL_HEADER > central_directory:
            raise zipfile.BadZipFile(f"{info.orig_filename!r} starts past the entries' end")
        what = f"Entry {info.orig_filename!r}"
        _check_gap(info.header_offset - expected, previous, expected, what)
        data_start = _local_data_start(file, info)
        file.seek(data_start)
        total = _unpack(file, info, total, limits, size)
        expected = data_start + info.compress_size
        previous = info
    if central_directory != expected:
        _check_gap(central_directory - expected, previous, expected, "The central directory")
    return total


def _check_gap(gap: int, previous: zipfile.ZipInfo | None, offset: int, what: str) -> None:
    """``what`` starts ``gap`` bytes after the end of the ``previous`` entry (at ``offset``)."""
    descriptor = previous is not None and previous.flag_bits & _DESCRIPTOR_FLAG
    if gap < 0:
        raise ZipRefusedError(f"{what} overlaps the entry before it", offset=offset)
    if gap > (_MAX_DESCRIPTOR if descriptor else 0):
        raise ZipRefusedError(
            f"The zip has {gap} bytes at offset {offset} that no entry accounts for",
            offset=offset,
        )


def _local_data_start(file: BinaryIO, info: zipfile.ZipInfo) -> int:
    """Where the entry's data begins, once its local header is checked against the central
    directory's record of it."""
    file.seek(info.header_offset)
    header = file.read(_LOCAL_HEADER)
    if len(header) != _LOCAL_HEADER or not header.startswith(_LOCAL_SIGNATURE):
        raise zipfile.BadZipFile(f"no local header for {info.orig_filename!r}")
    (method,) = struct.unpack_from("<H", header, 8)
    compressed, uncompressed, name_length, extra_length = struct.unpack_from("<IIHH", header, 18)
    raw_name = file.read(name_length)
    encoding = "utf-8" if info.flag_bits & _UTF8_FLAG else "cp437"
    try:
        local_name = raw_name.decode(encoding)
    except UnicodeDecodeError:
        local_name = None
    sizes_here = not info.flag_bits & _DESCRIPTOR_FLAG and compressed != _ZIP64_SIZE
    if (
        local_name != info.orig_filename
        or method != info.compress_type
        or (sizes_here and (compressed, uncompressed) != (info.compress_size, info.file_size))
    ):
        raise ZipRefusedError(
            f"Entry {info.orig_filename!r} is described differently in its local header "
            "than in the central directory",
            entry=info.orig_filename,
        )
    return info.header_offset + _LOCAL_HEADER + int(name_length) + int(extra_length)


def _unpack(file: BinaryIO, info: zipfile.ZipInfo, total: int, limits: ZipLimits, size: int) -> int:
    """Inflate one entry, whose data starts at the file's position, counting what it produces;
    returns the running total. The data must be exactly ``compress_size`` bytes long (a device
    reading up to the end of the deflate stream finds no other entry hidden there) and produce
    exactly ``file_size`` bytes with the declared CRC."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS) if info.compress_type else None
    left = info.compress_size
    produced = 0
    crc = 0

    def counted(data: bytes) -> None:
        nonlocal produced, total, crc
        produced += len(data)
        total += len(data)
        crc = zlib.crc32(data, crc)
        _check_total(total, limits, size)

    while left > 0:
        piece = file.read(min(left, INFLATE_CHUNK))
        if not piece:
            raise _damaged(info, "its data is cut short")
        left -= len(piece)
        if inflater is None:
            counted(piece)
            continue
        if inflater.eof:
            raise _damaged(info, "bytes follow the end of its compressed data")
        try:
            data = piece
            while True:
                out = inflater.decompress(data, INFLATE_CHUNK)
                counted(out)
                data = inflater.unconsumed_tail
                # A full chunk may leave output pending inside zlib: ask again until it is less.
                if not data and (len(out) < INFLATE_CHUNK or inflater.eof):
                    break
        except zlib.error:
            raise _damaged(info, "its compressed data is invalid") from None
    if inflater is not None and (not inflater.eof or inflater.unused_data):
        raise _damaged(info, "its compressed data does not end where its size says")
    if produced != info.file_size:
        raise ZipRefusedError(
            f"Entry {info.orig_filename!r} unpacks to {produced} bytes, not the "
            f"{info.file_size} its header declares",
            entry=info.orig_filename,
        )
    if crc != info.CRC:
        raise _damaged(info, "its CRC-32 does not match its content")
    return total


def _damaged(info: zipfile.ZipInfo, why: str) -> ZipRefusedError:
    return ZipRefusedError(
        f"Entry {info.orig_filename!r} is damaged: {why}", entry=info.orig_filename
    )
