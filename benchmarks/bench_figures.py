"""Benchmark of drawing Figures 2 and 3 for three stacked models with N = 100,000 pairs each.

Drawing reads only a report's distributions (N positive and N text-text cosines, and the 200-bin
histogram of the N(N - 1) negatives), so the reports are built directly from sampled cosines: the
all-pairs pass that ``measure_embeddings`` would run at this N is not what is timed here. Prints the
seconds for figure_data on one report and for each stacked figure (target: a few seconds).
Run: python benchmarks/bench_figures.py [--pairs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_modgap.metrics.allpairs import OVERLAP_BINS  # noqa: E402
from pytest_modgap.metrics.report import Distributions, Report  # noqa: E402
from pytest_modgap.reports.figures import EDGES, figure2, figure3, figure_data  # noqa: E402

# (label, matched image-text mean, non-matching mean, matched text-text mean): the paper's three
# panels, CLIP to jina-embeddings-v4, from a wide gap to a closed one.
MODELS = (
    ("OpenAI CLIP-like", 0.30, 0.12, 0.80),
    ("jina-clip-v2-like", 0.45, 0.05, 0.78),
    ("jina-embeddings-v4-like", 0.72, 0.02, 0.76),
)
SPREAD = 0.06


def _overlap(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.minimum(p / p.sum(), q / q.sum()).sum())


def synthetic_report(
    n: int, positive_mean: float, negative_mean: float, text_mean: float, seed: int
) -> Report:
    """A report of n pairs whose cosines follow the given means, with the figure metrics filled in
    from the sampled cosines (the negatives' histogram scaled to all n(n - 1) negatives)."""
    rng = np.random.default_rng(seed)
    positive = np.clip(rng.normal(positive_mean, SPREAD, n), -1.0, 1.0)
    text_text = np.clip(rng.normal(text_mean, SPREAD / 2, n), -1.0, 1.0)
    negatives = np.clip(rng.normal(negative_mean, 2 * SPREAD, 2_000_000), -1.0, 1.0)
    sample_hist, _ = np.histogram(negatives, bins=OVERLAP_BINS, range=(-1.0, 1.0))
    negative_hist = np.round(sample_hist * (n * (n - 1) / negatives.size))
    positive_hist, _ = np.histogram(positive, bins=OVERLAP_BINS, range=(-1.0, 1.0))
    text_hist, _ = np.histogram(text_text, bins=OVERLAP_BINS, range=(-1.0, 1.0))
    centres = (EDGES[:-1] + EDGES[1:]) / 2
    negative_similarity = float((centres * negative_hist).sum() / negative_hist.sum())
    # AUC from the histograms: a positive wins against every negative in a lower bin, ties half.
    below = np.concatenate([[0.0], np.cumsum(negative_hist)[:-1]])
    wins = (positive_hist * (below + negative_hist / 2)).sum()
    metrics = {
        "alignment": float(positive.mean()),
        "negative_similarity": negative_similarity,
        "separation": float(positive.mean()) - negative_similarity,
        "auc": float(wins / (n * negative_hist.sum())),
        "pos_neg_overlap": _overlap(positive_hist, negative_hist),
        "text_text_similarity": float(text_text.mean()),
        "matched_gap": float(text_text.mean() - positive.mean()),
        "matched_overlap": _overlap(positive_hist, text_hist),
    }
    return Report(
        metrics=metrics,
        n=n,
        distributions=Distributions(
            positive=positive, negative_hist=negative_hist, text_text=text_text
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000, help="pairs per model")
    parser.add_argument("--out", type=Path, help="keep the PNGs in this folder")
    args = parser.parse_args()

    reports = [
        (label, synthetic_report(args.pairs, pos, neg, text, seed))
        for seed, (label, pos, neg, text) in enumerate(MODELS)
    ]
    with tempfile.TemporaryDirectory() as temp:
        out = args.out or Path(temp)
        out.mkdir(parents=True, exist_ok=True)
        # The first figure pays matplotlib's import and font cache; time it apart.
        started = time.perf_counter()
        figure3(reports[:1], out / "warmup.png")
        warmup = time.perf_counter() - started

        started = time.perf_counter()
        figure_data(reports[0][1])
        data_seconds = time.perf_counter() - started

        timings = {}
        for name, draw in (("figure2", figure2), ("figure3", figure3)):
            started = time.perf_counter()
            draw(reports, out / f"{name}.png")
            timings[name] = time.perf_counter() - started
        (out / "warmup.png").unlink()

    print(f"pairs per model        : {args.pairs:,} ({len(reports)} models stacked)")
    print(f"first figure (imports) : {warmup:.2f} s")
    print(f"figure_data, one report: {data_seconds:.3f} s")
    for name, seconds in timings.items():
        print(f"{f'{name}, {len(reports)} panels':<23}: {seconds:.2f} s")
    if args.out:
        print(f"figures in {args.out}")


if __name__ == "__main__":
    main()
