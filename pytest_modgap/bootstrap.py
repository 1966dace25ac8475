"""Percentile bootstrap over pairs: resample pairs with replacement, recompute every metric, read quantiles.

Resamples are multinomial pair weights drawn from one seeded numpy generator (deterministic for a seed)
and evaluated in chunks through ``metrics.metric_values``, so no resample repeats the N² all-pairs work.
"""

from __future__ import annotations

import numpy as np

from pytest_modgap.metrics import PairStatistics, metric_values

_CHUNK_ELEMENTS = 1 << 22


def resample_weights(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` bootstrap resamples of n pairs as a (count, n) matrix of how often each pair is drawn."""
    draws = rng.integers(0, n, size=(count, n))
    offsets = (np.arange(count) * n)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=count * n).reshape(count, n)


def bootstrap_distribution(
    stats: PairStatistics, *, n_boot: int, seed: int
) -> dict[str, np.ndarray]:
    """The value of every metric on ``n_boot`` resamples of the pairs: name -> (n_boot,) float64."""
    import torch

    n = stats.n
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, _CHUNK_ELEMENTS // n))
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, n_boot, chunk):
        count = min(chunk, n_boot - start)
        weights = torch.from_numpy(resample_weights(n, count, rng).astype(np.float64))
        values = metric_values(stats, weights.to(stats.embeddings.device))
        for name, tensor in values.items():
            parts.setdefault(name, []).append(tensor.detach().cpu().numpy())
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def percentile_interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` interval of the bootstrap samples (percentile method)."""
    tail = (1.0 - level) / 2.0
    finite = samples[np.isfinite(samples)]
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high)


def confidence_intervals(
    stats: PairStatistics, *, level: float, n_boot: int, seed: int
) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap ``level`` intervals for every metric."""
    distribution = bootstrap_distribution(stats, n_boot=n_boot, seed=seed)
    return {name: percentile_interval(values, level) for name, values in distribution.items()}
