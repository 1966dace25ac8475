"""The embeddings of one PairSet: what the pipeline produces and the cache stores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Embeddings:
    """Embeddings of a PairSet: row i of image, text and text2 belongs to pair i. Always float32
    on CPU. ``extra_text[m]`` embeds a further caption of image ``extra_text_image[m]``;
    ``class_text`` the zero-shot prompts (``PairSet.class_texts``), class-major."""

    image: np.ndarray
    text: np.ndarray
    text2: np.ndarray | None = None
    extra_text: np.ndarray | None = None
    extra_text_image: np.ndarray | None = None
    class_text: np.ndarray | None = None

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
        if (self.extra_text is None) != (self.extra_text_image is None):
            raise ValueError("Embeddings.extra_text and extra_text_image come together.")
        if self.extra_text is not None and self.extra_text_image is not None:
            self.extra_text = np.ascontiguousarray(self.extra_text, dtype=np.float32)
            self.extra_text_image = np.ascontiguousarray(self.extra_text_image, dtype=np.int64)
            if self.extra_text.ndim != 2 or self.extra_text_image.shape != (
                self.extra_text.shape[0],
            ):
                raise ValueError(
                    f"Embeddings.extra_text has shape {self.extra_text.shape} and "
                    f"extra_text_image {self.extra_text_image.shape}; expected (M, d) and (M,)."
                )
        if self.class_text is not None:
            self.class_text = np.ascontiguousarray(self.class_text, dtype=np.float32)

    def __len__(self) -> int:
        return int(self.image.shape[0])
