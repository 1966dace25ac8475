"""Benchmark of the Ray path against the local pipeline on the same pairs, and of Ray's fixed costs.

Writes photo-like JPEGs of COCO-like sizes (bench_encode's) with captions, then embeds every image and
caption with the shipped reference model (or --model):
- locally (``embed_pairs``, one decode thread per core), the reference of every ratio;
- on a local Ray cluster with 1 model replica and 1 decoder, then 2 replicas and 1 decoder (Ray's
  logical CPUs: 2, then 3, on however many cores the machine has: printed);
and prints the cluster's start-up, the time to a job's first vectors (actors started, the model and
processor loaded, one batch embedded), the whole job's time, and its steady throughput (rows, i.e.
images and texts, from the first batch to the last) as ratios against the local run's rows/s. Last, the per-core rates the README's scaling model uses: decode +
preprocess images/s and encode images/s, each on one thread.
Run: python benchmarks/bench_ray.py [--images N] [--batch-size B] [--model SPEC] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_encode import make_pairs  # noqa: E402

from pytest_modgap.data.pairset import PairSet  # noqa: E402
from pytest_modgap.embedding.pipeline import (  # noqa: E402
    TextColumns,
    default_num_workers,
    embed_pairs,
    open_rgb,
)
from pytest_modgap.embedding.ray.job import RayEmbeddingJob  # noqa: E402
from pytest_modgap.embedding.ray.plan import RayPlan  # noqa: E402
from pytest_modgap.models.loader import load_encoder, load_image_preprocessor  # noqa: E402
from pytest_modgap.reference import reference_model_dir  # noqa: E402

OPTIONS = {"device": "cpu", "dtype": None, "trust_remote_code": False, "task": None}


def local_seconds(pairs: PairSet, spec: str, batch_size: int) -> float:
    """The local pipeline on every image and caption, model already loaded (best of two)."""
    encoder = load_encoder(spec, device="cpu")
    times = []
    for _ in range(2):
        start = time.perf_counter()
        embed_pairs(pairs, encoder, batch_size=batch_size, progress=False)
        times.append(time.perf_counter() - start)
    return min(times)


@dataclass(frozen=True)
class JobTimes:
    """One Ray job, timed from its start on the driver: to its first vectors (actors started, the
    model and processor loaded, one batch done), to its last, and the rows in between."""

    first: float
    total: float
    rows_after_first: int

    @property
    def steady_rows_per_s(self) -> float:
        """Rows (images and texts) per second once every stage runs: first to last batch."""
        return self.rows_after_first / max(self.total - self.first, 1e-9)


def ray_job_times(pairs: PairSet, spec: str, plan: RayPlan, batch_size: int) -> JobTimes:
    """One Ray job on every image and caption of ``pairs``."""
    options = {**OPTIONS, "batch_size": batch_size, "truncate_dim": None}
    job = RayEmbeddingJob("local", spec, options, plan=plan)
    columns = TextColumns.of(pairs)
    start = time.perf_counter()
    first = None
    rows = 0
    for batch in job.run(pairs, columns.distinct, None):
        if first is None:
            first = time.perf_counter() - start
        else:
            rows += len(batch.rows)
    assert first is not None
    return JobTimes(first, time.perf_counter() - start, rows)


def per_core_rates(pairs: PairSet, spec: str, batch_size: int) -> dict[str, float]:
    """Images/s on one thread: read + decode + the model's processor, and the model's forward."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        preprocess = load_image_preprocessor(spec)
        assert preprocess is not None, "the scaling model needs a CLIP-family processor"
        count = min(len(pairs), 4 * batch_size)
        start = time.perf_counter()
        batches = []
        for first in range(0, count, batch_size):
            images = [open_rgb(pairs, i) for i in range(first, min(count, first + batch_size))]
            batches.append(preprocess(images))
        decode = count / (time.perf_counter() - start)
        encoder: Any = load_encoder(spec, device="cpu")
        with torch.inference_mode():
            encoder.forward_pixels(batches[0])
            start = time.perf_counter()
            for pixels in batches:
                encoder.forward_pixels(pixels)
        encode = count / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return {"decode_preprocess_images_per_s": decode, "encode_images_per_s": encode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default=str(reference_model_dir("reference")))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from pytest_modgap.embedding.ray.cluster import (
        driver_path,
        keep_local_cluster_on_loopback,
        quiet_ray_data,
    )

    keep_local_cluster_on_loopback(block_cloud_probes=True)  # nothing past 127.0.0.1
    import ray

    cores = os.cpu_count() or 1
    results: dict[str, Any] = {"images": args.images, "cores": cores, "model": args.model}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as folder:
        pairs = make_pairs(Path(folder), args.images)
        local = local_seconds(pairs, args.model, args.batch_size)
        results["local"] = {"seconds": local, "workers": default_num_workers()}
        print(
            f"{args.images} JPEGs (COCO sizes) + captions, model {Path(args.model).name}, "
            f"{cores} cores"
        )
        print(
            f"  local pipeline ({default_num_workers()} decode threads): {local:7.2f} s  "
            f"{args.images / local:7.1f} pairs/s  (reference, 1.00)"
        )
        for encoders, cpus in ((1, 2), (2, 3)):
            start = time.perf_counter()
            ray.init(
                num_cpus=cpus,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": {"PYTHONPATH": driver_path(), "HF_HUB_OFFLINE": "1"}},
            )
            quiet_ray_data()
            startup = time.perf_counter() - start
            plan = RayPlan(encoders=encoders, decoders=1)
            times = ray_job_times(pairs, args.model, plan, args.batch_size)
            ray.shutdown()
            rows = len(pairs) + len(TextColumns.of(pairs).distinct)
            local_rows = rows / local
            key = f"ray_{encoders}_replicas"
            results[key] = {
                "logical_cpus": cpus,
                "cluster_start_seconds": startup,
                "first_batch_seconds": times.first,
                "seconds": times.total,
                "steady_rows_per_s": times.steady_rows_per_s,
                "total_vs_local": local / times.total,
                "steady_vs_local": times.steady_rows_per_s / local_rows,
            }
            print(
                f"  ray, {encoders} replica(s) + 1 decoder ({cpus} logical CPUs on {cores} cores):"
            )
            print(
                f"      cluster start {startup:5.2f} s; first vectors after {times.first:5.2f} s "
                f"(actors started, model loaded)"
            )
            print(
                f"      whole job {times.total:7.2f} s = {local / times.total:4.2f}x the local "
                f"speed; from the first batch on {times.steady_rows_per_s:7.1f} rows/s = "
                f"{times.steady_rows_per_s / local_rows:4.2f}x the local {local_rows:.1f} rows/s"
            )
        rates = per_core_rates(pairs, args.model, args.batch_size)
        results["per_core"] = rates
        print(
            f"  one core: read + decode + processor {rates['decode_preprocess_images_per_s']:7.1f}"
            f" images/s; this model's forward {rates['encode_images_per_s']:7.1f} images/s"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
