"""Synthetic paired embeddings with a known modality gap, shared by the report and compare tests."""

from __future__ import annotations

import numpy as np


def paired_embeddings(
    n: int = 300, d: int = 32, *, gap: float = 1.0, noise: float = 1.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, text, text2): a shared signal per pair plus noise, the modalities pushed apart by
    ``gap`` along the first axis (two cones, as in a CLIP model); text and text2 share a side."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, d))
    image = base + noise * rng.normal(size=(n, d))
    text = base + noise * rng.normal(size=(n, d))
    text2 = base + noise * rng.normal(size=(n, d))
    image[:, 0] += gap
    text[:, 0] -= gap
    text2[:, 0] -= gap
    return image, text, text2
