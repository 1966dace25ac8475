"""Hostile tar headers: sizes that are negative or not numbers, wrong types and checksums, bad pax
records. Each is a DatasetError naming the shard and the header's byte offset, never a hang, a raw
OSError or a member read twice; a fuzzer mutates the header fields of valid shards to find more."""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_modgap.data import tar_index
from pytest_modgap.data.specs import load_dataset
from pytest_modgap.data.tar_index import BLOCK, tar_members
from pytest_modgap.errors import DatasetError

from .formats import image_bytes

SIZE = slice(124, 136)
CHECKSUM = slice(148, 156)
TYPE = slice(156, 157)
MAX_READS = 1_000
"""No shard in these tests has more headers: more reads than this is a loop that never ends."""


@contextmanager
def bounded_reads() -> Iterator[None]:
    """Fail, instead of hanging, when the index reads the same headers over and over."""
    real = tar_index.os.pread
    calls = 0

    def counted(fd: int, length: int, offset: int) -> bytes:
        nonlocal calls
        calls += 1
        assert calls <= MAX_READS, f"{calls} reads: the index does not move forward (at {offset})"
        return real(fd, length, offset)

    with mock.patch.object(tar_index.os, "pread", counted):
        yield


def members_of(path: Path) -> list[tuple[str, int, int]]:
    with bounded_reads():
        return list(tar_members(path))


def shard_bytes(
    members: list[tuple[str, bytes]], fmt: int = tarfile.USTAR_FORMAT, **pax: str
) -> bytes:
    """A tar of ``members``; ``pax`` records go into the last member's own pax header."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for number, (name, data) in enumerate(members):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            if pax and number == len(members) - 1:
                info.pax_headers = dict(pax)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def header_offsets(data: bytes) -> list[int]:
    """The byte offset of every header block of a valid tar (pax headers included)."""
    offsets, offset = [], 0
    while data[offset : offset + BLOCK] != bytes(BLOCK):
        offsets.append(offset)
        size = int(data[offset + 124 : offset + 136].split(b"\0")[0].strip() or b"0", 8)
        kind = data[offset + 156 : offset + 157]
        offset += BLOCK + (
            0 if kind in (b"1", b"2", b"3", b"4", b"5", b"6") else -(-size // BLOCK) * BLOCK
        )
    return offsets


def with_field(
    data: bytes, header: int, field: slice, value: bytes, *, fix_checksum: bool = True
) -> bytes:
    """``data`` with one header field replaced (NUL-padded) and, by default, the checksum redone,
    so that the field itself is what the index has to judge."""
    block = bytearray(data[header : header + BLOCK])
    width = field.stop - field.start
    block[field] = value[:width].ljust(width, b"\0")
    if fix_checksum:
        block[CHECKSUM] = b" " * 8
        block[148:155] = b"%06o\0" % sum(block)
    return data[:header] + bytes(block) + data[header + BLOCK :]


def sample(key: str) -> list[tuple[str, bytes]]:
    return [(f"{key}.jpg", image_bytes(1, "jpg")), (f"{key}.txt", b"a caption")]


def corrupt_at(path: Path, offset: int) -> str:
    return rf"Corrupt tar header in {re.escape(str(path))} at byte {offset}\b"


@pytest.mark.parametrize(
    ("size", "what"),
    [(b"-0000001000", "re-read the same header forever"), (b"-0000002000", "a negative offset")],
)
def test_a_negative_size_on_a_member_without_extension_is_a_corrupt_header(
    tmp_path: Path, size: bytes, what: str
) -> None:
    data = shard_bytes([*sample("0"), ("README", b"no sample"), *sample("1")])
    readme = header_offsets(data)[2]
    path = tmp_path / "s.tar"
    path.write_bytes(with_field(data, readme, SIZE, size))
    with pytest.raises(DatasetError, match=corrupt_at(path, readme)) as info:
        members_of(path)
    assert "size field is a negative number" in str(info.value), what
    with pytest.raises(DatasetError, match=corrupt_at(path, readme)):
        with bounded_reads():
            load_dataset(f"wds:{path}")


def test_a_negative_pax_size_is_a_corrupt_header_not_a_duplicate_member(tmp_path: Path) -> None:
    data = shard_bytes([*sample("0"), *sample("1")], tarfile.PAX_FORMAT, size="-512")
    pax_header = header_offsets(data)[-2]
    assert data[pax_header + 156 : pax_header + 157] == b"x"
    path = tmp_path / "s.tar"
    path.write_bytes(data)
    with pytest.raises(DatasetError, match=corrupt_at(path, pax_header)):
        members_of(path)
    with pytest.raises(DatasetError, match=corrupt_at(path, pax_header)):
        with bounded_reads():
            load_dataset(f"wds:{path}")


@pytest.mark.parametrize(
    "size",
    [b"+0000001000", b"0000000_100", b"00000000009", b" -1", b"\xff" + b"\xff" * 11],
)
def test_a_size_that_is_not_an_octal_number_is_a_corrupt_header(
    tmp_path: Path, size: bytes
) -> None:
    data = shard_bytes([*sample("0"), *sample("1")])
    second = header_offsets(data)[1]
    path = tmp_path / "s.tar"
    path.write_bytes(with_field(data, second, SIZE, size))
    with pytest.raises(DatasetError, match=corrupt_at(path, second)):
        members_of(path)


@pytest.mark.parametrize("value", ["-512", "+9", "9_0", " 9", "١٢", ""])
def test_a_pax_size_that_is_not_a_decimal_number_is_a_corrupt_header(
    tmp_path: Path, value: str
) -> None:
    data = shard_bytes([*sample("0"), *sample("1")], tarfile.PAX_FORMAT, size=value)
    path = tmp_path / "s.tar"
    path.write_bytes(data)
    with pytest.raises(DatasetError, match=corrupt_at(path, header_offsets(data)[-2])):
        members_of(path)


def test_a_bad_checksum_names_the_shard_and_the_offset(tmp_path: Path) -> None:
    data = shard_bytes([*sample("0"), *sample("1")])
    third = header_offsets(data)[2]
    path = tmp_path / "s.tar"
    path.write_bytes(with_field(data, third, CHECKSUM, b"0000000\0", fix_checksum=False))
    with pytest.raises(DatasetError, match=corrupt_at(path, third) + r".*after member '0\.txt'"):
        members_of(path)


# The fuzzer: valid shards in every format (long and non-ASCII names give GNU long-name and pax
# headers), then one header field mutated, the checksum redone or not.
ORIGINALS = [
    shard_bytes([*sample("0"), ("README", b"x" * 700), *sample("1")]),
    shard_bytes([*sample("0"), (f"{'d' * 120}/1.txt", b"caption")], tarfile.GNU_FORMAT),
    shard_bytes([*sample("0"), ("é/1.txt", b"caption")], tarfile.PAX_FORMAT, comment="c"),
]
SIZES = st.one_of(
    st.integers(-(8**11) + 1, 8**11 - 1).map(lambda n: (b"-%010o" if n < 0 else b"%011o") % abs(n)),
    st.sampled_from(
        [
            b"-0000001000",
            b"-0000002000",
            b"77777777777",
            b"",
            b" ",
            b"9",
            b"\x80" + b"\0" * 10 + b"\x01",
            b"\xff" * 12,
        ]
    ),
    st.binary(min_size=1, max_size=12),
)
TYPES = st.sampled_from(list(b"0123456789xgLKSAV\0")).map(lambda byte: bytes([byte]))
PAX_RECORDS = st.sampled_from(
    [
        b"12 size=-512\n",
        b"11 size=abc\n",
        b"20 size=99999999999\n",
        b"9 size=0\n",
        b"5 x\n",
        b"0 path=a\n",
        b"-8 path=\n",
        b"99 path=a\n",
        b"12 path=a.jpg\n",
        b"no record at all",
    ]
)


def mutated(original: bytes, header: int, field: str, value: bytes, fix_checksum: bool) -> bytes:
    offsets = header_offsets(original)
    at = offsets[header % len(offsets)]
    if field == "pax":
        pax = [offset for offset in offsets if original[offset + 156 : offset + 157] == b"x"]
        if not pax:
            return with_field(original, at, SIZE, value)
        start = pax[header % len(pax)] + BLOCK
        return original[:start] + value + original[start + len(value) :]
    fields = {"size": SIZE, "type": TYPE, "checksum": CHECKSUM}
    return with_field(original, at, fields[field], value, fix_checksum=fix_checksum)


def check_index(path: Path, read: Callable[[Path], list[tuple[str, int, int]]]) -> None:
    """The index is a DatasetError naming the shard, or members that lie in the file in order."""
    try:
        members = read(path)
    except DatasetError as exc:
        assert str(path) in str(exc), str(exc)
        assert "re-create or re-download the shard" in str(exc) or "sparse" in str(exc), str(exc)
        return
    end = path.stat().st_size
    offsets = [offset for _, offset, _ in members]
    assert offsets == sorted(set(offsets)), members
    for name, offset, size in members:
        assert size >= 0 and offset % BLOCK == 0 and offset + size <= end, (name, offset, size)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    original=st.sampled_from(range(len(ORIGINALS))),
    header=st.integers(0, 20),
    change=st.one_of(
        st.tuples(st.just("size"), SIZES),
        st.tuples(st.just("type"), TYPES),
        st.tuples(st.just("checksum"), st.binary(max_size=8)),
        st.tuples(st.just("pax"), PAX_RECORDS),
    ),
    fix_checksum=st.booleans(),
)
def test_mutated_headers_give_members_in_the_file_or_a_dataset_error(
    tmp_path: Path, original: int, header: int, change: tuple[str, bytes], fix_checksum: bool
) -> None:
    field, value = change
    path = tmp_path / "fuzz.tar"
    path.write_bytes(mutated(ORIGINALS[original], header, field, value, fix_checksum))
    check_index(path, members_of)
