"""The Report: a mapping of metric values with intervals that round-trips through plain JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_modgap import Report, measure_embeddings


@pytest.fixture(scope="module")
def report() -> Report:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(40, 8))
    return measure_embeddings(image, image + rng.normal(size=(40, 8)), n_boot=100)


def test_mapping_access_and_interval(report: Report) -> None:
    assert isinstance(report["alignment"], float)
    low, high = report.ci["alignment"]
    assert low <= report["alignment"] <= high
    assert report.n == 40
    assert len(report) == len(list(report)) == 18  # 12 pair metrics and 6 retrieval recalls


def test_missing_text2_metric_says_why(report: Report) -> None:
    with pytest.raises(KeyError, match="needs a second caption per pair"):
        report["matched_gap"]


def test_to_dict_is_plain_json_and_round_trips(report: Report) -> None:
    data = json.loads(json.dumps(report.to_dict()))
    assert data["metrics"]["alignment"]["better"] == "higher"
    assert data["ci_approximated"] == [
        "auc",
        "pos_neg_overlap",
        "image_uniformity",
        "text_uniformity",
        *(f"{direction}_recall@{k}" for direction in ("i2t", "t2i") for k in (1, 5, 10)),
    ]
    again = Report.from_dict(data)
    assert dict(again) == dict(report)
    assert again.ci == report.ci


def test_repr_is_a_readable_table(report: Report) -> None:
    text = repr(report.with_metadata(model="tiny"))
    assert text.startswith("Report(n=40, model=tiny)")
    alignment_line = next(line for line in text.splitlines() if line.startswith("alignment"))
    assert "higher" in alignment_line
    assert report.format_value("alignment") in alignment_line
    assert "95% CI" in text
    assert all(name in text for name in report)


def test_distributions_are_the_metrics_own_data(report: Report) -> None:
    assert report.distributions is not None
    assert report.distributions.positive.mean() == pytest.approx(report["alignment"])
    assert report.distributions.negative_hist.sum() == 40 * 39
