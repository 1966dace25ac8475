"""The metric definitions: modality gap, alignment, separation, cone effect, retrieval and zero-shot
classification of paired embeddings.

Every metric is a function of *pair weights* c (one weight per pair, c = 1 for the measured set and
multinomial counts for a bootstrap resample), so the point estimate and every resample go through one
formula. Pure torch; no models, files or pytest here.

Notation: x_i, y_i, z_i are the unit-normalised image, text and second-text rows of pair i; N pairs;
W = Σ_i c_i. With weights, a sum over pairs (i, j), i ≠ j, counts c_i·c_j (pairs of distinct pairs only).
The within-modality terms (cones, uniformities, RMG's d_II and d_TT) run over a modality's *distinct*
rows: class-prompt data, where every image of a class has the same caption, would otherwise count
identical texts as pairs of cosine 1 (Schrodi et al.'s gap_precompute.py takes the distinct prompts).
A distinct row's weight is the mean weight of the pairs that carry it (1 for the measured set).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_modgap.metrics.allpairs import (
    OVERLAP_BINS,
    CrossModalStats,
    RetrievalRanks,
    class_ranks,
    cross_modal_pass,
    histogram_bin,
    uniformity_row_sums,
)
from pytest_modgap.metrics.catalogue import METRICS, RECALL_KS, RETRIEVAL_METRICS
from pytest_modgap.metrics.inputs import PairedEmbeddings

if TYPE_CHECKING:
    import torch

RELATIVE_GAP_FLOOR = 1e-3
"""Schrodi et al. 2025 replace a matched distance d_m <= 0 by this value (gap_precompute.py,
``torch.where(d_m > 0, d_m, 1e-3)``)."""

APPROXIMATED_IN_BOOTSTRAP = (
    "auc",
    "pos_neg_overlap",
    "image_uniformity",
    "text_uniformity",
    *RETRIEVAL_METRICS,
)
"""Metrics whose resampled values are not recomputed from scratch: the first-order (Hájek)
projection of their all-pairs sums, and for retrieval each query's hit against the whole measured
gallery (the queries are resampled, their ranks are not recomputed among the resampled images);
every other metric is recomputed exactly for each resample."""


@dataclass(frozen=True)
class WithinModality:
    """The rows one modality's within-modality terms run over: its distinct unit rows.

    ``inverse[i]`` is pair i's row in ``unit`` and ``counts[r]`` the pairs that carry row r; both are
    None when every row is distinct, or when all rows are one (then the pairs' own rows are used, so
    the cone is 1 and the uniformity 0). ``kernel_rows[r]`` = Σ_{s≠r} exp(−2‖u_r − u_s‖²).
    """

    unit: torch.Tensor
    kernel_rows: torch.Tensor
    inverse: torch.Tensor | None = None
    counts: torch.Tensor | None = None


def within_modality(unit: torch.Tensor, *, block_elements: int | None = None) -> WithinModality:
    """The distinct rows of ``unit`` (exactly equal float32 rows are one) and their kernel sums."""
    import torch

    distinct, inverse, counts = torch.unique(unit, dim=0, return_inverse=True, return_counts=True)
    if distinct.shape[0] in (unit.shape[0], 1):
        return WithinModality(unit, uniformity_row_sums(unit, block_elements=block_elements))
    return WithinModality(
        distinct,
        uniformity_row_sums(distinct, block_elements=block_elements),
        inverse,
        counts.to(torch.float64),
    )


@dataclass(frozen=True)
class RetrievalStats:
    """Per image, the retrieval hits at k = 1, 5, 10 (columns): ``image_hits`` 1 when the image
    finds one of its captions, ``caption_hits`` how many of its captions find it, of ``captions``."""

    image_hits: torch.Tensor
    caption_hits: torch.Tensor
    captions: torch.Tensor


def retrieval_stats(ranks: RetrievalRanks, n: int) -> RetrievalStats:
    """Hits from ranks: a query is a hit at k when fewer than k wrong candidates tie or beat it."""
    import torch

    ks = torch.tensor(RECALL_KS, device=ranks.image_rank.device)
    caption_hit = (ranks.caption_rank[:, None] < ks).double()
    caption_hits = torch.zeros(n, len(RECALL_KS), dtype=torch.float64, device=ks.device)
    return RetrievalStats(
        image_hits=(ranks.image_rank[:, None] < ks).double(),
        caption_hits=caption_hits.index_add_(0, ranks.caption_image, caption_hit),
        captions=torch.bincount(ranks.caption_image, minlength=n).double(),
    )


@dataclass(frozen=True)
class ZeroShotStats:
    """Per image, whether its class is among the top 1 / top 5 (columns of ``correct``; ties count
    against it), its class index ``labels`` and the number of classes."""

    correct: torch.Tensor
    labels: torch.Tensor
    n_classes: int


@dataclass(frozen=True)
class PairStatistics:
    """Everything the metrics need, computed once (the N² work lives in ``cross``/``*_kernel_rows``)."""

    embeddings: PairedEmbeddings
    positive: torch.Tensor  # cos(x_i, y_i)
    distance: torch.Tensor  # ‖x_i − y_i‖
    squared_distance: torch.Tensor  # ‖x_i − y_i‖² in float64 (0 exactly for identical rows)
    text_text: torch.Tensor | None  # cos(y_i, z_i)
    positive_bin: torch.Tensor  # OVERLAP_BINS bin of cos(x_i, y_i)
    text_text_bin: torch.Tensor | None
    cross: CrossModalStats
    image_within: WithinModality
    text_within: WithinModality
    group_members: tuple[torch.Tensor, ...]  # index sets of groups with two or more pairs
    retrieval: RetrievalStats | None = None
    zeroshot: ZeroShotStats | None = None

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
    cross = cross_modal_pass(
        x,
        y,
        positive,
        groups,
        extra_captions=embeddings.extra_captions,
        extra_caption_image=embeddings.extra_caption_image,
        ranks=embeddings.retrieval,
        block_elements=block_elements,
        exact_auc=exact_auc,
    )
    zeroshot = None
    if embeddings.classes is not None and embeddings.labels is not None:
        ranks = class_ranks(x, embeddings.classes, embeddings.labels, block_elements=block_elements)
        zeroshot = ZeroShotStats(
            correct=torch.stack([ranks < 1, ranks < 5], 1).double(),
            labels=embeddings.labels,
            n_classes=int(embeddings.classes.shape[0]),
        )
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
        squared_distance=(x.double() - y.double()).square_().sum(1),
        text_text=text_text,
        positive_bin=histogram_bin(positive, OVERLAP_BINS),
        text_text_bin=None if text_text is None else histogram_bin(text_text, OVERLAP_BINS),
        cross=cross,
        image_within=within_modality(x, block_elements=block_elements),
        text_within=within_modality(y, block_elements=block_elements),
        group_members=members,
        retrieval=None if cross.ranks is None else retrieval_stats(cross.ranks, embeddings.n),
        zeroshot=zeroshot,
    )


@dataclass(frozen=True)
class WithinSums:
    """The weighted sums of one modality's distinct rows (see ``WithinModality``): Σ e_r u_r,
    E = Σ e_r, Σ e_r², and e − 1 for the Hájek projections, e the rows' weights."""

    vector_sum: torch.Tensor
    total: torch.Tensor
    total_sq: torch.Tensor
    delta: torch.Tensor


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
    image_within: WithinSums
    text_within: WithinSums
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
    total, total_sq, delta = weights.sum(1), (weights * weights).sum(1), w32 - 1.0
    image_sum = (w32 @ stats.embeddings.image).double()
    text_sum = (w32 @ stats.embeddings.text).double()
    pair_level = (total, total_sq, delta)
    return WeightedSums(
        stats=stats,
        weights=weights,
        total=total,
        total_sq=total_sq,
        image_sum=image_sum,
        text_sum=text_sum,
        delta=delta,
        image_within=_within_sums(stats.image_within, weights, image_sum, pair_level),
        text_within=_within_sums(stats.text_within, weights, text_sum, pair_level),
    )


def _within_sums(
    within: WithinModality,
    weights: torch.Tensor,
    pair_sum: torch.Tensor,
    pair_level: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> WithinSums:
    """The distinct rows' sums; the pairs' own when every row is distinct (the same numbers)."""
    import torch

    if within.inverse is None or within.counts is None:
        return WithinSums(pair_sum, *pair_level)
    rows = torch.zeros(
        weights.shape[0], within.unit.shape[0], dtype=torch.float64, device=weights.device
    )
    rows.index_add_(1, within.inverse, weights).div_(within.counts)
    return WithinSums(
        vector_sum=(rows.float() @ within.unit).double(),
        total=rows.sum(1),
        total_sq=(rows * rows).sum(1),
        delta=(rows - 1.0).float(),
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

    = mean_{i≠j} cos(x_i, x_j) + mean_{i≠j} cos(y_i, y_j) − 2 · mean_{i≠j} cos(x_i, y_j), over pairs
    (the cones over distinct rows equal those terms when no row repeats). The plug-in ‖mean(x) − mean(y)‖² is this
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


def _off_diagonal_mean(within: WithinSums) -> torch.Tensor:
    # Σ_{r≠s} e_r e_s u_r·u_s = ‖Σ e_r u_r‖² − Σ e_r² (unit rows), over Σ_{r≠s} e_r e_s pairs.
    vector = within.vector_sum
    return ((vector * vector).sum(1) - within.total_sq) / (within.total**2 - within.total_sq)


@_memoized
def image_cone(sums: WeightedSums) -> torch.Tensor:
    """mean_{r≠s} cos(u_r, u_s) over the distinct image rows u = (‖Σ u_r‖² − R) / (R(R − 1)): how
    narrow the image cone is. Source: Liang et al. 2022, "Mind the Gap", the cone effect (section 3).
    Closed form, O(N·d).
    """
    return _off_diagonal_mean(sums.image_within)


@_memoized
def text_cone(sums: WeightedSums) -> torch.Tensor:
    """mean_{r≠s} cos(u_r, u_s) over the distinct text rows: how narrow the text cone is (a class
    prompt shared by many pairs counts once). Source: Liang et al. 2022, "Mind the Gap", the cone
    effect (section 3). Closed form, O(N·d).
    """
    return _off_diagonal_mean(sums.text_within)


def relative_gap(sums: WeightedSums) -> torch.Tensor:
    """RMG = d_m / (d_m + (d_II + d_TT) / 2), each d = (1 − mean cosine) / 2.

    d_m over matched pairs, replaced by 1e-3 only when it is <= 0 (Schrodi's gap_precompute.py);
    d_II and d_TT over all pairs of distinct image / text rows (the cones). d_m is computed as
    mean_i ‖x_i − y_i‖² / 4 in float64, which equals (1 − cos) / 2 for unit rows but is exactly 0
    for identical rows: from float32 cosines, rounding would leave identical modalities a d_m of
    about ±1e-8 and decide the floor by chance. Source: Schrodi et al. 2025, "Two Effects, One
    Trigger" (ICLR), the relative modality gap.
    """
    import torch

    d_matched = _weighted_mean(sums, sums.stats.squared_distance) / 4.0
    d_matched = torch.where(
        d_matched > 0.0, d_matched, torch.full_like(d_matched, RELATIVE_GAP_FLOOR)
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


def _uniformity(within: WithinSums, kernel_rows: torch.Tensor) -> torch.Tensor:
    import torch

    rows = int(kernel_rows.shape[0])
    mean_kernel = float(kernel_rows.sum()) / (rows * (rows - 1))
    influence = 2.0 * (kernel_rows / (rows - 1) - mean_kernel) / rows
    # First-order (Hájek) projection over the rows' weights e: value + Σ_r (e_r − 1) · influence_r.
    projected = mean_kernel + within.delta.double() @ influence
    return torch.log(torch.clamp(projected, min=mean_kernel * 1e-6))


def image_uniformity(sums: WeightedSums) -> torch.Tensor:
    """log mean_{r≠s} exp(−2‖u_r − u_s‖²) over the distinct image rows (lower: more uniform).

    Source: Wang & Isola 2020, "Understanding Contrastive Representation Learning through Alignment and
    Uniformity on the Hypersphere" (ICML), t = 2. Resampled by the U-statistic's Hájek projection.
    """
    return _uniformity(sums.image_within, sums.stats.image_within.kernel_rows)


def text_uniformity(sums: WeightedSums) -> torch.Tensor:
    """log mean_{r≠s} exp(−2‖u_r − u_s‖²) over the distinct text rows (lower: more uniform).

    Source: Wang & Isola 2020 (ICML), t = 2. Resampled by the U-statistic's Hájek projection.
    """
    return _uniformity(sums.text_within, sums.stats.text_within.kernel_rows)


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


def _image_to_text_recall(column: int) -> Callable[[WeightedSums], torch.Tensor]:
    k = RECALL_KS[column]

    def recall(sums: WeightedSums) -> torch.Tensor:
        assert sums.stats.retrieval is not None
        return _weighted_mean(sums, sums.stats.retrieval.image_hits[:, column])

    recall.__doc__ = f"""Share of images with one of their captions among their top {k} of all
    captions (a caption of another image scoring as high counts against the hit).

    Source: clip_benchmark's zero-shot retrieval ("text_retrieval_recall@{k}"). Resampled over
    the images with each image's hit from the whole measured gallery."""
    return recall


def _text_to_image_recall(column: int) -> Callable[[WeightedSums], torch.Tensor]:
    k = RECALL_KS[column]

    def recall(sums: WeightedSums) -> torch.Tensor:
        retrieval = sums.stats.retrieval
        assert retrieval is not None
        hits = sums.weights @ retrieval.caption_hits[:, column]
        return hits / (sums.weights @ retrieval.captions)

    recall.__doc__ = f"""Share of captions whose image is among their top {k} of all images (another
    image scoring as high counts against the hit); a caption's weight is its image's.

    Source: clip_benchmark's zero-shot retrieval ("image_retrieval_recall@{k}")."""
    return recall


def _zeroshot_top(column: int) -> Callable[[WeightedSums], torch.Tensor]:
    k = (1, 5)[column]

    def accuracy(sums: WeightedSums) -> torch.Tensor:
        assert sums.stats.zeroshot is not None
        return _weighted_mean(sums, sums.stats.zeroshot.correct[:, column])

    accuracy.__doc__ = f"""Share of images whose class is among the top {k} of the zero-shot
    classifier (the mean normalised prompt-template embedding of each class, renormalised; a
    wrong class scoring as high counts against). Source: Radford et al. 2021 (CLIP), the OpenAI
    prompt ensembling protocol as clip_benchmark runs it."""
    return accuracy


def zeroshot_mean_per_class_recall(sums: WeightedSums) -> torch.Tensor:
    """mean over the classes present of the share of their images classified right at top 1
    (balanced accuracy). Source: clip_benchmark, ``balanced_accuracy_score(target, pred)``; a
    class no resampled image belongs to drops out of that resample's mean, as sklearn's does.
    """
    import torch

    zeroshot = sums.stats.zeroshot
    assert zeroshot is not None
    shape = (sums.weights.shape[0], zeroshot.n_classes)
    images = torch.zeros(shape, dtype=torch.float64, device=sums.weights.device)
    images.index_add_(1, zeroshot.labels, sums.weights)
    right = torch.zeros_like(images).index_add_(
        1, zeroshot.labels, sums.weights * zeroshot.correct[:, 0]
    )
    present = images > 0
    recall = torch.where(present, right / images.clamp(min=1e-300), torch.zeros_like(right))
    return recall.sum(1) / present.sum(1)


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
    **{f"i2t_recall@{k}": _image_to_text_recall(column) for column, k in enumerate(RECALL_KS)},
    **{f"t2i_recall@{k}": _text_to_image_recall(column) for column, k in enumerate(RECALL_KS)},
    "zeroshot_top1": _zeroshot_top(0),
    "zeroshot_top5": _zeroshot_top(1),
    "zeroshot_mean_per_class_recall": zeroshot_mean_per_class_recall,
}
"""Metric name -> function of the weighted sums; the names are those of ``catalogue.METRICS``."""


def available(name: str, stats: PairStatistics) -> bool:
    """Whether ``stats`` hold what metric ``name`` needs (``MetricInfo.needs``)."""
    needs = METRICS[name].needs
    if needs == "text2":
        return stats.text_text is not None
    if needs == "captions":
        return stats.retrieval is not None
    if needs == "classes":
        return stats.zeroshot is not None
    if needs == "five_classes":
        return stats.zeroshot is not None and stats.zeroshot.n_classes >= 5
    if needs == "negatives":
        return stats.cross.negative_count > 0
    return True


def metric_values(
    stats: PairStatistics, weights: torch.Tensor, *, interval_scales: bool = False
) -> dict[str, torch.Tensor]:
    """Every available metric for each row of ``weights`` (B, N): a (B,) float64 tensor per name.

    With ``interval_scales`` the statistics of ``INTERVAL_SCALES`` come too, under ``interval_key``.
    """
    sums = weighted_sums(stats, weights)
    values = {
        name: function(sums)
        for name, function in METRIC_FUNCTIONS.items()
        if available(name, stats)
    }
    if interval_scales:
        values.update(
            {interval_key(name): scale.statistic(sums) for name, scale in INTERVAL_SCALES.items()}
        )
    return values
