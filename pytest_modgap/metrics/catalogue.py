"""The catalogue of metric names: direction, requirements and source of each (no torch, no numpy).

Baselines, the plugin and the reports read this table; ``definitions.py`` computes the values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["higher", "lower", "none"]

Need = Literal["", "text2", "negatives", "captions", "classes", "five_classes"]
"""What a metric needs beyond matched pairs: a second caption per pair, at least one negative
(a slice whose pairs share one group has none), retrieval over the captions (not asked for with
class-prompt captions), class embeddings for zero-shot classification, at least five classes."""

RECALL_KS = (1, 5, 10)
"""The k of ``i2t_recall@k`` and ``t2i_recall@k`` (clip_benchmark reports 1, 5 and 10)."""


@dataclass(frozen=True)
class MetricInfo:
    """One public metric: what it is, which way is better, and where it comes from."""

    name: str
    better: Direction
    definition: str
    source: str
    bounds: tuple[float, float]
    """The values the metric can take; confidence intervals are clipped to them."""
    needs: Need = ""

    @property
    def needs_text2(self) -> bool:
        """Whether the metric needs a second caption per pair."""
        return self.needs == "text2"


METRICS: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo(
            "centroid_gap",
            "lower",
            "‖mean(x) − mean(y)‖₂",
            "Liang et al. 2022, Mind the Gap",
            bounds=(0.0, 2.0),
        ),
        MetricInfo(
            "pair_distance",
            "lower",
            "mean_i ‖x_i − y_i‖₂",
            "Schrodi et al. 2025 (L2I)",
            bounds=(0.0, 2.0),
        ),
        MetricInfo(
            "relative_gap",
            "lower",
            "d_m / (d_m + (d_II + d_TT)/2), d = (1 − mean cos)/2",
            "Schrodi et al. 2025 (RMG)",
            bounds=(0.0, 1.0),
        ),
        MetricInfo(
            "alignment",
            "higher",
            "mean_i cos(x_i, y_i)",
            "jina-embeddings-v4, Table 4",
            bounds=(-1.0, 1.0),
        ),
        MetricInfo(
            "negative_similarity",
            "lower",
            "mean cos(x_i, y_j) over negatives (i ≠ j, different groups)",
            "jina-embeddings-v4, Figure 3",
            bounds=(-1.0, 1.0),
            needs="negatives",
        ),
        MetricInfo(
            "separation",
            "higher",
            "alignment − negative_similarity",
            "jina-embeddings-v4, Figure 3",
            bounds=(-2.0, 2.0),
            needs="negatives",
        ),
        MetricInfo(
            "auc",
            "higher",
            "P(positive cos > negative cos) + ½ P(equal)",
            "jina-embeddings-v4, Figure 3 (Mann-Whitney)",
            bounds=(0.0, 1.0),
            needs="negatives",
        ),
        MetricInfo(
            "pos_neg_overlap",
            "lower",
            "Σ_k min(p_k, q_k), 200-bin histograms of positive / negative cosines",
            "jina-embeddings-v4, Figure 3",
            bounds=(0.0, 1.0),
            needs="negatives",
        ),
        MetricInfo(
            "image_cone",
            "lower",
            "mean cos(x_i, x_j), i ≠ j",
            "Liang et al. 2022 (cone effect)",
            bounds=(-1.0, 1.0),
        ),
        MetricInfo(
            "text_cone",
            "lower",
            "mean cos(y_i, y_j), i ≠ j",
            "Liang et al. 2022 (cone effect)",
            bounds=(-1.0, 1.0),
        ),
        MetricInfo(
            "image_uniformity",
            "lower",
            "log mean_{i≠j} exp(−2‖x_i − x_j‖²)",
            "Wang & Isola 2020",
            bounds=(-8.0, 0.0),
        ),
        MetricInfo(
            "text_uniformity",
            "lower",
            "log mean_{i≠j} exp(−2‖y_i − y_j‖²)",
            "Wang & Isola 2020",
            bounds=(-8.0, 0.0),
        ),
        MetricInfo(
            "text_text_similarity",
            "none",
            "mean_i cos(y_i, z_i), z = second caption",
            "jina-embeddings-v4, Figure 2",
            bounds=(-1.0, 1.0),
            needs="text2",
        ),
        MetricInfo(
            "matched_gap",
            "lower",
            "text_text_similarity − alignment",
            "jina-embeddings-v4, Figure 2",
            bounds=(-2.0, 2.0),
            needs="text2",
        ),
        MetricInfo(
            "matched_overlap",
            "higher",
            "histogram overlap of matched image-text and matched text-text cosines",
            "jina-embeddings-v4, Figure 2",
            bounds=(0.0, 1.0),
            needs="text2",
        ),
        *(
            MetricInfo(
                f"i2t_recall@{k}",
                "higher",
                f"share of images with any of their captions in their top {k} among all captions "
                f"(ties count against)",
                "clip_benchmark, zero-shot retrieval (text_retrieval_recall)",
                bounds=(0.0, 1.0),
                needs="captions",
            )
            for k in RECALL_KS
        ),
        *(
            MetricInfo(
                f"t2i_recall@{k}",
                "higher",
                f"share of captions whose image is in their top {k} among all images "
                f"(ties count against)",
                "clip_benchmark, zero-shot retrieval (image_retrieval_recall)",
                bounds=(0.0, 1.0),
                needs="captions",
            )
            for k in RECALL_KS
        ),
        MetricInfo(
            "zeroshot_top1",
            "higher",
            "share of images whose class scores highest against the mean prompt-template "
            "embedding per class (ties count against)",
            "Radford et al. 2021 (CLIP) / clip_benchmark, zero-shot classification (acc1)",
            bounds=(0.0, 1.0),
            needs="classes",
        ),
        MetricInfo(
            "zeroshot_top5",
            "higher",
            "share of images whose class is among the 5 highest-scoring classes",
            "Radford et al. 2021 (CLIP) / clip_benchmark, zero-shot classification (acc5)",
            bounds=(0.0, 1.0),
            needs="five_classes",
        ),
        MetricInfo(
            "zeroshot_mean_per_class_recall",
            "higher",
            "mean over classes of the share of their images classified right (top 1)",
            "clip_benchmark, zero-shot classification (mean_per_class_recall)",
            bounds=(0.0, 1.0),
            needs="classes",
        ),
    )
}
"""Every metric ``measure_embeddings`` can report, in report order."""

RETRIEVAL_METRICS = tuple(name for name, info in METRICS.items() if info.needs == "captions")
"""The retrieval recalls, in report order."""
