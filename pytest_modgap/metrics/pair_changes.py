"""Which pairs got worse between two models' vectors of the same pairs: matched similarity, the
retrieval rank of the true caption (and image), and zero-shot answers that flipped.

Pure numpy, blockwise (memory O(block · N)): the lists a failing baseline check prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pytest_modgap.metrics.measured import MeasuredPairs

_BLOCK_ROWS = 1024


@dataclass(frozen=True)
class PairChange:
    """One pair (or caption) that got worse: ``before`` in the baseline, ``after`` in this run."""

    index: int
    name: str
    caption: str
    before: float
    after: float
    detail: str = ""

    @property
    def change(self) -> float:
        return self.after - self.before

    def to_dict(self) -> dict[str, Any]:
        return {
            "pair": self.index,
            "image": self.name,
            "caption": self.caption,
            "before": self.before,
            "after": self.after,
            "change": self.change,
            **({"detail": self.detail} if self.detail else {}),
        }


@dataclass(frozen=True)
class PairChanges:
    """The pairs that got worse, worst first, in each of four views (at most ``limit`` each)."""

    similarity: tuple[PairChange, ...]
    """Matched cosine cos(x_i, y_i) dropped most."""
    image_rank: tuple[PairChange, ...]
    """Image to text: the rank of the image's best true caption among all captions rose most."""
    caption_rank: tuple[PairChange, ...]
    """Text to image: the rank of the caption's image among all images rose most."""
    zeroshot_flips: tuple[PairChange, ...]
    """Zero-shot: right in the baseline, wrong now (1 -> 0)."""
    thumbnails: Mapping[int, str] = field(default_factory=dict)
    """Pair index -> a ``data:image/png;base64,...`` picture of its image (those that could be
    read again), for the HTML lists."""

    def sections(self) -> list[tuple[str, tuple[PairChange, ...]]]:
        """(title, changes) of each non-empty view, for text and HTML."""
        titled = [
            ("matched similarity dropped most (cos(image, caption))", self.similarity),
            ("image to text: true caption fell furthest in rank (0 = first)", self.image_rank),
            ("text to image: true image fell furthest in rank (0 = first)", self.caption_rank),
            ("zero-shot: right before, wrong now", self.zeroshot_flips),
        ]
        return [(title, changes) for title, changes in titled if changes]

    def limited(self, limit: int) -> PairChanges:
        return replace(
            self,
            similarity=self.similarity[:limit],
            image_rank=self.image_rank[:limit],
            caption_rank=self.caption_rank[:limit],
            zeroshot_flips=self.zeroshot_flips[:limit],
        )

    def indices(self) -> list[int]:
        """Every listed pair once, in order of first appearance."""
        views = (self.similarity, self.image_rank, self.caption_rank, self.zeroshot_flips)
        return list(dict.fromkeys(change.index for view in views for change in view))

    def to_dict(self) -> dict[str, Any]:
        def listed(changes: tuple[PairChange, ...]) -> list[dict[str, Any]]:
            return [
                {**change.to_dict(), **_picture(self.thumbnails.get(change.index))}
                for change in changes
            ]

        return {
            "similarity": listed(self.similarity),
            "image_rank": listed(self.image_rank),
            "caption_rank": listed(self.caption_rank),
            "zeroshot_flips": listed(self.zeroshot_flips),
        }


def _picture(uri: str | None) -> dict[str, str]:
    return {} if uri is None else {"thumbnail": uri}


def pair_changes(
    candidate: MeasuredPairs, reference: MeasuredPairs, *, limit: int = 20
) -> PairChanges:
    """The pairs of ``candidate`` that got worse against ``reference`` (the same pairs, row for
    row), ``limit`` per view, worst first; ties keep the pairs' order."""
    before_cos = _matched_cosine(reference)
    after_cos = _matched_cosine(candidate)

    def listed(before: np.ndarray, after: np.ndarray, worse: np.ndarray) -> tuple[PairChange, ...]:
        order = np.argsort(-worse, kind="stable")
        chosen = [int(i) for i in order[:limit] if worse[i] > 0]
        return tuple(_change(candidate, i, float(before[i]), float(after[i])) for i in chosen)

    similarity = listed(before_cos, after_cos, before_cos - after_cos)
    image_rank: tuple[PairChange, ...] = ()
    caption_rank: tuple[PairChange, ...] = ()
    if candidate.retrieval:
        before_i, after_i = _image_to_text_rank(reference), _image_to_text_rank(candidate)
        image_rank = listed(before_i, after_i, after_i - before_i)
        before_t, after_t = _text_to_image_rank(reference), _text_to_image_rank(candidate)
        caption_rank = listed(before_t, after_t, after_t - before_t)
    flips: tuple[PairChange, ...] = ()
    if candidate.class_embeddings is not None and reference.class_embeddings is not None:
        right_before, _ = _zeroshot(reference)
        right_after, predicted = _zeroshot(candidate)
        flipped = (right_before & ~right_after).astype(np.float64)
        names = candidate.class_names
        flips = tuple(
            _change(
                candidate,
                int(i),
                1.0,
                0.0,
                detail=f"now predicted {names[predicted[i]] if names else predicted[i]}",
            )
            for i in np.flatnonzero(flipped)[:limit]
        )
    return PairChanges(similarity, image_rank, caption_rank, flips)


def _change(pairs: MeasuredPairs, index: int, before: float, after: float, **kw: Any) -> PairChange:
    return PairChange(index, pairs.pair_names[index], pairs.captions[index], before, after, **kw)


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    scale = np.abs(rows).max(axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    rows = rows / scale
    unit: np.ndarray = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return unit


def _matched_cosine(pairs: MeasuredPairs) -> np.ndarray:
    cosine: np.ndarray = np.einsum(
        "ij,ij->i", _unit(pairs.image), _unit(pairs.text), dtype=np.float64
    )
    return cosine


def _captions(pairs: MeasuredPairs) -> tuple[np.ndarray, np.ndarray]:
    """Every caption's unit vector and the image it describes (first captions, then the rest)."""
    texts = _unit(pairs.text)
    owners = np.arange(pairs.n)
    if pairs.extra_text is not None and pairs.extra_text_image is not None:
        texts = np.concatenate([texts, _unit(pairs.extra_text)])
        owners = np.concatenate([owners, np.asarray(pairs.extra_text_image, dtype=np.int64)])
    return texts, owners


def _image_to_text_rank(pairs: MeasuredPairs) -> np.ndarray:
    """Per image, how many wrong captions score at least as high as its best true caption (the
    clip_benchmark protocol: ties count against the hit)."""
    images = _unit(pairs.image)
    texts, owners = _captions(pairs)
    ranks = np.empty(pairs.n, dtype=np.float64)
    for start in range(0, pairs.n, _BLOCK_ROWS):
        scores = images[start : start + _BLOCK_ROWS] @ texts.T
        rows = np.arange(scores.shape[0])
        own = owners[None, :] == (start + rows)[:, None]
        best = np.where(own, scores, -np.inf).max(axis=1)
        ranks[start : start + scores.shape[0]] = ((scores >= best[:, None]) & ~own).sum(axis=1)
    return ranks


def _text_to_image_rank(pairs: MeasuredPairs) -> np.ndarray:
    """Per first caption, how many other images score at least as high as its own image."""
    images = _unit(pairs.image)
    texts = _unit(pairs.text)
    ranks = np.empty(pairs.n, dtype=np.float64)
    for start in range(0, pairs.n, _BLOCK_ROWS):
        scores = texts[start : start + _BLOCK_ROWS] @ images.T
        rows = np.arange(scores.shape[0])
        own = scores[rows, start + rows]
        beaten = (scores >= own[:, None]).sum(axis=1) - 1
        ranks[start : start + scores.shape[0]] = beaten
    return ranks


def _zeroshot(pairs: MeasuredPairs) -> tuple[np.ndarray, np.ndarray]:
    """Per image: whether the class of the best mean-prompt embedding is its own, and that class."""
    assert pairs.class_embeddings is not None and pairs.groups is not None
    prompts = np.asarray(pairs.class_embeddings, dtype=np.float64)
    if prompts.ndim == 2:
        prompts = prompts[:, None, :]
    classes = _unit(
        _unit(prompts.reshape(-1, prompts.shape[-1])).reshape(prompts.shape).mean(axis=1)
    )
    predicted = np.argmax(_unit(pairs.image) @ classes.T, axis=1)
    return predicted == np.asarray(pairs.groups), predicted
