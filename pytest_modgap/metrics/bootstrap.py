"""Percentile bootstrap over pairs: resample pairs with replacement, recompute every metric, read quantiles.

Resamples are multinomial pair weights drawn from one seeded numpy generator (deterministic for a seed)
and evaluated in chunks through ``metrics.metric_values``, so no resample repeats the N² all-pairs work.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pytest_modgap.errors import ModgapInputError
from pytest_modgap.metrics.definitions import PairStatistics, metric_values

_CHUNK_ELEMENTS = 1 << 22


def resample_weights(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` bootstrap resamples of n pairs as a (count, n) matrix of how often each pair is drawn."""
    draws = rng.integers(0, n, size=(count, n))
    offsets = (np.arange(count) * n)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=count * n).reshape(count, n)


def check_interval_options(ci: float | None, n_boot: int) -> None:
    """A ModgapInputError for an interval level outside (0, 1) or too few resamples."""
    if ci is not None and not 0.0 < ci < 1.0:
        raise ModgapInputError(
            f"ci: is {ci!r}; expected the interval level as a fraction in (0, 1), e.g. 0.95, "
            f"or None to turn intervals off."
        )
    if ci is not None and n_boot < 10:
        raise ModgapInputError(
            f"n_boot: is {n_boot}; percentile intervals need at least 10 resamples (1,000 is the "
            f"default), or pass ci=None to turn them off."
        )


def evaluate(stats: PairStatistics, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric for each row of the pair ``weights`` (B, N): name -> (B,) float64 array."""
    import torch

    tensor = torch.from_numpy(weights.astype(np.float64)).to(stats.embeddings.device)
    return {name: v.detach().cpu().numpy() for name, v in metric_values(stats, tensor).items()}


def bootstrap_distributions(
    stats: Sequence[PairStatistics], *, n_boot: int, seed: int
) -> list[dict[str, np.ndarray]]:
    """Every metric of each of ``stats`` (embeddings of the same pairs) on the same ``n_boot``
    resamples of the pairs: one name -> (n_boot,) float64 mapping per entry of ``stats``.

    One set of embeddings gives the ordinary bootstrap; two give the paired one that compares a
    candidate with a reference model.
    """
    n = stats[0].n
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, _CHUNK_ELEMENTS // n))
    parts: list[dict[str, list[np.ndarray]]] = [{} for _ in stats]
    for start in range(0, n_boot, chunk):
        weights = resample_weights(n, min(chunk, n_boot - start), rng)
        for one, collected in zip(stats, parts, strict=True):
            for name, values in evaluate(one, weights).items():
                collected.setdefault(name, []).append(values)
    return [{name: np.concatenate(v) for name, v in part.items()} for part in parts]


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
    (distribution,) = bootstrap_distributions([stats], n_boot=n_boot, seed=seed)
    return {name: percentile_interval(values, level) for name, values in distribution.items()}
