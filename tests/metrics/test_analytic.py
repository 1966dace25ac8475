"""Analytic cases: the values a metric must take on inputs whose answer is known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_modgap import measure_embeddings


def unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_identical_modalities_have_no_gap_and_perfect_alignment() -> None:
    x = np.random.default_rng(0).normal(size=(200, 32))
    report = measure_embeddings(x, x, text2=x, ci=None)
    assert report["centroid_gap"] == pytest.approx(0.0, abs=1e-6)
    assert report["pair_distance"] == pytest.approx(0.0, abs=1e-3)
    assert report["alignment"] == pytest.approx(1.0, abs=1e-6)
    assert report["matched_gap"] == pytest.approx(0.0, abs=1e-6)
    assert report["matched_overlap"] == pytest.approx(1.0)
    assert report["image_cone"] == pytest.approx(report["text_cone"], abs=1e-6)
    assert report["auc"] == pytest.approx(1.0)
    # d_m = 0 is replaced by 1e-3 (Schrodi et al.): RMG = 1e-3 / (1e-3 + d_II).
    d_ii = (1 - report["image_cone"]) / 2
    assert report["relative_gap"] == pytest.approx(1e-3 / (1e-3 + d_ii), rel=1e-4)


def test_constant_shift_of_one_modality_gives_the_shift_norm_as_centroid_gap() -> None:
    # image = (0.8·u, 0.6, 0) and text = (0.8·u, 0, 0.6) are unit rows that differ by one constant
    # vector (0, …, 0.6, −0.6): the centroid gap and every pair distance are its norm.
    u = unit(np.random.default_rng(1).normal(size=(300, 8)))
    column = np.full((300, 1), 0.6)
    image = np.hstack([0.8 * u, column, np.zeros((300, 1))])
    text = np.hstack([0.8 * u, np.zeros((300, 1)), column])
    report = measure_embeddings(image, text, ci=None)
    shift_norm = 0.6 * np.sqrt(2.0)
    assert report["centroid_gap"] == pytest.approx(shift_norm, abs=1e-5)
    assert report["pair_distance"] == pytest.approx(shift_norm, abs=1e-5)


def test_random_high_dimensional_vectors_have_chance_auc_and_no_cone() -> None:
    rng = np.random.default_rng(2)
    report = measure_embeddings(
        rng.normal(size=(1500, 1024)), rng.normal(size=(1500, 1024)), ci=None
    )
    assert report["auc"] == pytest.approx(0.5, abs=0.03)
    assert report["image_cone"] == pytest.approx(0.0, abs=2e-3)
    assert report["text_cone"] == pytest.approx(0.0, abs=2e-3)
    assert report["alignment"] == pytest.approx(0.0, abs=0.01)
    assert report["separation"] == pytest.approx(0.0, abs=0.01)
    assert report["pos_neg_overlap"] > 0.8
    # Orthogonal-ish unit vectors: ‖u − v‖² ≈ 2, so uniformity ≈ log exp(−4) = −4.
    assert report["image_uniformity"] == pytest.approx(-4.0, abs=0.01)


def test_all_rows_in_one_direction_give_cone_one_and_uniformity_zero() -> None:
    x = np.tile([[1.0, 2.0, 3.0]], (10, 1))
    y = np.random.default_rng(3).normal(size=(10, 3))
    report = measure_embeddings(x, y, ci=None)
    assert report["image_cone"] == pytest.approx(1.0, abs=1e-6)
    assert report["image_uniformity"] == pytest.approx(0.0, abs=1e-5)


def test_groups_remove_same_class_negatives() -> None:
    # Two classes; texts of one class are identical to that class's images, so same-class pairs
    # would be perfect "negatives". With groups they are not negatives at all.
    rng = np.random.default_rng(4)
    centres = unit(rng.normal(size=(2, 64)))
    labels = np.repeat([0, 1], 50)
    image = centres[labels]
    text = centres[labels]
    without_groups = measure_embeddings(image, text, ci=None)
    with_groups = measure_embeddings(image, text, groups=labels, ci=None)
    cross_class = float(centres[0] @ centres[1])
    assert with_groups["negative_similarity"] == pytest.approx(cross_class, abs=1e-6)
    assert with_groups["auc"] == pytest.approx(1.0)
    # Without groups, 49 of every 99 negatives are same-class pairs with cosine 1.
    expected = (49 * 1.0 + 50 * cross_class) / 99
    assert without_groups["negative_similarity"] == pytest.approx(expected, abs=1e-6)
    assert without_groups["auc"] < 0.8


def test_separated_distributions_have_no_overlap() -> None:
    rng = np.random.default_rng(5)
    x = unit(rng.normal(size=(400, 256)))
    report = measure_embeddings(x, x + 0.01 * rng.normal(size=x.shape), ci=None)
    assert report["pos_neg_overlap"] == 0.0
    assert report["auc"] == 1.0
