"""Benchmark of sampling a large WebDataset shard set: index time, bytes read and peak memory.

Generates a shard set of small JPEGs (200,000 pairs in 20 shards by default: 16 distinct ~300-byte
JPEGs reused with varied captions, ~410 MB), then runs each case in a fresh process: building the
index alone; the data path (index, sample, read and embed the sampled pairs) for 1,000 and 20,000
samples and for every pair (reading everything); ``measure()`` on 1,000 and 20,000 samples (caches
off; then 1,000 with a cold cache, which hashes the sampled members before decoding them); and
``measure()`` on 1,000 samples of a 20,000-pair subset, to see whether peak memory follows the
set's size. Bytes read are the process's ``rchar`` (/proc/self/io): every byte read() returned,
page cache or not. Embedding uses a pixel-statistics encoder, so the numbers show the data path,
not a model; ``measure()`` adds the all-pairs metrics (ci=None), whose memory is O(samples).
Run: python benchmarks/bench_data.py [--pairs 200000] [--shards 20] [--dir FOLDER] [--keep]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MB = 1e6


def tiny_jpegs(count: int = 16) -> list[bytes]:
    """``count`` distinct 8x8 JPEGs of ~300 bytes (one 512-byte tar block each)."""
    from PIL import Image

    images = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        pixels = np.clip(rng.integers(0, 256, 3) + rng.normal(0, 20, (8, 8, 3)), 0, 255)
        buffer = io.BytesIO()
        Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="JPEG", optimize=True)
        images.append(buffer.getvalue())
    return images


def write_shards(folder: Path, pairs: int, shards: int) -> float:
    """``shards`` tar shards of ``pairs`` jpg + txt samples in all; the seconds it took."""
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    images = tiny_jpegs()
    per_shard = -(-pairs // shards)
    objects = ("dog", "cat", "circle", "square", "boat", "tree", "car", "house")
    colours = ("red", "green", "blue", "yellow", "black", "white", "grey")
    for shard in range(shards):
        with open(folder / f"shard-{shard:04d}.tar", "wb") as handle:
            for row in range(shard * per_shard, min(pairs, (shard + 1) * per_shard)):
                caption = (
                    f"a {colours[row % 7]} {objects[row % 8]} number {row}, "
                    f"photo {row % 16} of the benchmark"
                ).encode()
                for name, data in (
                    (f"{row:08d}.jpg", images[row % 16]),
                    (f"{row:08d}.txt", caption),
                ):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    handle.write(info.tobuf(format=tarfile.USTAR_FORMAT))
                    handle.write(data + bytes(-len(data) % tarfile.BLOCKSIZE))
            handle.write(bytes(2 * tarfile.BLOCKSIZE))
    return time.perf_counter() - started


class PixelStatistics:
    """A cheap deterministic encoder: pixel means and spreads, caption character counts."""

    spec = "pixel-statistics"

    def fingerprint(self) -> str:
        return "bench-pixel-statistics-v1"

    def encode_images(self, images: Sequence[Any]) -> Any:
        import torch

        rows = []
        for image in images:
            pixels = np.asarray(image, dtype=np.float32) / 255
            rows.append([*pixels.mean(axis=(0, 1)), *pixels.std(axis=(0, 1)), 0.1, 0.2])
        return torch.tensor(rows)

    def encode_texts(self, texts: Sequence[str]) -> Any:
        import torch

        rows = [
            [len(t) / 60, t.count("a") / 5, t.count("o") / 5, sum(c.isdigit() for c in t) / 6]
            + [0.3, 0.1, 0.5, 0.2]
            for t in texts
        ]
        return torch.tensor(rows)


def read_chars() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak so far) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / MB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


def child(mode: str, spec: str, samples: int | None, cache_dir: str | None) -> dict[str, Any]:
    """One case, run in this (fresh) process; its numbers as a dict."""
    from pytest_modgap.data.pairset import PairSet
    from pytest_modgap.data.webdataset import WebDatasetPairs
    from pytest_modgap.embedding.measurement import LoadedModel, measure
    from pytest_modgap.embedding.pipeline import embed_pairs

    model = LoadedModel("pixel-statistics", PixelStatistics())
    # Warm-up on two in-memory pairs: every import and thread pool start happens before counting.
    warm = PairSet("warm", [np.zeros((4, 4, 3), np.uint8)] * 2, ["a", "b"])
    measure(model, warm, ci=None, use_cache=False, progress=False)
    baseline = rss_mb("VmRSS")
    reads = read_chars()
    started = time.perf_counter()
    if mode == "index":
        index = WebDatasetPairs(spec.removeprefix("wds:"))
        result: dict[str, Any] = {"pairs": len(index)}
    elif mode == "embed":  # the data path: index, sample, read and embed the sampled pairs
        pairs = WebDatasetPairs(spec.removeprefix("wds:")).sample(samples, seed=0)
        embeddings = embed_pairs(pairs, PixelStatistics(), batch_size=256, progress=False)
        result = {"pairs": len(embeddings)}
    else:
        report = measure(
            model,
            spec,
            samples=samples,
            seed=0,
            ci=None,
            use_cache=cache_dir is not None,
            cache_dir=cache_dir,
            progress=False,
        )
        result = {"pairs": report.n}
    result.update(
        seconds=time.perf_counter() - started,
        read_mb=(read_chars() - reads) / MB,
        rss_before_mb=baseline,
        peak_rss_mb=rss_mb("VmHWM"),
    )
    return result


def run_child(script: str, args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``script --child ARGS`` in a process of its own (so its memory is its own) and return
    the JSON object its last output line holds."""
    output = subprocess.run(
        [sys.executable, script, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    parsed: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return parsed


def run_case(args: list[str]) -> dict[str, Any]:
    return run_child(__file__, args)


def sampled_bytes(spec: str, samples: int) -> int:
    """The bytes of the image and caption members of ``samples`` pairs drawn with seed 0."""
    from pytest_modgap.data.webdataset import TarMember, WebDatasetPairs

    pairs = WebDatasetPairs(spec.removeprefix("wds:")).sample(samples, seed=0)
    images = sum(image.size for image in pairs.images if isinstance(image, TarMember))
    return images + sum(len(text.encode()) for text in pairs.texts)


def index_seconds(spec: str) -> float:
    from pytest_modgap.data.webdataset import WebDatasetPairs

    started = time.perf_counter()
    WebDatasetPairs(spec.removeprefix("wds:"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=200_000)
    parser.add_argument("--shards", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the shards")
    parser.add_argument("--keep", action="store_true", help="keep the shards afterwards")
    parser.add_argument("--child", nargs=4, metavar=("MODE", "SPEC", "SAMPLES", "CACHE"))
    args = parser.parse_args()
    if args.child:
        mode, spec, samples, cache = args.child
        numbers = child(mode, spec, None if samples == "all" else int(samples), cache or None)
        print(json.dumps(numbers))
        return

    root = Path(tempfile.mkdtemp(prefix="bench_data_", dir=args.dir))
    try:
        shards = root / "shards"
        seconds = write_shards(shards, args.pairs, args.shards)
        size = sum(path.stat().st_size for path in shards.iterdir())
        print(
            f"generated {args.pairs:,} pairs in {args.shards} shards: {size / MB:,.0f} MB on disk "
            f"in {seconds:.1f} s"
        )
        whole = f"wds:{shards}"
        subset_shards = max(1, args.shards // 10)
        subset = f"wds:{shards}/shard-{{0000..{subset_shards - 1:04d}}}.tar"
        subset_pairs = min(args.pairs, subset_shards * -(-args.pairs // args.shards))
        cache = str(root / "cache")
        cases = [
            ("index only", ["index", whole, "all", ""]),
            ("sample + embed 1,000", ["embed", whole, "1000", ""]),
            ("sample + embed 20,000", ["embed", whole, "20000", ""]),
            (f"read + embed all {args.pairs:,}", ["embed", whole, "all", ""]),
            ("measure() 1,000", ["measure", whole, "1000", ""]),
            ("measure() 1,000 cold cache", ["measure", whole, "1000", cache]),
            ("measure() 20,000", ["measure", whole, "20000", ""]),
            (f"measure() 1,000 of {subset_pairs:,}", ["measure", subset, "1000", ""]),
        ]
        print(
            f"{'case':28s} {'pairs':>8s} {'seconds':>8s} {'read MB':>9s} {'% of set':>8s} "
            f"{'RSS before':>10s} {'peak RSS':>9s}"
        )
        for label, case in cases:
            result = run_case(case)
            set_size = size if case[1] == whole else size * subset_shards / args.shards
            print(
                f"{label:28s} {result['pairs']:8,d} {result['seconds']:8.2f} "
                f"{result['read_mb']:9.1f} {100 * result['read_mb'] * MB / set_size:7.1f}% "
                f"{result['rss_before_mb']:8.0f}MB {result['peak_rss_mb']:7.0f}MB"
            )
        print(f"index alone, warm page cache, in this process: {index_seconds(whole):.2f} s")
        headers = 2 * args.pairs * tarfile.BLOCKSIZE
        print(f"tar headers of the whole set (what the index reads): {headers / MB:.1f} MB")
        for samples in (1000, 20000):
            print(
                f"member bytes of {samples:,} sampled pairs (jpg + txt): "
                f"{sampled_bytes(whole, samples) / MB:.2f} MB"
            )
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
