"""Per-slice reports: every slice with enough pairs measured on its own pairs, all metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_modgap import ModgapInputError, Report, measure_embeddings
from pytest_modgap.metrics.engine import SLICE_MIN_PAIRS


def sliced_pairs(seed: int = 0) -> tuple[np.ndarray, ...]:
    """Three slices (60, 40 and 10 pairs); the images of slice "b" sit far from their texts."""
    rng = np.random.default_rng(seed)
    labels = np.array(["a"] * 60 + ["b"] * 40 + ["c"] * 10)
    image = rng.normal(size=(110, 16))
    text = image + 0.5 * rng.normal(size=(110, 16))
    image[labels == "b"] += 2.0 * rng.normal(size=(40, 16))
    extra_image = np.arange(110).repeat(2)
    extra = image[extra_image] + rng.normal(size=(220, 16))
    return image, text, extra, extra_image, labels


def test_each_large_enough_slice_gets_the_report_of_its_own_pairs() -> None:
    image, text, extra, extra_image, labels = sliced_pairs()
    report = measure_embeddings(
        image,
        text,
        extra_captions=extra,
        extra_caption_image=extra_image,
        slices=labels,
        n_boot=100,
    )
    assert SLICE_MIN_PAIRS == 20
    assert list(report.slices) == ["a", "b"]  # "c" has 10 pairs
    for label, part in report.slices.items():
        rows = np.flatnonzero(labels == label)
        keep = np.isin(extra_image, rows)
        alone = measure_embeddings(
            image[rows],
            text[rows],
            extra_captions=extra[keep],
            extra_caption_image=np.searchsorted(rows, extra_image[keep]),
            n_boot=100,
        )
        assert part.n == len(rows)
        assert dict(part) == dict(alone)
        assert part.ci == alone.ci
    assert report.slices["b"]["alignment"] < report.slices["a"]["alignment"] - 0.2
    assert report.worst_slices("alignment") == [
        ("b", report.slices["b"]["alignment"]),
        ("a", report.slices["a"]["alignment"]),
    ]
    assert report.worst_slices("centroid_gap")[0][0] == "b"


def test_a_slice_of_one_group_leaves_out_only_the_negatives_metrics() -> None:
    image, text, _, _, labels = sliced_pairs(1)
    groups = np.where(labels == "a", 0, np.arange(110) % 3 + 1)
    report = measure_embeddings(image, text, groups=groups, slices=labels, ci=None)
    one_group = report.slices["a"]
    for name in ("negative_similarity", "separation", "auc", "pos_neg_overlap"):
        assert name in report.slices["b"] and name not in one_group, name
    assert "alignment" in one_group and "t2i_recall@1" in one_group
    with pytest.raises(KeyError, match="needs negatives"):
        one_group["auc"]


def test_slices_round_trip_through_json() -> None:
    image, text, _, _, labels = sliced_pairs(2)
    report = measure_embeddings(image, text, slices=labels, n_boot=50).with_metadata(model="m")
    again = Report.from_dict(json.loads(json.dumps(report.to_dict())))
    assert list(again.slices) == list(report.slices)
    for label, part in report.slices.items():
        assert dict(again.slices[label]) == dict(part)
        assert again.slices[label].ci == part.ci
    assert report.with_metadata(dataset="x").slices == report.slices


def test_integer_slice_labels_and_a_bad_shape() -> None:
    image, text, _, _, labels = sliced_pairs(3)
    numbers = np.unique(labels, return_inverse=True)[1]
    report = measure_embeddings(image, text, slices=numbers, ci=None)
    assert list(report.slices) == ["0", "1"]
    with pytest.raises(ModgapInputError, match="one label per pair"):
        measure_embeddings(image, text, slices=numbers[:5], ci=None)


def test_labels_of_two_types_that_read_alike_are_refused_not_merged() -> None:
    """1 and "1" would both be the slice "1" in the report: refused, naming both."""
    image, text, _, _, _ = sliced_pairs(4)
    mixed = np.array([1] * 60 + ["1"] * 50, dtype=object)
    with pytest.raises(
        ModgapInputError, match=r"slices: the labels 1 \(int\) and '1' \(str\) both read as '1'"
    ):
        measure_embeddings(image, text, slices=mixed, ci=None)
    # Equal values of several types are one label; other mixes that read apart are two.
    same = np.array([1] * 60 + [np.int64(1)] * 50, dtype=object)
    assert list(measure_embeddings(image, text, slices=same, ci=None).slices) == ["1"]
    apart = np.array([1] * 60 + ["b"] * 50, dtype=object)
    assert list(measure_embeddings(image, text, slices=apart, ci=None).slices) == ["1", "b"]
