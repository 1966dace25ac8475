"""The members of a tar file, read from its 512-byte headers only: each regular file's name, data
offset and size, without reading any member's data (what a shard index needs).

Follows the standard library's ``tarfile`` reading rules (ustar prefixes, pax ``path`` / ``size``
records, GNU long names, which types carry data) and checks what ``tarfile`` lets pass: a shard cut
off inside a member or before its end-of-archive block is an error, never a shorter set, and so is
a size that is negative or not a number (``tarfile`` reads ``-0000001000`` as -512 and a pax
``size=abc`` as 0), which would send the index back over headers it has read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from pytest_modgap.errors import DatasetError

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_REGULAR = (b"0", b"\0", b"7")
"""Regular file, old-style regular file, contiguous file: what ``tarfile`` reads as a file."""
_NO_DATA = (b"1", b"2", b"3", b"4", b"5", b"6")
"""Hard link, symlink, devices, directory, FIFO: ``tarfile`` skips no data blocks after these."""
_PAX = (b"x", b"g")
_GNU_LONG_NAME, _GNU_LONG_LINK, _GNU_SPARSE = b"L", b"K", b"S"
_MAGIC_GZIP = b"\x1f\x8b"
_FIX = "re-create or re-download the shard, or leave it out of the pattern"
_OCTAL = re.compile(rb"[0-7]*")
_DECIMAL = re.compile(rb"[0-9]+")


def _blocks(size: int) -> int:
    """Bytes that ``size`` bytes of member data take up: whole 512-byte blocks."""
    return -(-size // BLOCK) * BLOCK


def _text(field: bytes) -> str:
    """A NUL-terminated header field as ``tarfile`` decodes names (UTF-8, surrogateescape)."""
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    """A header number: octal digits (NUL or space padded) or GNU base-256; never negative.

    A ValueError saying what is wrong otherwise: ``int(text, 8)`` alone would take a sign, ``_``
    and spaces inside (``-0000001000`` is -512).
    """
    if field[:1] in (b"\x80", b"\xff"):
        if field[:1] == b"\xff":
            raise ValueError("a negative base-256 number")
        return int.from_bytes(field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip(b" ")
    if not _OCTAL.fullmatch(digits):
        sign = "a negative number" if digits.startswith(b"-") else "not an octal number"
        raise ValueError(f"{sign}: {digits.decode('ascii', 'backslashreplace')!r}")
    return int(digits, 8) if digits else 0


def _pax_size(records: dict[str, str]) -> int | None:
    """The pax ``size`` record as a number of bytes (None without one); a ValueError unless it is
    decimal digits (``int`` alone would take ``-512``, ``+9``, ``9_0`` and other scripts' digits)."""
    if "size" not in records:
        return None
    value = records["size"]
    if not _DECIMAL.fullmatch(value.encode("utf-8", "surrogateescape")):
        raise ValueError(f"the pax record size={value[:40]!r} is not a number of bytes")
    return int(value)


def _checksum_ok(header: bytes) -> bool:
    """The header checksum, summed as unsigned or (old tars) signed bytes, as ``tarfile`` does."""
    try:
        stored = _number(header[148:156])
    except ValueError:
        return False
    unsigned = sum(header) - sum(header[148:156]) + 8 * 32
    if stored == unsigned:
        return True
    high = sum(1 for byte in header[:148] + header[156:] if byte >= 128)
    return stored == unsigned - 256 * high


def _pax_records(data: bytes) -> dict[str, str]:
    """The ``"<length> <key>=<value>\\n"`` records of a pax header; ValueError when malformed."""
    records: dict[str, str] = {}
    position = 0
    while position < len(data):
        if data[position:].strip(b"\0") == b"":
            break
        space = data.find(b" ", position)
        if space < 0 or not _DECIMAL.fullmatch(data[position:space]):
            raise ValueError(f"a pax record at byte {position} of its data has no length")
        length = int(data[position:space])
        end = position + length
        if end <= space or end > len(data) or data[end - 1 : end] != b"\n":
            raise ValueError(f"the pax record at byte {position} of its data has a bad length")
        key, equals, value = data[space + 1 : end - 1].partition(b"=")
        if not equals:
            raise ValueError(f"the pax record at byte {position} of its data has no '='")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position = end
    return records


def tar_members(path: Path) -> Iterator[tuple[str, int, int]]:
    """``(name, data offset, size)`` of every regular file member of the tar at ``path``, in order.

    Reads one header block per member (plus the data of pax and GNU long-name headers), never a
    member's data. A truncated file, a corrupt header or a compressed archive is a DatasetError
    naming the shard, the byte offset and the member, and saying what to do.
    """
    with open(path, "rb", buffering=0) as handle:
        fd = handle.fileno()
        size_on_disk = os.fstat(fd).st_size
        offset = 0
        pax: dict[str, str] = {}
        pax_size: int | None = None
        long_name: str | None = None
        last = "the start of the file"
        while True:
            header = os.pread(fd, BLOCK, offset)
            if header == _ZERO_BLOCK:
                return
            if len(header) < BLOCK:
                _truncated_header(path, offset, len(header), size_on_disk, last)
            if not _checksum_ok(header):
                _corrupt(path, offset, header, last, "its checksum does not match")
            kind = header[156:157]
            name = _text(header[0:100])
            prefix = _text(header[345:500])
            if prefix and kind not in (_GNU_LONG_NAME, _GNU_LONG_LINK, _GNU_SPARSE):
                name = f"{prefix}/{name}"
            try:
                size = _number(header[124:136])
            except ValueError as exc:
                _corrupt(path, offset, header, last, f"its size field is {exc}")
            if kind not in _PAX and pax_size is not None:
                size = pax_size
            if kind == b"\0" and name.endswith("/"):
                kind = b"5"  # an old-style directory, as tarfile reads it
            data = offset + BLOCK
            has_data = kind not in _NO_DATA
            if has_data and data + size > size_on_disk:
                member = pax.get("path") or long_name or name
                raise DatasetError(
                    f"WebDataset shard {path} is truncated: member {member!r} at byte {offset} "
                    f"holds {size} bytes, but the file ends {size_on_disk - data} bytes after its "
                    f"header. The shard was cut off while being written or copied; {_FIX}."
                )
            if kind in _PAX:
                try:
                    records = _pax_records(os.pread(fd, size, data))
                    records_size = _pax_size(records)
                except ValueError as exc:
                    _corrupt(path, offset, header, last, str(exc))
                if kind == b"x":
                    pax, pax_size = records, records_size
            elif kind == _GNU_LONG_NAME:
                long_name = _text(os.pread(fd, size, data))
            elif kind == _GNU_SPARSE:
                raise DatasetError(
                    f"WebDataset shard {path}: member {name!r} at byte {offset} is a GNU sparse "
                    f"file, whose bytes are not stored in one piece. Write the shard without "
                    f"--sparse (e.g. with Python's tarfile or webdataset's TarWriter)."
                )
            elif kind != _GNU_LONG_LINK:
                name = pax.get("path") or long_name or name
                if kind in _REGULAR:
                    yield name, data, size
                last = f"member {name!r}"
                pax, pax_size, long_name = {}, None, None
            # Every size is >= 0, so each step moves forward by at least the header block: no
            # header is read twice, and no member is listed twice.
            offset = data + (_blocks(size) if has_data else 0)


def _truncated_header(path: Path, offset: int, got: int, size: int, last: str) -> NoReturn:
    if size == 0:
        raise DatasetError(f"WebDataset shard {path} is empty (0 bytes); {_FIX}.")
    where = f"{got} bytes of a header" if got else "no end-of-archive block"
    raise DatasetError(
        f"WebDataset shard {path} is truncated: after {last} it ends at byte {size} with {where} "
        f"(a complete tar ends with zero blocks). The shard was cut off while being written or "
        f"copied, so pairs may be missing; {_FIX}."
    )


def _corrupt(path: Path, offset: int, header: bytes, last: str, reason: str) -> NoReturn:
    if offset == 0 and header.startswith(_MAGIC_GZIP):
        raise DatasetError(
            f"WebDataset shard {path} is gzip-compressed. Shards must be uncompressed .tar files, "
            f"so that a sampled member can be read at its offset without reading the rest; "
            f"decompress it (gunzip, or zcat shard.tar.gz > shard.tar) and point the spec at the "
            f".tar."
        )
    if offset == 0 and not _checksum_ok(header):
        raise DatasetError(
            f"WebDataset shard {path} is not a tar file (no valid tar header at byte 0). A shard "
            f"is an uncompressed tar archive; {_FIX}."
        )
    after = f", after {last}" if offset else ""
    raise DatasetError(
        f"Corrupt tar header in {path} at byte {offset}{after}: {reason}. A WebDataset shard is "
        f"an uncompressed tar archive; {_FIX}."
    )
