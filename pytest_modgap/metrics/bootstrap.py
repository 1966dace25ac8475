"""Bootstrap over pairs: resample pairs with replacement, recompute every metric, build intervals.

Resamples are multinomial pair weights drawn from one seeded numpy generator (deterministic for a seed)
and evaluated in chunks through ``definitions.metric_values``, so no resample repeats the N² all-pairs
work. Intervals are basic bootstrap intervals (Davison & Hinkley 1997, eq. 5.6): the spread of the
resamples around the estimate, reflected, so a biased estimator's bias is taken out of the interval
instead of being doubled as in the percentile method. Each is read on the metric's interval scale
(``definitions.INTERVAL_SCALES``), clipped to the metric's range, and widened to contain the point
estimate where the estimator's bias exceeds the interval's half-width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from pytest_modgap.errors import ModgapInputError
from pytest_modgap.metrics.catalogue import METRICS
from pytest_modgap.metrics.definitions import (
    INTERVAL_SCALES,
    PairStatistics,
    interval_key,
    metric_values,
)

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
            f"n_boot: is {n_boot}; bootstrap intervals need at least 10 resamples (1,000 is the "
            f"default), or pass ci=None to turn them off."
        )


def evaluate(stats: PairStatistics, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric, and the interval-scale statistics, for each row of the pair ``weights`` (B, N):
    name -> (B,) float64 array."""
    import torch

    tensor = torch.from_numpy(weights.astype(np.float64)).to(stats.embeddings.device)
    values = metric_values(stats, tensor, interval_scales=True)
    return {name: v.detach().cpu().numpy() for name, v in values.items()}


def point_estimates(stats: PairStatistics) -> dict[str, float]:
    """``evaluate`` at weight 1 for every pair: the measured values (and interval-scale statistics)."""
    return {name: float(v[0]) for name, v in evaluate(stats, np.ones((1, stats.n))).items()}


def bootstrap_distributions(
    stats: Sequence[PairStatistics], *, n_boot: int, seed: int
) -> list[dict[str, np.ndarray]]:
    """Every metric of each of ``stats`` (embeddings of the same pairs) on the same ``n_boot``
    resamples of the pairs: one name -> (n_boot,) float64 mapping per entry of ``stats`` (the
    interval-scale statistics included, under ``interval_key``).

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


def basic_interval(estimate: float, replicates: np.ndarray, level: float) -> tuple[float, float]:
    """The basic bootstrap ``level`` interval of ``estimate``, widened to contain it.

    [2θ̂ − q_(1+level)/2, 2θ̂ − q_(1−level)/2] of the resampled values q (Davison & Hinkley 1997,
    eq. 5.6): the distribution of θ* − θ̂ stands in for that of θ̂ − θ, so the interval moves against
    the estimator's bias. Where that bias exceeds the half-width the interval is widened to the
    estimate: an interval always shows the value it belongs to.
    """
    tail = (1.0 - level) / 2.0
    finite = replicates[np.isfinite(replicates)]
    low_quantile, high_quantile = np.quantile(finite, [tail, 1.0 - tail])
    low, high = 2.0 * estimate - float(high_quantile), 2.0 * estimate - float(low_quantile)
    return min(low, estimate), max(high, estimate)


def metric_intervals(
    point: Mapping[str, float], replicates: Mapping[str, np.ndarray], level: float
) -> dict[str, tuple[float, float]]:
    """The reported ``level`` interval of every metric in ``point`` (from ``point_estimates``).

    A metric with an interval scale gets the basic interval of its scale statistic mapped back to
    the metric; every interval is clipped to the metric's range (``MetricInfo.bounds``) and contains
    the point estimate.
    """
    intervals: dict[str, tuple[float, float]] = {}
    for name, estimate in point.items():
        info = METRICS.get(name)
        if info is None:
            continue
        scale = INTERVAL_SCALES.get(name)
        key = interval_key(name)
        if scale is not None and key in point:
            low, high = basic_interval(point[key], replicates[key], level)
            low, high = scale.to_metric(low), scale.to_metric(high)
        else:
            low, high = basic_interval(estimate, replicates[name], level)
        low, high = max(low, info.bounds[0]), min(high, info.bounds[1])
        # Mapped back from its scale or clipped, an interval may have lost the estimate: restore it.
        intervals[name] = (min(low, estimate), max(high, estimate))
    return intervals
