"""The vectors a report was measured from, and which pairs they are: what a baseline snapshot keeps
and what a paired check against it compares."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class MeasuredPairs:
    """The embeddings of one measured sample, with the identity and names of its pairs.

    ``image``, ``text`` (N, d): row i of each is pair i (``text`` its first caption); ``text2``
    its second caption; ``groups`` its class index; ``extra_text`` (M, d) the further captions of
    images ``extra_text_image`` (M,); ``class_embeddings`` (C, T, d) the zero-shot prompts;
    ``slices`` a label per pair; ``retrieval`` False for class-prompt captions (as
    ``measure_embeddings`` takes them). ``pair_ids`` (N, 16) uint8: a content hash of each pair
    (image bytes and captions), so two samples are the same pairs only when every row matches;
    ``pair_names`` where each pair's image came from (a path or an id) and ``captions`` its first
    caption, for the lists of pairs that got worse; ``class_names`` the classes ``groups`` index.
    """

    image: np.ndarray
    text: np.ndarray
    identities: np.ndarray | Callable[[], np.ndarray] = field(repr=False)
    """``pair_ids``, or what computes them on first use (they read every image again, which only
    a snapshot needs)."""
    pair_names: Sequence[str]
    captions: Sequence[str]
    text2: np.ndarray | None = None
    groups: np.ndarray | None = None
    extra_text: np.ndarray | None = None
    extra_text_image: np.ndarray | None = None
    class_embeddings: np.ndarray | None = None
    class_names: Sequence[str] | None = None
    slices: Sequence[str] | None = None
    retrieval: bool = True
    thumbnail: Callable[[int], bytes | None] | None = field(default=None, repr=False)
    """PNG bytes of a small picture of pair i's image, for the lists of pairs that got worse (None
    when the image cannot be read again); None for vectors without their images (a snapshot)."""

    @property
    def pair_ids(self) -> np.ndarray:
        """(N, 16) uint8: each pair's content hash, computed once."""
        found: np.ndarray | None = self.__dict__.get("_pair_ids")
        if found is None:
            found = self.identities() if callable(self.identities) else self.identities
            object.__setattr__(self, "_pair_ids", found)
        return found

    @property
    def n(self) -> int:
        return int(self.image.shape[0])

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments (after image and text) of ``checked_statistics``."""
        return {
            "text2": self.text2,
            "groups": self.groups,
            "extra_captions": self.extra_text,
            "extra_caption_image": self.extra_text_image,
            "class_embeddings": self.class_embeddings,
            "retrieval": self.retrieval,
        }
