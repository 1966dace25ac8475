"""Coverage of the 95% intervals of every metric, by simulation against known population values.

For each population (centroid gap 0.1 and 0.5) and sample size (N = 100 and 1,000), draws
``--sims`` independent samples of N pairs, measures them with ``measure_embeddings`` (1,000
resamples) and counts how often each metric's interval covers the population value, and how often
it contains its own estimate (it must, always). Population values come from 400,000 independent
pairs: means directly, all-pairs metrics (cones, negatives, AUC, overlaps, uniformity) from pairs
of independent draws, which is what their U-statistics estimate.

Run: python benchmarks/bench_coverage.py [--sims 200] [--dim 32]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from pytest_modgap import measure_embeddings
from pytest_modgap.metrics.allpairs import OVERLAP_BINS
from pytest_modgap.metrics.catalogue import METRICS

Sampler = Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray, np.ndarray]]

TARGET = (0.90, 0.98)


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def population(gap: float, dim: int) -> Sampler:
    """A dual-encoder-like population with a centroid gap of ``gap``: shared content, modality
    noise, and opposite modality offsets along one direction (calibrated by bisection)."""
    setup = np.random.default_rng(0)
    direction = _unit(setup.standard_normal((1, dim)))[0]
    base = 0.3 * setup.standard_normal(dim)

    def draw(n: int, offset: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        shared = rng.standard_normal((n, dim))
        image = base + offset * direction + shared + 1.5 * rng.standard_normal((n, dim))
        text = base - offset * direction + shared + 1.5 * rng.standard_normal((n, dim))
        text2 = base - offset * direction + shared + 1.0 * rng.standard_normal((n, dim))
        return _unit(image), _unit(text), _unit(text2)

    low, high = 0.0, 5.0
    for _ in range(30):
        middle = (low + high) / 2
        image, text, _ = draw(100_000, middle, np.random.default_rng(7))
        measured = np.linalg.norm(image.mean(0) - text.mean(0))
        low, high = (middle, high) if measured < gap else (low, middle)
    offset = (low + high) / 2
    return lambda n, rng: draw(n, offset, rng)  # type: ignore[return-value]


def population_values(sample: Sampler, size: int = 400_000) -> dict[str, float]:
    """Every metric of the population, from ``size`` pairs and a second independent ``size``."""
    rng = np.random.default_rng(99)
    x, y, z = sample(size, rng)
    x2, y2, _ = sample(size, rng)
    positive, negative, text_text = (x * y).sum(1), (x * y2).sum(1), (y * z).sum(1)
    edges = np.linspace(-1.0, 1.0, OVERLAP_BINS + 1)

    def hist(values: np.ndarray) -> np.ndarray:
        return np.histogram(values, edges)[0] / len(values)

    image_cone, text_cone = (x * x2).sum(1).mean(), (y * y2).sum(1).mean()
    d_m, d_i, d_t = (1 - positive.mean()) / 2, (1 - image_cone) / 2, (1 - text_cone) / 2
    return {
        "centroid_gap": float(np.linalg.norm(x.mean(0) - y.mean(0))),
        "pair_distance": float(np.linalg.norm(x - y, axis=1).mean()),
        "relative_gap": float(d_m / (d_m + (d_i + d_t) / 2)),
        "alignment": float(positive.mean()),
        "negative_similarity": float(negative.mean()),
        "separation": float(positive.mean() - negative.mean()),
        "auc": float(np.searchsorted(np.sort(negative), positive, side="left").mean() / size),
        "pos_neg_overlap": float(np.minimum(hist(positive), hist(negative)).sum()),
        "image_cone": float(image_cone),
        "text_cone": float(text_cone),
        "image_uniformity": float(np.log(np.exp(-2 * ((x - x2) ** 2).sum(1)).mean())),
        "text_uniformity": float(np.log(np.exp(-2 * ((y - y2) ** 2).sum(1)).mean())),
        "text_text_similarity": float(text_text.mean()),
        "matched_gap": float(text_text.mean() - positive.mean()),
        "matched_overlap": float(np.minimum(hist(positive), hist(text_text)).sum()),
    }


def simulate(sample: Sampler, truth: dict[str, float], n: int, sims: int) -> dict[str, tuple]:
    """metric -> (coverage, share of intervals containing their estimate, mean width)."""
    covered = dict.fromkeys(truth, 0)
    contained = dict.fromkeys(truth, 0)
    width = dict.fromkeys(truth, 0.0)
    for index in range(sims):
        image, text, text2 = sample(n, np.random.default_rng(10_000 + index))
        report = measure_embeddings(image, text, text2=text2, n_boot=1000, seed=index)
        for name, value in truth.items():
            low, high = report.ci[name]
            covered[name] += low <= value <= high
            contained[name] += low <= report[name] <= high
            width[name] += high - low
    return {
        name: (covered[name] / sims, contained[name] / sims, width[name] / sims) for name in truth
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sims", type=int, default=200)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--gaps", default="0.1,0.5")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    gaps = [float(g) for g in args.gaps.split(",")]
    results: dict[tuple[float, int], dict[str, tuple]] = {}
    truths: dict[float, dict[str, float]] = {}
    started = time.perf_counter()
    for gap in gaps:
        sample = population(gap, args.dim)
        truths[gap] = population_values(sample)
        for n in sizes:
            results[gap, n] = simulate(sample, truths[gap], n, args.sims)
    seconds = time.perf_counter() - started
    configs = list(results)
    print(
        f"95% interval coverage of the population value over {args.sims} simulations per column "
        f"(d = {args.dim}, 1,000 resamples; {seconds:.0f} s); target {TARGET[0]:.2f}-{TARGET[1]:.2f}"
    )
    header = "".join(f"  gap {gap} N={n:<5}" for gap, n in configs)
    print(f"{'metric':22s}{header}  contains estimate")
    misses = []
    for name in METRICS:
        cells = ""
        for config in configs:
            coverage, _, _ = results[config][name]
            flag = " " if TARGET[0] <= coverage <= TARGET[1] else "*"
            cells += f"  {coverage:14.3f}{flag}"
            if flag == "*":
                misses.append(f"{name} (gap {config[0]}, N={config[1]}): {coverage:.3f}")
        contains = min(results[config][name][1] for config in configs)
        print(f"{name:22s}{cells}  {contains:.3f}")
    print(
        "population values: "
        + "; ".join(
            f"gap {gap}: centroid_gap {t['centroid_gap']:.3f}, pos_neg_overlap "
            f"{t['pos_neg_overlap']:.3f}, matched_overlap {t['matched_overlap']:.3f}"
            for gap, t in truths.items()
        )
    )
    print("outside the target (*): " + ("; ".join(misses) if misses else "none"))


if __name__ == "__main__":
    main()
