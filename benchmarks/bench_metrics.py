"""Benchmark of the metric engine against a direct float64 numpy transcription, in one run.

Prints: the speed-up at N = 4,000, d = 512 (target >= 2x); the time and peak memory of every metric with
1,000-resample intervals at N = 10,000, d = 768 (targets <= 10 s, <= 3 GB on 2 cores); and, when CUDA is
present, pairs/s at N = 262,144, d = 1,024 against a plain bf16 matrix multiply of the same shapes.
Run: python benchmarks/bench_metrics.py [--skip-reference]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def synthetic_pairs(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image / text / second-text rows with a modality offset, like a real dual encoder's."""
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal((n, d)).astype(np.float32)
    image = shared + 0.8 * rng.standard_normal((n, d)).astype(np.float32) + 0.4
    text = shared + 0.8 * rng.standard_normal((n, d)).astype(np.float32) - 0.4
    text2 = text + 0.5 * rng.standard_normal((n, d)).astype(np.float32)
    return image, text, text2


def best_of(repeats: int, function: object) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def compare_with_reference(n: int, d: int) -> None:
    from pytest_modgap import measure_embeddings
    from tests.reference_metrics import reference_metrics

    image, text, text2 = synthetic_pairs(n, d)
    measure_embeddings(image[:200], text[:200], text2=text2[:200], ci=None)  # warm-up
    engine = best_of(3, lambda: measure_embeddings(image, text, text2=text2, ci=None))
    reference = best_of(1, lambda: reference_metrics(image, text, text2))
    print(f"[N={n:,}, d={d}] every metric, no intervals")
    print(f"  float64 numpy transcription : {reference:7.3f} s")
    print(f"  pytest-modgap engine        : {engine:7.3f} s")
    print(f"  speed-up (target >= 2x)     : {reference / engine:7.2f}x")


def _resident_mb(field: str) -> float:
    """VmRSS (current) or VmHWM (peak since the last reset) of this process, in MB (Linux)."""
    status = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return (
        int(match.group(1)) / 1024
        if match
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )


def full_run_child(n: int, d: int) -> None:
    """Runs in a fresh process; the peak is reset after the inputs exist, so it is the measurement's."""
    import torch

    from pytest_modgap import measure_embeddings

    image, text, text2 = synthetic_pairs(n, d)
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    Path("/proc/self/clear_refs").write_text("5")
    rss_before = _resident_mb("VmRSS")
    start = time.perf_counter()
    report = measure_embeddings(image, text, text2=text2, ci=0.95, n_boot=1000)
    elapsed = time.perf_counter() - start
    peak = _resident_mb("VmHWM")
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "peak_rss_mb": peak,
                "rss_before_mb": rss_before,
                "threads": torch.get_num_threads(),
                "alignment": report["alignment"],
            }
        )
    )


def full_run(n: int, d: int) -> None:
    output = subprocess.run(
        [sys.executable, __file__, "--child", str(n), str(d)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    print(f"[N={n:,}, d={d}] every metric + 95% CIs from 1,000 resamples, CPU")
    print(
        f"  time (target <= 10 s)       : {result['seconds']:7.2f} s  "
        f"({result['threads']} torch threads)"
    )
    print(
        f"  peak RSS (target <= 3 GB)   : {result['peak_rss_mb']:7.0f} MB  "
        f"(of which {result['rss_before_mb']:.0f} MB interpreter, torch and inputs)"
    )


def cuda_run(n: int, d: int) -> None:
    import torch

    from pytest_modgap import measure_embeddings

    image, text, text2 = (torch.from_numpy(a).cuda() for a in synthetic_pairs(n, d))
    measure_embeddings(image[:4096], text[:4096], ci=None)
    torch.cuda.synchronize()
    start = time.perf_counter()
    measure_embeddings(image, text, text2=text2, ci=None)
    torch.cuda.synchronize()
    engine = time.perf_counter() - start
    a, b = image.bfloat16(), text.bfloat16()
    block = 16_384
    torch.cuda.synchronize()
    start = time.perf_counter()
    for begin in range(0, n, block):
        (a[begin : begin + block] @ b.T).sum()
    torch.cuda.synchronize()
    matmul = time.perf_counter() - start
    pairs = float(n) * n
    print(f"[N={n:,}, d={d}] CUDA ({torch.cuda.get_device_name()}), every metric, no intervals")
    print(f"  engine                      : {pairs / engine:.3e} pairs/s ({engine:.2f} s)")
    print(f"  bf16 matmul, same shapes    : {pairs / matmul:.3e} pairs/s ({matmul:.2f} s)")
    print(f"  engine / matmul throughput  : {matmul / engine:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-reference", action="store_true", help="skip the N=4,000 comparison")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        full_run_child(*args.child)
        return
    if not args.skip_reference:
        compare_with_reference(4_000, 512)
    full_run(10_000, 768)
    import torch

    if torch.cuda.is_available():
        cuda_run(262_144, 1_024)
    else:
        print("[CUDA] not available: the N=262,144 GPU run is skipped")


if __name__ == "__main__":
    main()
