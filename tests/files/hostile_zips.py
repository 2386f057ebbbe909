"""Zips written byte by byte, for the archives ``zipfile`` will not write: headers that lie about
sizes, local headers that disagree with the central directory, entries the central directory
does not list, entries sharing their bytes, and a gigabyte of zeros built in milliseconds."""

from __future__ import annotations

import dataclasses
import functools
import struct
import zlib

DEFLATE = 8
STORED = 0
#: ``external_attr`` of a Unix symbolic link (mode 0o120777 in the high 16 bits).
SYMLINK = 0o120777 << 16
MIB = 1024 * 1024


@dataclasses.dataclass
class Entry:
    """One entry as it is written: ``data`` is already compressed when ``method`` is deflate."""

    name: str
    data: bytes
    file_size: int
    crc: int
    method: int = DEFLATE
    external_attr: int = 0
    flags: int = 0
    #: What the local header calls the entry, when it differs from the central directory.
    local_name: str | None = None
    #: Whether the central directory lists the entry (a hidden local entry when not).
    listed: bool = True
    #: Name of an earlier entry whose bytes this central record points at (overlap).
    shares_bytes_of: str | None = None


def deflated(name: str, content: bytes, **more: object) -> Entry:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    data = compressor.compress(content) + compressor.flush()
    return dataclasses.replace(Entry(name, data, len(content), zlib.crc32(content)), **more)


def stored(name: str, content: bytes, **more: object) -> Entry:
    entry = Entry(name, content, len(content), zlib.crc32(content), STORED)
    return dataclasses.replace(entry, **more)


@functools.cache
def _zeros(mebibytes: int) -> tuple[bytes, int]:
    """A deflate stream of ``mebibytes`` MiB of zeros (one flushed MiB block repeated) and its
    CRC-32."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(bytes(MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    data = block * mebibytes + compressor.flush(zlib.Z_FINISH)
    crc = 0
    zero = bytes(MIB)
    for _ in range(mebibytes):
        crc = zlib.crc32(zero, crc)
    return data, crc


def zeros(name: str, mebibytes: int, **more: object) -> Entry:
    data, crc = _zeros(mebibytes)
    return dataclasses.replace(Entry(name, data, mebibytes * MIB, crc), **more)


def build(entries: list[Entry]) -> bytes:
    """The zip: local entries in order, then the central directory of the listed ones."""
    body = bytearray()
    offsets: dict[str, int] = {}
    for entry in entries:
        if entry.shares_bytes_of is not None:
            continue
        offsets[entry.name] = len(body)
        local_name = (entry.local_name or entry.name).encode()
        body += struct.pack(
            "<4s5H3I2H",
            b"PK\x03\x04",
            20,
            entry.flags,
            entry.method,
            0,
            0x21,
            entry.crc,
            len(entry.data),
            entry.file_size,
            len(local_name),
            0,
        )
        body += local_name + entry.data
    central = bytearray()
    listed = [entry for entry in entries if entry.listed]
    for entry in listed:
        name = entry.name.encode()
        central += struct.pack(
            "<4s6H3I5H2I",
            b"PK\x01\x02",
            (3 << 8) | 20,
            20,
            entry.flags,
            entry.method,
            0,
            0x21,
            entry.crc,
            len(entry.data),
            entry.file_size,
            len(name),
            0,
            0,
            0,
            0,
            entry.external_attr,
            offsets[entry.shares_bytes_of or entry.name],
        )
        central += name
    end = struct.pack(
        "<4s4H2IH", b"PK\x05\x06", 0, 0, len(listed), len(listed), len(central), len(body), 0
    )
    return bytes(body + central + end)
