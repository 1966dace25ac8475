"""Paired comparison: a reintroduced gap is caught as worse, identical and noise-level copies are not."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_modgap import measure_embeddings
from pytest_modgap.errors import ModgapInputError
from pytest_modgap.metrics.paired import DEFAULT_TOLERANCE, compare_embeddings, compare_reports
from tests.reports.synthetic import paired_embeddings

N_BOOT = 200


@pytest.fixture(scope="module")
def model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return paired_embeddings(n=300, d=32, gap=0.5, seed=10)


def _shifted(image: np.ndarray, amount: float) -> np.ndarray:
    """The image rows plus one constant vector: a gap added before normalisation."""
    shift = np.zeros(image.shape[1])
    shift[1] = amount
    return image + shift


def test_shifted_copy_is_worse_on_gap_and_alignment(model: tuple[np.ndarray, ...]) -> None:
    image, text, text2 = model
    comparison = compare_embeddings(
        (_shifted(image, 3.0), text, text2, None), (image, text, text2, None), n_boot=N_BOOT
    )
    assert {"centroid_gap", "alignment"} <= set(comparison.failed)
    gap = comparison["centroid_gap"]
    assert gap.verdict == "worse" and gap.difference > 0 and gap.ci is not None and gap.ci[0] > 0
    assert comparison["alignment"].difference < 0
    assert comparison["text_text_similarity"].verdict == "same", "text2 did not change"


def test_reference_with_the_gap_makes_the_candidate_better(model: tuple[np.ndarray, ...]) -> None:
    image, text, text2 = model
    comparison = compare_embeddings(
        (image, text, text2, None), (_shifted(image, 3.0), text, text2, None), n_boot=N_BOOT
    )
    assert comparison.failed == []
    assert comparison["centroid_gap"].verdict == "better"
    assert comparison["alignment"].verdict == "better"


def test_identical_copy_is_the_same_everywhere(model: tuple[np.ndarray, ...]) -> None:
    image, text, text2 = model
    comparison = compare_embeddings(
        (image.copy(), text.copy(), text2.copy(), None), (image, text, text2, None), n_boot=N_BOOT
    )
    assert comparison.failed == []
    for row in comparison:
        assert row.verdict == "same", row
        assert row.difference == pytest.approx(0.0, abs=1e-9)
        assert row.ci is not None and row.ci[0] == pytest.approx(0.0, abs=1e-9)
        assert row.ci[1] == pytest.approx(0.0, abs=1e-9)


def test_noise_level_differences_are_the_same(model: tuple[np.ndarray, ...]) -> None:
    image, text, text2 = model
    rng = np.random.default_rng(99)
    noisy = image + 0.01 * rng.normal(size=image.shape)
    comparison = compare_embeddings(
        (noisy, text, text2, None), (image, text, text2, None), n_boot=N_BOOT
    )
    assert comparison.failed == []
    assert {row.verdict for row in comparison} == {"same"}


def test_paired_interval_is_narrower_than_the_models_own(model: tuple[np.ndarray, ...]) -> None:
    # The point of pairing: pair-to-pair variation common to both models cancels in the difference.
    image, text, text2 = model
    comparison = compare_embeddings(
        (_shifted(image, 0.3), text, text2, None), (image, text, text2, None), n_boot=N_BOOT
    )
    row = comparison["alignment"]
    assert row.ci is not None and row.reference_ci is not None and row.candidate_ci is not None
    paired = row.ci[1] - row.ci[0]
    own = (row.reference_ci[1] - row.reference_ci[0]) + (row.candidate_ci[1] - row.candidate_ci[0])
    assert paired < own / 4


def test_point_values_match_measure_embeddings(model: tuple[np.ndarray, ...]) -> None:
    image, text, text2 = model
    shifted = _shifted(image, 1.0)
    comparison = compare_embeddings(
        (shifted, text, text2, None), (image, text, text2, None), ci=None
    )
    candidate = measure_embeddings(shifted, text, text2=text2, ci=None)
    reference = measure_embeddings(image, text, text2=text2, ci=None)
    for row in comparison:
        assert row.candidate == pytest.approx(candidate[row.name], abs=1e-12)
        assert row.reference == pytest.approx(reference[row.name], abs=1e-12)
        assert row.ci is None
    assert comparison.n_boot == 0


def test_tolerance_decides_what_counts(model: tuple[np.ndarray, ...]) -> None:
    image, text, text2 = model
    candidate = (_shifted(image, 3.0), text, text2, None)
    reference = (image, text, text2, None)
    loose = compare_embeddings(candidate, reference, n_boot=N_BOOT, tolerance=10.0)
    assert loose.failed == []
    per_metric = compare_embeddings(
        candidate, reference, n_boot=N_BOOT, tolerance={"centroid_gap": 10.0}
    )
    assert "centroid_gap" not in per_metric.failed and "alignment" in per_metric.failed
    assert per_metric["alignment"].tolerance == DEFAULT_TOLERANCE


def test_groups_are_used_for_both_models() -> None:
    image, text, _ = paired_embeddings(n=120, d=16, seed=4)
    groups = np.arange(120) % 6
    comparison = compare_embeddings(
        (image, text, None, groups), (image, text, None, groups), n_boot=N_BOOT
    )
    expected = measure_embeddings(image, text, groups=groups, ci=None)["negative_similarity"]
    assert comparison["negative_similarity"].reference == pytest.approx(expected, abs=1e-12)
    assert "matched_gap" not in {row.name for row in comparison}


@pytest.mark.parametrize(
    ("candidate_rows", "text2_both", "groups", "tolerance", "match"),
    [
        (250, True, (None, None), None, "250 and 300 pairs"),
        (300, False, (None, None), None, "text2: given for only one"),
        (300, True, (np.zeros(300), None), None, "groups: differ"),
        (300, True, (None, None), {"alignmnet": 0.1}, "alignmnet is not a metric name"),
        (300, True, (None, None), -0.5, "non-negative"),
    ],
)
def test_mismatched_inputs_are_clear_errors(
    model: tuple[np.ndarray, ...],
    candidate_rows: int,
    text2_both: bool,
    groups: tuple[object, object],
    tolerance: object,
    match: str,
) -> None:
    image, text, text2 = model
    candidate = (
        image[:candidate_rows],
        text[:candidate_rows],
        text2[:candidate_rows] if text2_both else None,
        groups[0],
    )
    with pytest.raises(ModgapInputError, match=match):
        compare_embeddings(candidate, (image, text, text2, groups[1]), tolerance=tolerance)


def test_table_marks_worse_rows_and_to_dict_is_json(model: tuple[np.ndarray, ...]) -> None:
    image, text, text2 = model
    comparison = compare_embeddings(
        (_shifted(image, 3.0), text, text2, None), (image, text, text2, None), n_boot=N_BOOT
    )
    lines = comparison.table().splitlines()
    assert lines[0].split() == [
        "metric",
        "reference",
        "candidate",
        "difference",
        "(95%",
        "CI)",
        "tolerance",
        "verdict",
    ]
    rows = {line[2:].split()[0]: line for line in lines[1:]}
    assert set(rows) == {row.name for row in comparison}
    assert (
        rows["centroid_gap"].startswith(">") and "WORSE (lower is better)" in rows["centroid_gap"]
    )
    assert rows["text_text_similarity"].startswith(" ")
    data = json.loads(json.dumps(comparison.to_dict()))
    assert data["failed"] == comparison.failed
    assert data["metrics"][0]["metric"] == "centroid_gap"
    assert set(data["metrics"][0]) >= {"reference", "candidate", "difference", "ci", "verdict"}


def test_compare_reports_is_unpaired(model: tuple[np.ndarray, ...]) -> None:
    image, text, text2 = model
    a = measure_embeddings(image, text, text2=text2, n_boot=N_BOOT).with_metadata(model="old")
    b = measure_embeddings(_shifted(image, 3.0), text, text2=text2, n_boot=N_BOOT)
    table = compare_reports(a, b, labels=("old.json", "new.json"))
    assert "a: old.json" in table and "b: new.json" in table
    gap_line = next(line for line in table.splitlines() if line[2:].startswith("centroid_gap"))
    assert gap_line.startswith(">") and "worse" in gap_line
    assert a.format_value("centroid_gap") in gap_line and b.format_value("centroid_gap") in gap_line
    text_line = next(line for line in table.splitlines() if "text_text_similarity" in line)
    assert "within CIs" in text_line, "overlapping intervals must not claim a change"
    assert "Unpaired" in table
    assert all(name in table for name in a)
