"""Benchmark of whole-file weight hashing (the embedding cache's model fingerprint) on a 1 GiB file.

Prints the first hash and the memoised second call next to the time of simply reading the file,
measured in the same run (best of --repeats), with the page cache warm and (where posix_fadvise can
evict the file) cold; a plain sequential SHA-256 of the file; and SHA-256 against BLAKE2b on one
core, the reason ``content_hash`` uses SHA-256.
Run: python benchmarks/bench_hashing.py [--gib 1] [--repeats 3] [--dir FOLDER_ON_THE_DISK]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pytest_modgap.models import content_hash
from pytest_modgap.models.content_hash import file_digest

MIB = 1024 * 1024


def write_file(path: Path, size: int) -> None:
    """``size`` bytes: a 64 MiB random block repeated (hashing cost does not depend on content)."""
    block = os.urandom(64 * MIB)
    with path.open("wb") as handle:
        for offset in range(0, size, len(block)):
            handle.write(block[: size - offset])
        handle.flush()
        os.fsync(handle.fileno())


def read_all(path: Path) -> None:
    """Read every byte once, as any hash must: the reference."""
    buffer = bytearray(MIB)
    with path.open("rb", buffering=0) as handle:
        while handle.readinto(buffer):
            pass


def sequential_sha256(path: Path) -> str:
    """One SHA-256 over the file read in order, on one thread: what a tree hash is compared with."""
    digest = hashlib.sha256()
    buffer = bytearray(MIB)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
    return digest.hexdigest()


def evict(path: Path) -> bool:
    """Drop the file's pages from the page cache; False where the OS offers no way to."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def one_core_throughput(name: str, data: bytes) -> float:
    """GB/s of one hashlib algorithm over ``data`` in memory, on one core."""
    view = memoryview(data)
    digest = hashlib.new(name)
    started = time.perf_counter()
    for offset in range(0, len(data), MIB):
        digest.update(view[offset : offset + MIB])
    return len(data) / (time.perf_counter() - started) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0, help="file size in GiB (default 1)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the file")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many (default 3)")
    args = parser.parse_args()
    size = int(args.gib * 1024 * MIB)

    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = Path(folder) / "model.safetensors"
        write_file(path, size)
        # A file changed in the last RACY_SECONDS is hashed again each time instead of memoised.
        time.sleep(content_hash.RACY_SECONDS + 0.1)
        threads = min(
            content_hash.MAX_THREADS,
            content_hash._available_cpus(),
            -(-size // content_hash.CHUNK_BYTES),
        )
        print(f"{size / 1e9:.2f} GB file in {folder}; SHA-256 tree hash on {threads} thread(s)")
        rows = []
        for state in ("cold", "warm"):
            if state == "cold" and not evict(path):
                print("cold: skipped (no posix_fadvise to evict the file from the page cache)")
                continue
            runs = []
            for _ in range(args.repeats):
                if state == "cold":
                    evict(path)
                read_s = timed(lambda: read_all(path))
                content_hash._memo.clear()  # each repeat measures a first hash
                if state == "cold":
                    evict(path)
                first_s = timed(lambda: file_digest(path))
                runs.append((read_s, first_s, timed(lambda: file_digest(path))))
            rows.append((state, *(min(column) for column in zip(*runs, strict=True))))
        print(f"{'page cache':<11}{'read':>16}{'first hash':>18}{'ratio':>8}{'memoised 2nd':>15}")
        for state, read_s, first_s, second_s in rows:
            print(
                f"{state:<11}{read_s:7.3f} s {size / read_s / 1e9:5.2f} GB/s"
                f"{first_s:9.3f} s {size / first_s / 1e9:5.2f} GB/s{first_s / read_s:7.2f}x"
                f"{second_s * 1e6:11.0f} us"
            )
        sequential_s = timed(lambda: sequential_sha256(path))
        print(
            f"warm, plain sequential sha256 of the file on one thread: {sequential_s:.3f} s "
            f"{size / sequential_s / 1e9:.2f} GB/s"
        )
        sample = os.urandom(256 * MIB)
        speeds = {name: one_core_throughput(name, sample) for name in ("sha256", "blake2b")}
        print("one core, in memory: " + ", ".join(f"{k} {v:.2f} GB/s" for k, v in speeds.items()))


if __name__ == "__main__":
    main()
