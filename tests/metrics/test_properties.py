"""Hypothesis properties: the metrics depend only on directions and on which rows are paired."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import special_ortho_group

from pytest_modgap import measure_embeddings

# Histogram metrics can move a value across a bin edge under float rounding; they get the contract's
# histogram tolerance, the rest the exact one.
TOLERANCE = {"pos_neg_overlap": 2e-3, "matched_overlap": 2e-3}


def close(a: dict[str, float], b: dict[str, float]) -> bool:
    return all(abs(a[k] - b[k]) <= TOLERANCE.get(k, 1e-4) for k in a)


pair_sets = st.tuples(
    st.integers(min_value=3, max_value=40),
    st.integers(min_value=2, max_value=12),
    st.integers(min_value=0, max_value=2**31 - 1),
)


def draw(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(n, d))
    text = image + rng.normal(size=(n, d)) + rng.normal(size=d)
    text2 = text + rng.normal(size=(n, d))
    groups = rng.integers(0, 3, n)
    groups[:2] = [0, 1]
    return image, text, text2, groups


@settings(max_examples=25, deadline=None)
@given(pair_sets, st.floats(min_value=1e-3, max_value=1e3))
def test_scaling_rows_changes_nothing(params: tuple[int, int, int], scale: float) -> None:
    image, text, text2, groups = draw(*params)
    rng = np.random.default_rng(params[2] + 1)
    row_scales = scale * rng.uniform(0.5, 2.0, size=(len(image), 1))
    base = measure_embeddings(image, text, text2=text2, groups=groups, ci=None)
    scaled = measure_embeddings(
        image * row_scales, text / row_scales, text2=text2 * scale, groups=groups, ci=None
    )
    assert close(dict(base), dict(scaled))


@settings(max_examples=25, deadline=None)
@given(pair_sets)
def test_a_common_rotation_changes_nothing(params: tuple[int, int, int]) -> None:
    image, text, text2, groups = draw(*params)
    rotation = special_ortho_group.rvs(image.shape[1], random_state=params[2])
    base = measure_embeddings(image, text, text2=text2, groups=groups, ci=None)
    rotated = measure_embeddings(
        image @ rotation, text @ rotation, text2=text2 @ rotation, groups=groups, ci=None
    )
    assert close(dict(base), dict(rotated))


@settings(max_examples=25, deadline=None)
@given(pair_sets)
def test_permuting_pairs_together_changes_nothing(params: tuple[int, int, int]) -> None:
    image, text, text2, groups = draw(*params)
    order = np.random.default_rng(params[2]).permutation(len(image))
    base = measure_embeddings(image, text, text2=text2, groups=groups, ci=None)
    permuted = measure_embeddings(
        image[order], text[order], text2=text2[order], groups=groups[order], ci=None
    )
    assert close(dict(base), dict(permuted))


@settings(max_examples=15, deadline=None)
@given(pair_sets)
def test_breaking_the_pairing_lowers_alignment(params: tuple[int, int, int]) -> None:
    # Sanity check that the invariance tests above could fail: shuffling only the texts changes
    # the pair-level metrics but leaves the modality-level ones (centroids, cones) alone.
    image, text, _, _ = draw(*params)
    shuffled = np.roll(text, 1, axis=0)
    base = measure_embeddings(image, text, ci=None)
    broken = measure_embeddings(image, shuffled, ci=None)
    assert abs(base["centroid_gap"] - broken["centroid_gap"]) < 1e-5
    assert abs(base["text_cone"] - broken["text_cone"]) < 1e-5
    assert not close(dict(base), dict(broken))
