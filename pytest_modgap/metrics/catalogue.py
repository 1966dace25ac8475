"""The catalogue of metric names: direction, requirements and source of each (no torch, no numpy).

Baselines, the plugin and the reports read this table; ``definitions.py`` computes the values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["higher", "lower", "none"]


@dataclass(frozen=True)
class MetricInfo:
    """One public metric: what it is, which way is better, and where it comes from."""

    name: str
    better: Direction
    definition: str
    source: str
    bounds: tuple[float, float]
    """The values the metric can take; confidence intervals are clipped to them."""
    needs_text2: bool = False


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
        ),
        MetricInfo(
            "separation",
            "higher",
            "alignment − negative_similarity",
            "jina-embeddings-v4, Figure 3",
            bounds=(-2.0, 2.0),
        ),
        MetricInfo(
            "auc",
            "higher",
            "P(positive cos > negative cos) + ½ P(equal)",
            "jina-embeddings-v4, Figure 3 (Mann-Whitney)",
            bounds=(0.0, 1.0),
        ),
        MetricInfo(
            "pos_neg_overlap",
            "lower",
            "Σ_k min(p_k, q_k), 200-bin histograms of positive / negative cosines",
            "jina-embeddings-v4, Figure 3",
            bounds=(0.0, 1.0),
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
            needs_text2=True,
        ),
        MetricInfo(
            "matched_gap",
            "lower",
            "text_text_similarity − alignment",
            "jina-embeddings-v4, Figure 2",
            bounds=(-2.0, 2.0),
            needs_text2=True,
        ),
        MetricInfo(
            "matched_overlap",
            "higher",
            "histogram overlap of matched image-text and matched text-text cosines",
            "jina-embeddings-v4, Figure 2",
            bounds=(0.0, 1.0),
            needs_text2=True,
        ),
    )
}
"""Every metric ``measure_embeddings`` can report, in report order."""
