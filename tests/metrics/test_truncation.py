"""Matryoshka sweeps: prefixes of the embeddings, one report per dimension, side by side."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_modgap import measure_embeddings
from pytest_modgap.errors import ModgapInputError
from pytest_modgap.metrics.truncation import measure_truncations, sweep_table, truncate
from tests.reports.synthetic import paired_embeddings


def test_truncate_keeps_the_prefix() -> None:
    embeddings = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(truncate(embeddings, 2), [[0, 1], [4, 5], [8, 9]])
    np.testing.assert_array_equal(truncate(embeddings, 4), embeddings)


@pytest.mark.parametrize(
    ("dim", "match"),
    [(5, "dim 5 exceeds the embedding size 4"), (0, "positive integer"), (2.5, "positive integer")],
)
def test_truncate_rejects_bad_dims(dim: object, match: str) -> None:
    with pytest.raises(ModgapInputError, match=match):
        truncate(np.ones((3, 4)), dim)


def test_truncate_rejects_non_matrices() -> None:
    with pytest.raises(ModgapInputError, match=r"expected \(N, d\)"):
        truncate(np.ones(4), 2)


def test_measure_truncations_measures_each_prefix() -> None:
    # Signal only in the first 8 dimensions: the gap is clearest there and diluted by the rest.
    rng = np.random.default_rng(5)
    signal = paired_embeddings(n=150, d=8, gap=2.0, noise=0.3, seed=5)
    image, text, text2 = (np.hstack([a, rng.normal(size=(150, 56))]) for a in signal)
    reports = measure_truncations(image, text, [64, 8, 8, 16], text2=text2, n_boot=50)
    assert list(reports) == [8, 16, 64]
    assert [r.metadata["truncate_dim"] for r in reports.values()] == [8, 16, 64]
    full = measure_embeddings(image, text, text2=text2, n_boot=50)
    assert reports[64]["alignment"] == pytest.approx(full["alignment"], abs=1e-12)
    assert reports[64].ci["alignment"] == pytest.approx(full.ci["alignment"], abs=1e-12)
    assert reports[8]["alignment"] > reports[64]["alignment"]


def test_a_bad_dimension_fails_before_any_measurement() -> None:
    image, text, _ = paired_embeddings(n=50, d=16)
    with pytest.raises(ModgapInputError, match="dim 32 exceeds the embedding size 16"):
        measure_truncations(image, text, [8, 32], ci=None)
    with pytest.raises(ModgapInputError, match="dims: is empty"):
        measure_truncations(image, text, [], ci=None)


def test_sweep_table_puts_dimensions_side_by_side() -> None:
    image, text, text2 = paired_embeddings(n=80, d=16, seed=6)
    reports = measure_truncations(image, text, [4, 16], text2=text2, n_boot=50)
    table = sweep_table(reports, metrics=["alignment", "centroid_gap"])
    lines = table.splitlines()
    assert lines[0].split() == ["metric", "better", "d=4", "d=16"]
    assert lines[1].split()[:2] == ["alignment", "higher"]
    low, high = reports[16].ci["alignment"]
    assert f"{reports[16]['alignment']:.4f} ±{(high - low) / 2:.4f}" in lines[1]
    assert lines[2].startswith("centroid_gap")
    assert "95% interval" in lines[-1] and "n = 80" in lines[-1]
    everything = sweep_table(reports)
    assert "matched_gap" in everything


def test_sweep_table_without_intervals_and_unknown_metric() -> None:
    image, text, _ = paired_embeddings(n=40, d=8, seed=7)
    reports = measure_truncations(image, text, [4, 8], ci=None)
    table = sweep_table(reports, metrics=["alignment"])
    assert "±" not in table.splitlines()[1] and "no intervals" in table
    with pytest.raises(ModgapInputError, match="matched_gap not in every report"):
        sweep_table(reports, metrics=["matched_gap"])
