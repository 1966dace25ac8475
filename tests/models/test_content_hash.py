"""Whole-file content hashes: every byte counts, chunks hash in parallel, a file is read once."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from pytest_modgap.models import content_hash
from pytest_modgap.models.content_hash import file_digest

CHUNK = 4096


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 4 KiB, so that a small file has many chunks and chunk boundaries."""
    monkeypatch.setattr(content_hash, "CHUNK_BYTES", CHUNK)


def rewrite_keeping_mtime(path: Path, offset: int, data: bytes) -> None:
    """Overwrite bytes in place and set the old atime and mtime back, as ``cp -p`` would leave it."""
    before = path.stat()
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one per chunk read from disk."""
    reads: list[int] = []
    chunk_digest = content_hash._chunk_digest

    def counted(fd: int, offset: int, size: int) -> bytes:
        reads.append(offset)
        return chunk_digest(fd, offset, size)

    monkeypatch.setattr(content_hash, "_chunk_digest", counted)
    return reads


@pytest.mark.usefixtures("small_chunks")
def test_every_byte_counts_whatever_the_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "weights.bin"
    content = os.urandom(5 * CHUNK + 123)
    path.write_bytes(content)
    original = file_digest(path)
    assert file_digest(Path(shutil.copy(path, tmp_path / "copy.bin"))) == original
    for threads in (1, 3, 8):
        monkeypatch.setattr(content_hash, "_available_cpus", lambda threads=threads: threads)
        assert file_digest(path) == original, f"{threads} threads give another digest"
    for offset in (0, CHUNK - 1, CHUNK, 3 * CHUNK + 7, len(content) - 1):
        flipped = bytes([content[offset] ^ 1])
        rewrite_keeping_mtime(path, offset, flipped)
        assert file_digest(path) != original, f"a changed byte at {offset} was missed"
        rewrite_keeping_mtime(path, offset, content[offset : offset + 1])
        assert file_digest(path) == original
    path.write_bytes(content + b"\0")
    assert file_digest(path) != original, "a trailing zero byte was missed"


def test_a_settled_file_is_read_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(os.urandom(10_000))
    monkeypatch.setattr(content_hash, "_now", lambda: time.time() + 60)  # written a minute ago
    reads = count_reads(monkeypatch)
    first = file_digest(path)
    assert reads and file_digest(path) == first
    assert len(reads) == 1, "an unchanged file was read again"
    time.sleep(0.05)  # past the file system's clock tick, as RACY_SECONDS guarantees in real use
    rewrite_keeping_mtime(path, 5_000, b"\xff\xfe")
    assert file_digest(path) != first, "a same-size rewrite with the mtime kept was missed"
    assert len(reads) == 2


def test_a_file_written_in_the_last_seconds_is_read_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """File times come from a coarse clock: a second write in the same tick could look unchanged."""
    path = tmp_path / "weights.bin"
    path.write_bytes(b"checkpoint one")
    reads = count_reads(monkeypatch)
    first = file_digest(path)
    assert file_digest(path) == first and len(reads) == 2
