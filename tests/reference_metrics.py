"""A direct float64 numpy transcription of the metric table in DESIGN.md, pair by pair.

Deliberately naive (full N x N matrices, explicit masks, np.histogram): the metric engine must agree with
it to 1e-4 (histogram overlaps 2e-3). The benchmark times the engine against it.

Retrieval follows LAION-AI/CLIP_benchmark, clip_benchmark/metrics/zeroshot_retrieval.py: ``evaluate``
builds scores = texts_emb @ images_emb.T and positive_pairs[text, texts_image_index[text]]; its
``recall_at_k`` counts the positives in ``torch.topk(scores, k)`` and the reported recall@k is
``(recall_at_k > 0).float().mean()``, over the texts ("image_retrieval_recall", our t2i) and over
``scores.T``, the images ("text_retrieval_recall", our i2t). torch.topk breaks ties arbitrarily; here
a tie with a wrong candidate counts against the hit. Zero-shot classification follows
clip_benchmark/metrics/zeroshot_classification.py (``zero_shot_classifier``: each template embedding
normalised, the mean per class renormalised; acc1 / acc5 from the top-k; mean_per_class_recall is
sklearn's ``balanced_accuracy_score``).
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


def distinct_rows(u: np.ndarray) -> np.ndarray:
    """The distinct rows of ``u``; all of them when every row is the same one."""
    distinct = np.unique(u, axis=0)
    return u if len(distinct) == 1 else distinct


def retrieval_ranks(
    image: np.ndarray, captions: np.ndarray, caption_image: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(image ranks, caption ranks) by brute force over the full float64 score matrix.

    image rank i: captions of other images scoring >= image i's best own caption; caption rank c:
    images other than c's own scoring >= its own image. A query is a hit at k when its rank < k.
    """
    x = np.asarray(image, dtype=np.float64)
    c = np.asarray(captions, dtype=np.float64)
    n, total = len(x), len(c)
    scores = x @ c.T
    own_mask = caption_image[None, :] == np.arange(n)[:, None]
    own = scores[caption_image, np.arange(total)]
    beats_own = scores >= own[None, :]
    beats_own[own_mask] = False
    best = np.where(own_mask, scores, -np.inf).max(1)
    image_rank = ((scores >= best[:, None]) & ~own_mask).sum(1)
    return image_rank, beats_own.sum(0)


def zeroshot_classifier(class_embeddings: np.ndarray) -> np.ndarray:
    """The OpenAI protocol: normalise each template embedding, average per class, renormalise."""
    e = np.asarray(class_embeddings, dtype=np.float64)
    if e.ndim == 2:
        e = e[:, None, :]
    e = e / np.linalg.norm(e, axis=-1, keepdims=True)
    return _unit(e.mean(1))


def reference_metrics(
    image: np.ndarray,
    text: np.ndarray,
    text2: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    *,
    extra_captions: np.ndarray | None = None,
    extra_caption_image: np.ndarray | None = None,
    retrieval: bool = True,
    class_embeddings: np.ndarray | None = None,
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
    # Within-modality terms over distinct rows (Schrodi et al.'s gap_precompute.py: the distinct
    # class prompts, the distinct images).
    x_rows, y_rows = distinct_rows(x), distinct_rows(y)
    image_gram, text_gram = x_rows @ x_rows.T, y_rows @ y_rows.T
    alignment = float(positives.mean())
    image_cone, text_cone = _offdiag_mean(image_gram), _offdiag_mean(text_gram)

    # d_m = (1 − mean cos) / 2 = mean ‖x − y‖² / 4 for unit rows; floored only when <= 0.
    d_m = float((((x - y) ** 2).sum(1)).mean()) / 4
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
        "image_uniformity": uniformity(x_rows),
        "text_uniformity": uniformity(y_rows),
    }
    if text2 is not None:
        z = _unit(text2)
        tt = (y * z).sum(1)
        out["text_text_similarity"] = float(tt.mean())
        out["matched_gap"] = float(tt.mean()) - alignment
        out["matched_overlap"] = _overlap(positives, tt)
    if retrieval:
        captions, caption_image = y, np.arange(n)
        if extra_captions is not None and extra_caption_image is not None:
            captions = np.vstack([y, _unit(extra_captions)])
            caption_image = np.concatenate([caption_image, np.asarray(extra_caption_image)])
        image_rank, caption_rank = retrieval_ranks(x, captions, caption_image)
        for k in (1, 5, 10):
            out[f"i2t_recall@{k}"] = float((image_rank < k).mean())
        for k in (1, 5, 10):
            out[f"t2i_recall@{k}"] = float((caption_rank < k).mean())
    if class_embeddings is not None and groups is not None:
        classes = zeroshot_classifier(class_embeddings)
        labels = np.asarray(groups)
        logits = x @ classes.T
        own = logits[np.arange(n), labels]
        wrong = np.ones_like(logits, dtype=bool)
        wrong[np.arange(n), labels] = False
        rank = ((logits >= own[:, None]) & wrong).sum(1)
        out["zeroshot_top1"] = float((rank < 1).mean())
        if len(classes) >= 5:
            out["zeroshot_top5"] = float((rank < 5).mean())
        out["zeroshot_mean_per_class_recall"] = float(
            np.mean([(rank[labels == c] < 1).mean() for c in np.unique(labels)])
        )
    return out
