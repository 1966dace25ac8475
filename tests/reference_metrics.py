"""A direct float64 numpy transcription of the metric table in DESIGN.md, pair by pair.

Deliberately naive (full N x N matrices, explicit masks, np.histogram): the metric engine must agree with
it to 1e-4 (histogram overlaps 2e-3). The benchmark times the engine against it.
"""

from __future__ import annotations

import numpy as np

BINS = 200


def _unit(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    # Cosines are in [-1, 1]; rounding can put a duplicate's 1.0 at 1 + 2e-16, which np.histogram drops.
    a, b = np.clip(a, -1.0, 1.0), np.clip(b, -1.0, 1.0)
    p, _ = np.histogram(a, bins=BINS, range=(-1.0, 1.0))
    q, _ = np.histogram(b, bins=BINS, range=(-1.0, 1.0))
    return float(np.minimum(p / p.sum(), q / q.sum()).sum())


def _offdiag_mean(m: np.ndarray) -> float:
    n = m.shape[0]
    return float(m[~np.eye(n, dtype=bool)].mean())


def reference_metrics(
    image: np.ndarray,
    text: np.ndarray,
    text2: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> dict[str, float]:
    """Every metric of the public contract, transcribed literally."""
    x, y = _unit(image), _unit(text)
    n = x.shape[0]
    cross = x @ y.T
    positives = np.diag(cross).copy()
    negative_mask = ~np.eye(n, dtype=bool)
    if groups is not None:
        g = np.asarray(groups)
        negative_mask &= g[:, None] != g[None, :]
    negatives = cross[negative_mask]
    image_gram, text_gram = x @ x.T, y @ y.T
    alignment = float(positives.mean())
    image_cone, text_cone = _offdiag_mean(image_gram), _offdiag_mean(text_gram)

    d_m = (1 - alignment) / 2
    if d_m <= 0:
        d_m = 1e-3
    d_ii, d_tt = (1 - image_cone) / 2, (1 - text_cone) / 2

    order = np.sort(positives)
    greater = len(order) - np.searchsorted(order, negatives, side="right")
    equal = np.searchsorted(order, negatives, side="right") - np.searchsorted(
        order, negatives, side="left"
    )
    auc = float((greater + 0.5 * equal).sum() / (len(positives) * len(negatives)))

    def uniformity(u: np.ndarray) -> float:
        sq = ((u[:, None, :] - u[None, :, :]) ** 2).sum(-1) if len(u) <= 300 else 2 - 2 * u @ u.T
        return float(np.log(_offdiag_mean(np.exp(-2 * sq))))

    out = {
        "centroid_gap": float(np.linalg.norm(x.mean(0) - y.mean(0))),
        "pair_distance": float(np.linalg.norm(x - y, axis=1).mean()),
        "relative_gap": d_m / (d_m + (d_ii + d_tt) / 2),
        "alignment": alignment,
        "negative_similarity": float(negatives.mean()),
        "separation": alignment - float(negatives.mean()),
        "auc": auc,
        "pos_neg_overlap": _overlap(positives, negatives),
        "image_cone": image_cone,
        "text_cone": text_cone,
        "image_uniformity": uniformity(x),
        "text_uniformity": uniformity(y),
    }
    if text2 is not None:
        z = _unit(text2)
        tt = (y * z).sum(1)
        out["text_text_similarity"] = float(tt.mean())
        out["matched_gap"] = float(tt.mean()) - alignment
        out["matched_overlap"] = _overlap(positives, tt)
    return out
