"""The metric definitions: modality gap, alignment, separation and cone effect of paired embeddings.

Every metric is a function of *pair weights* c (one weight per pair, c = 1 for the measured set and
multinomial counts for a bootstrap resample), so the point estimate and every resample go through one
formula. Pure torch; no models, files or pytest here.

Notation: x_i, y_i, z_i are the unit-normalised image, text and second-text rows of pair i; N pairs;
W = Σ_i c_i. With weights, a sum over pairs (i, j), i ≠ j, counts c_i·c_j (pairs of distinct pairs only).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_modgap.metrics.allpairs import (
    OVERLAP_BINS,
    CrossModalStats,
    cross_modal_pass,
    histogram_bin,
    uniformity_row_sums,
)
from pytest_modgap.metrics.inputs import PairedEmbeddings

if TYPE_CHECKING:
    import torch

RELATIVE_GAP_FLOOR = 1e-3
"""Schrodi et al. 2025 replace a non-positive matched distance d_m by this value."""

FLOAT32_COSINE_NOISE = 1e-6
"""A d_m this small is float32 rounding of a cosine of 1 (identical modalities) and counts as 0."""

APPROXIMATED_IN_BOOTSTRAP = ("auc", "pos_neg_overlap", "image_uniformity", "text_uniformity")
"""Metrics whose resampled values use the first-order (Hájek) projection of their all-pairs sums;
every other metric is recomputed exactly for each resample."""


@dataclass(frozen=True)
class PairStatistics:
    """Everything the metrics need, computed once (the N² work lives in ``cross``/``*_kernel_rows``)."""

    embeddings: PairedEmbeddings
    positive: torch.Tensor  # cos(x_i, y_i)
    distance: torch.Tensor  # ‖x_i − y_i‖
    text_text: torch.Tensor | None  # cos(y_i, z_i)
    positive_bin: torch.Tensor  # OVERLAP_BINS bin of cos(x_i, y_i)
    text_text_bin: torch.Tensor | None
    cross: CrossModalStats
    image_kernel_rows: torch.Tensor  # Σ_{j≠i} exp(−2‖x_i − x_j‖²)
    text_kernel_rows: torch.Tensor
    group_members: tuple[torch.Tensor, ...]  # index sets of groups with two or more pairs

    @property
    def n(self) -> int:
        return self.embeddings.n


def pair_statistics(
    embeddings: PairedEmbeddings,
    *,
    block_elements: int | None = None,
    exact_auc: bool | None = None,
) -> PairStatistics:
    """Run the per-pair and all-pairs passes over unit-normalised embeddings."""
    import torch

    x, y, z, groups = embeddings.image, embeddings.text, embeddings.text2, embeddings.groups
    positive = (x * y).sum(1)
    text_text = None if z is None else (y * z).sum(1)
    members: tuple[torch.Tensor, ...] = ()
    if groups is not None:
        order = torch.argsort(groups, stable=True)
        counts = torch.bincount(groups)
        members = tuple(chunk for chunk in torch.split(order, counts.tolist()) if chunk.numel() > 1)
    return PairStatistics(
        embeddings=embeddings,
        positive=positive,
        distance=torch.linalg.vector_norm(x - y, dim=1),
        text_text=text_text,
        positive_bin=histogram_bin(positive, OVERLAP_BINS),
        text_text_bin=None if text_text is None else histogram_bin(text_text, OVERLAP_BINS),
        cross=cross_modal_pass(
            x, y, positive, groups, block_elements=block_elements, exact_auc=exact_auc
        ),
        image_kernel_rows=uniformity_row_sums(x, block_elements=block_elements),
        text_kernel_rows=uniformity_row_sums(y, block_elements=block_elements),
        group_members=members,
    )


@dataclass(frozen=True)
class WeightedSums:
    """Sufficient statistics of a batch of B weight vectors c (rows of a (B, N) matrix).

    ``delta`` = c − 1 drives the first-order projections of the all-pairs sums (zero at c = 1).
    """

    stats: PairStatistics
    weights: torch.Tensor  # (B, N) float64
    total: torch.Tensor  # W = Σ c_i
    total_sq: torch.Tensor  # Σ c_i²
    image_sum: torch.Tensor  # Σ c_i x_i, (B, d)
    text_sum: torch.Tensor  # Σ c_i y_i, (B, d)
    delta: torch.Tensor  # (B, N) float32
    computed: dict[str, torch.Tensor] = field(default_factory=dict)


def _memoized(
    function: Callable[[WeightedSums], torch.Tensor],
) -> Callable[[WeightedSums], torch.Tensor]:
    """Metrics that others build on (alignment, cones, ...) are computed once per batch of weights."""

    @functools.wraps(function)
    def cached(sums: WeightedSums) -> torch.Tensor:
        if function.__name__ not in sums.computed:
            sums.computed[function.__name__] = function(sums)
        return sums.computed[function.__name__]

    return cached


def weighted_sums(stats: PairStatistics, weights: torch.Tensor) -> WeightedSums:
    """The (B, N) pair weights reduced to the sums every metric below reads."""
    import torch

    weights = weights.to(torch.float64)
    w32 = weights.float()
    return WeightedSums(
        stats=stats,
        weights=weights,
        total=weights.sum(1),
        total_sq=(weights * weights).sum(1),
        image_sum=(w32 @ stats.embeddings.image).double(),
        text_sum=(w32 @ stats.embeddings.text).double(),
        delta=w32 - 1.0,
    )


def _weighted_mean(sums: WeightedSums, per_pair: torch.Tensor) -> torch.Tensor:
    return (sums.weights @ per_pair.double()) / sums.total


def _weighted_hist(sums: WeightedSums, bins: torch.Tensor) -> torch.Tensor:
    import torch

    hist = torch.zeros(
        sums.weights.shape[0], OVERLAP_BINS, dtype=torch.float64, device=sums.weights.device
    )
    return hist.index_add_(1, bins, sums.weights)


def histogram_overlap(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Σ_k min(p_k, q_k) of two histograms (last axis) after each is scaled to sum to 1.

    1 for identical distributions, 0 for disjoint ones (the shared area under Figures 2 and 3).
    """
    import torch

    p = p / p.sum(-1, keepdim=True)
    q = q / q.sum(-1, keepdim=True)
    return torch.minimum(p, q).sum(-1)


def centroid_gap(sums: WeightedSums) -> torch.Tensor:
    """‖mean_i x_i − mean_i y_i‖₂: the distance between the modality centroids.

    Source: Liang et al. 2022, "Mind the Gap" (NeurIPS), section 4.1. Closed form, O(N·d).
    """
    import torch

    gap: torch.Tensor = torch.linalg.vector_norm(sums.image_sum - sums.text_sum, dim=1)
    return gap / sums.total


def squared_centroid_gap(sums: WeightedSums) -> torch.Tensor:
    """The unbiased estimate of ‖E x − E y‖²: the U-statistic mean_{i≠j} (x_i − y_i)·(x_j − y_j).

    = image_cone + text_cone − 2 · mean_{i≠j} cos(x_i, y_j). The plug-in ‖mean(x) − mean(y)‖² is this
    plus tr(Cov(x − y)) / N, a bias that dominates when the gap is small against its noise; intervals
    of ``centroid_gap`` are read on this scale (see ``INTERVAL_SCALES``). May be negative.
    """
    difference = sums.image_sum - sums.text_sum
    squared_distance = sums.stats.distance.double() ** 2
    same_pair = (sums.weights**2) @ squared_distance
    return ((difference * difference).sum(1) - same_pair) / (sums.total**2 - sums.total_sq)


@dataclass(frozen=True)
class IntervalScale:
    """A metric whose confidence interval is built on another, less biased statistic.

    ``statistic`` gives its value for each row of pair weights; ``to_metric`` maps an end of the
    statistic's interval back to the metric's scale (monotone increasing).
    """

    statistic: Callable[[WeightedSums], torch.Tensor]
    to_metric: Callable[[float], float]


INTERVAL_SCALES: dict[str, IntervalScale] = {
    "centroid_gap": IntervalScale(squared_centroid_gap, lambda value: max(value, 0.0) ** 0.5),
}
"""Metric name -> the scale its interval is read on. The plug-in norm ‖mean(x) − mean(y)‖ is biased
upwards by about tr(Cov(x − y)) / (2N·gap), so for a small gap its bootstrap distribution lies above
the population value (a percentile interval covered a true gap of 0.1 in 0 of 200 simulations at N =
100); the unbiased squared gap has no such bias."""


def interval_key(name: str) -> str:
    """The key under which ``metric_values(..., interval_scales=True)`` returns ``name``'s statistic."""
    return f"{name}@interval-scale"


def pair_distance(sums: WeightedSums) -> torch.Tensor:
    """mean_i ‖x_i − y_i‖₂: the mean distance between matched image and text.

    Source: Schrodi et al. 2025, "Two Effects, One Trigger" (ICLR), the L2I gap measure.
    """
    return _weighted_mean(sums, sums.stats.distance)


@_memoized
def alignment(sums: WeightedSums) -> torch.Tensor:
    """mean_i cos(x_i, y_i): the cross-modal alignment of matched pairs.

    Source: jina-embeddings-v4 (Günther et al. 2025, arXiv 2506.18902), Table 4.
    """
    return _weighted_mean(sums, sums.stats.positive)


def _off_diagonal_mean(sum_vector: torch.Tensor, sums: WeightedSums) -> torch.Tensor:
    # Σ_{i≠j} c_i c_j u_i·u_j = ‖Σ c_i u_i‖² − Σ c_i² (unit rows), over Σ_{i≠j} c_i c_j pairs.
    return ((sum_vector * sum_vector).sum(1) - sums.total_sq) / (sums.total**2 - sums.total_sq)


@_memoized
def image_cone(sums: WeightedSums) -> torch.Tensor:
    """mean_{i≠j} cos(x_i, x_j) = (‖Σ x_i‖² − N) / (N(N − 1)): how narrow the image cone is.

    Source: Liang et al. 2022, "Mind the Gap", the cone effect (section 3). Closed form, O(N·d).
    """
    return _off_diagonal_mean(sums.image_sum, sums)


@_memoized
def text_cone(sums: WeightedSums) -> torch.Tensor:
    """mean_{i≠j} cos(y_i, y_j) = (‖Σ y_i‖² − N) / (N(N − 1)): how narrow the text cone is.

    Source: Liang et al. 2022, "Mind the Gap", the cone effect (section 3). Closed form, O(N·d).
    """
    return _off_diagonal_mean(sums.text_sum, sums)


def relative_gap(sums: WeightedSums) -> torch.Tensor:
    """RMG = d_m / (d_m + (d_II + d_TT) / 2), each d = (1 − mean cosine) / 2.

    d_m over matched pairs (replaced by 1e-3 when ≤ 0, i.e. below float32 rounding), d_II and d_TT over all off-diagonal image /
    image and text / text pairs. Source: Schrodi et al. 2025, "Two Effects, One Trigger", the relative
    modality gap.
    """
    import torch

    d_matched = (1.0 - alignment(sums)) / 2.0
    d_matched = torch.where(
        d_matched <= FLOAT32_COSINE_NOISE, torch.full_like(d_matched, RELATIVE_GAP_FLOOR), d_matched
    )
    d_image = (1.0 - image_cone(sums)) / 2.0
    d_text = (1.0 - text_cone(sums)) / 2.0
    return d_matched / (d_matched + (d_image + d_text) / 2.0)


@_memoized
def negative_similarity(sums: WeightedSums) -> torch.Tensor:
    """mean cos(x_i, y_j) over the negatives: all i ≠ j, and g_i ≠ g_j when groups g are given.

    Closed form: (Σx·Σy − Σ_g Σx_g·Σy_g) / (N² − Σ_g n_g²), where without groups every pair is its own
    group. Source: jina-embeddings-v4, Figure 3 (mean of the non-matching distribution).
    """
    import torch

    stats = sums.stats
    numerator = (sums.image_sum * sums.text_sum).sum(1)
    same_group_pairs = sums.total_sq.clone()
    # Pairs alone in their group (or every pair, without groups) only exclude themselves: c_i² cos(x_i, y_i).
    alone = torch.ones(stats.n, dtype=torch.float64, device=sums.weights.device)
    for members in stats.group_members:
        alone[members] = 0.0
    numerator -= (sums.weights**2) @ (stats.positive.double() * alone)
    x, y = stats.embeddings.image, stats.embeddings.text
    for members in stats.group_members:
        w = sums.weights[:, members]
        wf = w.float()
        numerator -= ((wf @ x[members]).double() * (wf @ y[members]).double()).sum(1)
        same_group_pairs += w.sum(1) ** 2 - (w * w).sum(1)
    return numerator / (sums.total**2 - same_group_pairs)


def separation(sums: WeightedSums) -> torch.Tensor:
    """alignment − negative_similarity: how far matched pairs stand above non-matching ones.

    Source: jina-embeddings-v4, Figure 3 (distance between the two distributions' means).
    """
    return alignment(sums) - negative_similarity(sums)


def _projected(sums: WeightedSums, value: float, influence: torch.Tensor) -> torch.Tensor:
    # First-order (Hájek) projection: value(c) ≈ value + Σ_m (c_m − 1) · influence_m.
    return value + (sums.delta.double() @ influence)


def auc(sums: WeightedSums) -> torch.Tensor:
    """P(cos(x_k, y_k) > cos(x_i, y_j)) + ½ P(equal) over every positive k and negative (i, j).

    The Mann-Whitney U statistic of positives against negatives, exact (rank-based) up to 20,000 pairs and
    from 16,384-bin histograms above. Source: jina-embeddings-v4, Figure 3 (separability of the matched
    and non-matching distributions). Resampled by the first-order projection of the ratio
    Σ c_k c_i c_j [win] / (Σ c_k · Σ c_i c_j).
    """
    cross = sums.stats.cross
    n = sums.stats.n
    value = cross.auc_numerator / (n * cross.negative_count)
    wins = cross.pos_wins + cross.row_wins + cross.col_wins
    pairs = cross.negative_count + n * (cross.row_count + cross.col_count)
    influence = (wins - value * pairs) / (n * cross.negative_count)
    return _projected(sums, value, influence)


def pos_neg_overlap(sums: WeightedSums) -> torch.Tensor:
    """Σ_k min(p_k, q_k), p and q the 200-bin histograms on [−1, 1] of positive and negative cosines.

    Each histogram sums to 1; 0 means the two distributions are fully apart. Source: jina-embeddings-v4,
    Figure 3. The negative histogram of a resample is the first-order projection of Σ c_i c_j [bin].
    """
    import torch

    cross = sums.stats.cross
    positive_hist = _weighted_hist(sums, sums.stats.positive_bin)
    negative_hist = cross.negative_hist[None, :] + sums.delta.double() @ cross.row_col_hist
    return histogram_overlap(positive_hist, torch.clamp(negative_hist, min=0.0))


def _uniformity(sums: WeightedSums, kernel_rows: torch.Tensor) -> torch.Tensor:
    import torch

    n = sums.stats.n
    mean_kernel = float(kernel_rows.sum()) / (n * (n - 1))
    influence = 2.0 * (kernel_rows / (n - 1) - mean_kernel) / n
    projected = _projected(sums, mean_kernel, influence)
    return torch.log(torch.clamp(projected, min=mean_kernel * 1e-6))


def image_uniformity(sums: WeightedSums) -> torch.Tensor:
    """log mean_{i≠j} exp(−2‖x_i − x_j‖²) of the image embeddings (lower: more uniform).

    Source: Wang & Isola 2020, "Understanding Contrastive Representation Learning through Alignment and
    Uniformity on the Hypersphere" (ICML), t = 2. Resampled by the U-statistic's Hájek projection.
    """
    return _uniformity(sums, sums.stats.image_kernel_rows)


def text_uniformity(sums: WeightedSums) -> torch.Tensor:
    """log mean_{i≠j} exp(−2‖y_i − y_j‖²) of the text embeddings (lower: more uniform).

    Source: Wang & Isola 2020 (ICML), t = 2. Resampled by the U-statistic's Hájek projection.
    """
    return _uniformity(sums, sums.stats.text_kernel_rows)


@_memoized
def text_text_similarity(sums: WeightedSums) -> torch.Tensor:
    """mean_i cos(y_i, z_i): how similar two captions of the same image are.

    Source: jina-embeddings-v4, Figure 2 (the matched text-text distribution).
    """
    assert sums.stats.text_text is not None
    return _weighted_mean(sums, sums.stats.text_text)


def matched_gap(sums: WeightedSums) -> torch.Tensor:
    """text_text_similarity − alignment: how much less similar an image is to its caption than two
    captions are to each other. Source: jina-embeddings-v4, Figure 2 (distance between the means).
    """
    return text_text_similarity(sums) - alignment(sums)


def matched_overlap(sums: WeightedSums) -> torch.Tensor:
    """Histogram overlap (200 bins on [−1, 1]) of matched image-text and matched text-text cosines.

    1 when an image is as close to its caption as a second caption is. Source: jina-embeddings-v4,
    Figure 2.
    """
    assert sums.stats.text_text_bin is not None
    return histogram_overlap(
        _weighted_hist(sums, sums.stats.positive_bin),
        _weighted_hist(sums, sums.stats.text_text_bin),
    )


METRIC_FUNCTIONS: dict[str, Callable[[WeightedSums], torch.Tensor]] = {
    "centroid_gap": centroid_gap,
    "pair_distance": pair_distance,
    "relative_gap": relative_gap,
    "alignment": alignment,
    "negative_similarity": negative_similarity,
    "separation": separation,
    "auc": auc,
    "pos_neg_overlap": pos_neg_overlap,
    "image_cone": image_cone,
    "text_cone": text_cone,
    "image_uniformity": image_uniformity,
    "text_uniformity": text_uniformity,
    "text_text_similarity": text_text_similarity,
    "matched_gap": matched_gap,
    "matched_overlap": matched_overlap,
}
"""Metric name -> function of the weighted sums; the names are those of ``catalogue.METRICS``."""


def metric_values(
    stats: PairStatistics, weights: torch.Tensor, *, interval_scales: bool = False
) -> dict[str, torch.Tensor]:
    """Every available metric for each row of ``weights`` (B, N): a (B,) float64 tensor per name.

    With ``interval_scales`` the statistics of ``INTERVAL_SCALES`` come too, under ``interval_key``.
    """
    sums = weighted_sums(stats, weights)
    has_text2 = stats.text_text is not None
    values = {
        name: function(sums)
        for name, function in METRIC_FUNCTIONS.items()
        if has_text2 or name not in ("text_text_similarity", "matched_gap", "matched_overlap")
    }
    if interval_scales:
        values.update(
            {interval_key(name): scale.statistic(sums) for name, scale in INTERVAL_SCALES.items()}
        )
    return values
