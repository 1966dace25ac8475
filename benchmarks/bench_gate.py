"""Baseline snapshots: their size, what float16 does to each metric, a check's time with and without
one, and the paired change's interval against the level's, on the shipped models.

    python benchmarks/bench_gate.py [--sizes 200,1000,5000] [--json out.json]

Every number is measured in this run; times are printed against the check without a snapshot.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from pytest_modgap import measure, measure_embeddings
from pytest_modgap.data.builtin import SHAPES_EVAL_SIZE, generate_shapes
from pytest_modgap.data.pairset import PairSet
from pytest_modgap.gate.baselines import BaselineRegression, assert_no_regression, load
from pytest_modgap.gate.baselines.snapshot import encode_snapshot, read_snapshot
from pytest_modgap.metrics.measured import MeasuredPairs
from pytest_modgap.metrics.report import Report
from pytest_modgap.reference import reference_model_dir

KEY_METRICS = ("alignment", "centroid_gap", "image_cone", "auc", "i2t_recall@1")


def snapshot_bytes(dimension: int, pairs: int = 1000) -> int:
    """Bytes of the snapshot of ``pairs`` pairs with two captions each at ``dimension``."""
    rng = np.random.default_rng(0)
    measured = MeasuredPairs(
        image=rng.standard_normal((pairs, dimension)).astype(np.float32),
        text=rng.standard_normal((pairs, dimension)).astype(np.float32),
        text2=rng.standard_normal((pairs, dimension)).astype(np.float32),
        identities=rng.integers(0, 256, (pairs, 16), dtype=np.uint8),
        pair_names=[f"images/{i:06d}.jpg" for i in range(pairs)],
        captions=[f"a photo of thing number {i} on a table" for i in range(pairs)],
    )
    return len(encode_snapshot(measured, key="bench", pairs="0" * 64))


def run_model(variant: str, samples: int, cache: Path, dtype: str | None = None) -> Report:
    """The shipped model on ``samples`` pairs of the built-in set (past its 2,000 pairs, a larger
    generated set of the same kind)."""
    large = samples > SHAPES_EVAL_SIZE
    dataset: str | PairSet = generate_shapes(samples, seed=7) if large else "shapes"
    return measure(
        str(reference_model_dir(variant)),
        dataset,
        samples=None if large else samples,
        cache_dir=cache,
        dtype=dtype,
        progress=False,
    )


def halfwidth_ratios(candidate: Report, folder: Path) -> dict[str, float]:
    """Per metric: the paired change's interval width over the candidate's own (level) width."""
    try:
        rows = assert_no_regression(candidate, "bench", baseline_dir=folder, tolerance=10.0).rows
    except BaselineRegression as failed:
        rows = failed.comparison.rows
    return {
        row.name: (row.change_ci[1] - row.change_ci[0]) / (row.ci[1] - row.ci[0])
        for row in rows
        if row.change_ci is not None and row.ci is not None and row.ci[1] > row.ci[0]
    }


def summary(ratios: dict[str, float]) -> str:
    named = ", ".join(f"{name} {ratios[name]:.2f}" for name in KEY_METRICS if name in ratios)
    return f"median {median(ratios.values()):.2f} over {len(ratios)} metrics; {named}"


def rounding(report: Report, folder: Path) -> dict[str, float]:
    """|metric(snapshot's float16 vectors) - metric(recorded)| per metric."""
    (key, entry), *_ = load("bench", folder).datasets.items()
    assert entry.snapshot is not None
    stored = read_snapshot(folder, entry.snapshot, key=key)
    again = measure_embeddings(stored.image, stored.text, **_arguments(stored), ci=None)
    return {name: abs(again[name] - report[name]) for name in report if name in again}


def _arguments(stored: MeasuredPairs) -> dict[str, Any]:
    arguments = stored.arguments()
    arguments["slices"] = None
    return arguments


def timed_check(report: Report, folder: Path, *, snapshots: bool) -> float:
    start = time.perf_counter()
    try:
        assert_no_regression(report, "bench", baseline_dir=folder, snapshots=snapshots)
    except BaselineRegression:
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000,5000")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    results: dict[str, Any] = {"snapshot_bytes_per_1000_pairs": {}}
    print("snapshot size, 1,000 pairs with two captions each (float16 vectors, names, captions):")
    for dimension in (512, 1024, 2048):
        size = snapshot_bytes(dimension)
        raw = 1000 * 3 * dimension * 4
        results["snapshot_bytes_per_1000_pairs"][dimension] = size
        print(
            f"  d = {dimension:5d}: {size / 1e6:6.2f} MB  ({size / raw:.2f} of the float32 vectors)"
        )
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as scratch:
        cache = Path(scratch) / "cache"
        for samples in sizes:
            folder = Path(scratch) / f"n{samples}"
            reference = run_model("reference", samples, cache)
            regressed = run_model("regressed", samples, cache)
            assert_no_regression(reference, "bench", baseline_dir=folder, update=True)
            off = rounding(reference, folder)
            plain = timed_check(regressed, folder, snapshots=False)
            paired = timed_check(regressed, folder, snapshots=True)
            regressed_ratios = halfwidth_ratios(regressed, folder)
            near = run_model("reference", samples, cache, dtype="bfloat16")
            near_ratios = halfwidth_ratios(near, folder)
            results[f"n={samples}"] = {
                "float16_max_abs_change": max(off.values()),
                "float16_abs_change": off,
                "check_seconds_numbers_only": plain,
                "check_seconds_paired": paired,
                "change_over_level_width_regressed": regressed_ratios,
                "change_over_level_width_bfloat16": near_ratios,
            }
            print(f"\nN = {samples} pairs, baseline recorded from the shipped reference model:")
            worst = max(off, key=lambda name: off[name])
            print(f"  float16 snapshot: largest metric change {off[worst]:.2e} ({worst})")
            print(
                f"  check of the regressed model: numbers only {plain:6.2f} s (1.00); paired with "
                f"the snapshot {paired:6.2f} s ({paired / plain:.1f}x)"
            )
            print("  the change's interval width over the level's:")
            print(f"    regressed model (a large change): {summary(regressed_ratios)}")
            print(f"    the reference in bfloat16 (a small one): {summary(near_ratios)}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
