"""The protocol of Schrodi et al.'s code: within-modality terms over distinct rows, and RMG's floor.

lmb-freiburg/two-effects-one-trigger, analysis/gap_precompute.py, ``compute_rmg``: on ImageNet the
text side is the distinct class prompts (one per class, not one per image), on COCO the image side
the distinct images; the matched distance is floored by ``torch.where(d > 0, d, 1e-3)``.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_modgap import measure_embeddings
from tests.reference_metrics import reference_metrics


def unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def offdiag_mean(gram: np.ndarray) -> float:
    return float(gram[~np.eye(len(gram), dtype=bool)].mean())


def class_prompt_pairs(
    n: int, classes: int, d: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Images of ``classes`` classes paired with their class's one prompt embedding."""
    rng = np.random.default_rng(seed)
    prompts = unit(rng.normal(size=(classes, d)) + 0.8)
    labels = np.arange(n) % classes
    image = prompts[labels] + 1.5 * rng.normal(size=(n, d))
    return image, prompts[labels], prompts, labels


def test_class_prompts_count_once_in_the_text_cone_uniformity_and_rmg() -> None:
    image, text, prompts, labels = class_prompt_pairs(300, 10, 32, seed=0)
    report = measure_embeddings(image, text, groups=labels, n_boot=200)
    gram = prompts @ prompts.T
    assert report["text_cone"] == pytest.approx(offdiag_mean(gram), abs=1e-6)
    distances = 2.0 - 2.0 * gram
    assert report["text_uniformity"] == pytest.approx(
        np.log(offdiag_mean(np.exp(-2.0 * distances))), abs=1e-5
    )
    # Counting every pair's copy would add 29 cosines of 1 per prompt pair: a much narrower cone.
    per_pair = offdiag_mean(text @ text.T)
    assert per_pair > report["text_cone"] + 0.05
    x = unit(image)
    d_m = (1.0 - float((x * text).sum(1).mean())) / 2.0
    d_ii = (1.0 - offdiag_mean(x @ x.T)) / 2.0
    d_tt = (1.0 - offdiag_mean(gram)) / 2.0
    assert report["relative_gap"] == pytest.approx(d_m / (d_m + (d_ii + d_tt) / 2.0), abs=1e-5)
    expected = reference_metrics(image, text, groups=labels)
    for name in ("text_cone", "text_uniformity", "relative_gap", "image_cone"):
        assert report[name] == pytest.approx(expected[name], abs=1e-5), name
        low, high = report.ci[name]
        assert np.isfinite([low, high]).all() and low <= report[name] <= high, name
    # Without repeats, the distinct rows are the pairs' rows: the cone is the plain one.
    distinct_texts = text + 1e-3 * np.random.default_rng(5).normal(size=text.shape)
    plain = measure_embeddings(image, distinct_texts, groups=labels, ci=None)
    y = unit(distinct_texts)
    assert plain["text_cone"] == pytest.approx(offdiag_mean(y @ y.T), abs=1e-6)


def test_repeated_images_count_once_in_the_image_cone() -> None:
    # One row per caption, as a loader that flattens five captions per image would give.
    rng = np.random.default_rng(1)
    images = unit(rng.normal(size=(40, 16)) + 0.5)
    image = np.repeat(images, 5, axis=0)
    text = image + rng.normal(size=image.shape)
    report = measure_embeddings(image, text, ci=None)
    assert report["image_cone"] == pytest.approx(offdiag_mean(images @ images.T), abs=1e-6)


def test_relative_gap_floors_only_a_matched_distance_of_zero() -> None:
    # Texts a hair away from their images: d_m ~ 1e-10 > 0 is kept (RMG ~ 1e-9), where a floor
    # below 1e-6 would have reported 1e-3 / (1e-3 + d) ~ 2e-3.
    rng = np.random.default_rng(4)
    image = rng.normal(size=(200, 32))
    text = image + 1e-5 * rng.normal(size=(200, 32))
    near = measure_embeddings(image, text, ci=None)
    assert 0.0 < near["relative_gap"] < 1e-6
    assert near["relative_gap"] == pytest.approx(
        reference_metrics(image, text)["relative_gap"], abs=1e-7
    )
    # Identical modalities: d_m is exactly 0 and replaced by 1e-3 (Schrodi et al.).
    same = measure_embeddings(image, image, ci=None)
    d_ii = (1.0 - same["image_cone"]) / 2.0
    assert same["relative_gap"] == pytest.approx(1e-3 / (1e-3 + d_ii), rel=1e-6)
