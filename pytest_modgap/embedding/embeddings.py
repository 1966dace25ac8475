"""The embeddings of one PairSet: what the pipeline produces and the cache stores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Embeddings:
    """Embeddings of a PairSet: row i of each array belongs to pair i. Always float32 on CPU."""

    image: np.ndarray
    text: np.ndarray
    text2: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.image = np.ascontiguousarray(self.image, dtype=np.float32)
        self.text = np.ascontiguousarray(self.text, dtype=np.float32)
        if self.text2 is not None:
            self.text2 = np.ascontiguousarray(self.text2, dtype=np.float32)
        for name, array in (("image", self.image), ("text", self.text), ("text2", self.text2)):
            if array is None:
                continue
            if array.ndim != 2 or array.shape[0] != self.image.shape[0]:
                raise ValueError(
                    f"Embeddings.{name} has shape {array.shape}; every array must be (N, d) with "
                    f"the N={self.image.shape[0]} rows of Embeddings.image."
                )

    def __len__(self) -> int:
        return int(self.image.shape[0])
