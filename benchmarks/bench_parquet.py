"""Benchmark of sampling a Parquet file written as one large row group: peak memory of reading the
sampled rows, to check that it follows the rows read, not the row group's size.

Writes one file per size in ``--rows`` (default 1,000 and 40,000), each a single row group of
``--image-kb`` KB incompressible image bytes and a caption per row, then in a fresh process per
file: a warm-up read of a tiny file (imports, Arrow's allocator), then ``load_dataset`` and
``sample(samples)`` (the index from the footer, then the sampled rows' bytes). Peak RSS is the
process's VmHWM; "growth" is the rise of the high-water mark over the warm-up's, "Arrow peak" the
most Arrow's memory pool held at once, both in MB. pyarrow writes a page per 1,024 rows by
default, so a page of 8 KB images is 8 MB: the bound is a page per column plus a batch.
Run: python benchmarks/bench_parquet.py [--rows 1000 40000] [--samples 2] [--image-kb 8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_data import MB, read_chars, rss_mb, run_child


def write_file(path: Path, rows: int, image_bytes: int) -> None:
    """``rows`` pairs of random ``image_bytes``-byte images and short captions, one row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    images = [rng.bytes(image_bytes) for _ in range(rows)]
    captions = [f"a photo number {row} of the benchmark" for row in range(rows)]
    table = pa.table({"image": pa.array(images, pa.binary()), "caption": captions})
    pq.write_table(table, path, row_group_size=rows)


def child(path: str, warm: str, samples: int) -> dict[str, Any]:
    """Sample ``samples`` rows of the file at ``path`` in this (fresh) process; its numbers."""
    import pyarrow as pa

    from pytest_modgap.data.specs import load_dataset

    load_dataset(f"parquet:{warm}").sample(2, seed=0)
    before = rss_mb("VmHWM")
    reads = read_chars()
    started = time.perf_counter()
    pairs = load_dataset(f"parquet:{path}").sample(samples, seed=0)
    return {
        "pairs": len(pairs),
        "seconds": time.perf_counter() - started,
        "read_mb": (read_chars() - reads) / MB,
        "peak_before_mb": before,
        "peak_rss_mb": rss_mb("VmHWM"),
        "arrow_peak_mb": pa.default_memory_pool().max_memory() / MB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 40_000])
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--image-kb", type=float, default=8.0)
    parser.add_argument("--child", nargs=3, metavar=("FILE", "WARM", "SAMPLES"))
    args = parser.parse_args()
    if args.child:
        path, warm, samples = args.child
        print(json.dumps(child(path, warm, int(samples))))
        return
    root = Path(tempfile.mkdtemp(prefix="bench_parquet_"))
    try:
        image_bytes = int(args.image_kb * 1024)
        warm = root / "warm.parquet"
        write_file(warm, 4, image_bytes)
        print(
            f"one row group per file, {image_bytes:,}-byte images, samples={args.samples}\n"
            f"{'rows':>8s} {'file MB':>8s} {'seconds':>8s} {'read MB':>8s} "
            f"{'peak before':>11s} {'peak RSS':>9s} {'growth':>7s} {'Arrow peak':>10s}"
        )
        for rows in args.rows:
            path = root / f"rows-{rows}.parquet"
            write_file(path, rows, image_bytes)
            result = run_child(__file__, [str(path), str(warm), str(args.samples)])
            print(
                f"{rows:8,d} {path.stat().st_size / MB:8.1f} {result['seconds']:8.2f} "
                f"{result['read_mb']:8.1f} {result['peak_before_mb']:9.0f}MB "
                f"{result['peak_rss_mb']:7.0f}MB "
                f"{result['peak_rss_mb'] - result['peak_before_mb']:5.0f}MB "
                f"{result['arrow_peak_mb']:8.1f}MB"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
