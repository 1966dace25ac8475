"""Figures 2 and 3: the histograms drawn are the report's own similarities, and the PNGs are written."""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_modgap import Report, measure_embeddings
from pytest_modgap.errors import ModgapError
from pytest_modgap.reports.figures import EDGES, figure2, figure3, figure_data, wrap_title
from tests.reports.figure_checks import LONG_SPEC, assert_titles_fit, recorded_figures
from tests.reports.synthetic import paired_embeddings


@pytest.fixture(scope="module")
def with_text2() -> Report:
    image, text, text2 = paired_embeddings(gap=1.5, seed=1)
    return measure_embeddings(image, text, text2=text2, n_boot=50)


@pytest.fixture(scope="module")
def closed_gap() -> Report:
    image, text, text2 = paired_embeddings(gap=0.0, noise=0.5, seed=2)
    return measure_embeddings(image, text, text2=text2, n_boot=50)


@pytest.fixture(scope="module")
def without_text2() -> Report:
    image, text, _ = paired_embeddings(seed=3)
    return measure_embeddings(image, text, n_boot=50)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_figure_data_is_the_reports_similarities(with_text2: Report) -> None:
    data = figure_data(with_text2)
    distributions = with_text2.distributions
    assert distributions is not None and distributions.text_text is not None
    np.testing.assert_array_equal(data["edges"], np.linspace(-1, 1, 201))
    assert data["positive_counts"].sum() == with_text2.n
    assert data["text_text_counts"].sum() == with_text2.n
    np.testing.assert_array_equal(data["negative_counts"], distributions.negative_hist)
    # Away from bin edges the binning is numpy's: compare against np.histogram of the positives.
    expected, _ = np.histogram(distributions.positive, bins=200, range=(-1, 1))
    assert np.abs(data["positive_counts"] - expected).sum() <= 2
    width = EDGES[1] - EDGES[0]
    for key in ("positive", "negative", "text_text"):
        assert data[key].sum() * width == pytest.approx(1.0), f"{key} density does not integrate"
    assert data["means"] == {
        "positive": with_text2["alignment"],
        "negative": with_text2["negative_similarity"],
        "text_text": with_text2["text_text_similarity"],
    }


def test_figure_histograms_are_the_ones_the_overlap_metrics_use(with_text2: Report) -> None:
    data = figure_data(with_text2)

    def overlap(p: np.ndarray, q: np.ndarray) -> float:
        return float(np.minimum(p / p.sum(), q / q.sum()).sum())

    pos, neg, text = data["positive_counts"], data["negative_counts"], data["text_text_counts"]
    assert overlap(pos, neg) == pytest.approx(with_text2["pos_neg_overlap"], abs=1e-9)
    assert overlap(pos, text) == pytest.approx(with_text2["matched_overlap"], abs=1e-9)


def test_figure_data_without_text2(without_text2: Report) -> None:
    data = figure_data(without_text2)
    assert data["text_text"] is None
    assert "text_text" not in data["means"]


def test_stacked_figures_are_written_one_panel_per_model(
    tmp_path: Path, with_text2: Report, closed_gap: Report
) -> None:
    single = figure3([("gap", with_text2)], tmp_path / "one.png")
    stacked = figure3([("gap", with_text2), ("closed", closed_gap)], tmp_path / "two.png")
    fig2 = figure2([("gap", with_text2), ("closed", closed_gap)], tmp_path / "fig2.png")
    assert single == tmp_path / "one.png"
    one_width, one_height = _png_size(single)
    two_width, two_height = _png_size(stacked)
    assert one_width == two_width
    assert two_height > 1.6 * one_height, "a second model should add a panel below the first"
    assert _png_size(fig2) == (two_width, two_height)
    assert not list(tmp_path.glob(".*.tmp")), "atomic write left a temporary file"


def test_figure2_needs_text2(tmp_path: Path, without_text2: Report) -> None:
    with pytest.raises(ModgapError, match="'plain'.*second caption"):
        figure2([("plain", without_text2)], tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists()


def test_reports_from_json_cannot_be_drawn(tmp_path: Path, with_text2: Report) -> None:
    loaded = Report.from_dict(with_text2.to_dict())
    with pytest.raises(ModgapError, match="no similarity distributions"):
        figure3([("json", loaded)], tmp_path / "f.png")


def test_no_reports_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModgapError, match="at least one"):
        figure3([], tmp_path / "f.png")


def test_missing_matplotlib_names_the_extra(
    tmp_path: Path, with_text2: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ModgapError, match=r'pip install "pytest-modgap\[figures\]"'):
        figure3([("m", with_text2)], tmp_path / "f.png")


def test_x_range_is_trimmed_to_the_data() -> None:
    from pytest_modgap.reports.figures import _data_range

    density = np.zeros(200)
    density[120:150] = 1.0  # cosines in [0.2, 0.5)
    low, high = _data_range([density, np.zeros(200)])
    assert -1.0 < low < 0.2 and 0.5 < high < 1.0
    assert high - low < 0.5
    assert _data_range([np.zeros(200)]) == (-1.0, 1.0)


def test_a_long_data_set_spec_or_model_label_is_wrapped_inside_the_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_text2: Report, closed_gap: Report
) -> None:
    drawn = recorded_figures(monkeypatch)
    title = f"Matched vs non-matching image-text cosine similarity: {LONG_SPEC}"
    model = "./checkpoints/" + "release-candidate-with-a-very-long-name-" * 3
    figure3([(model, with_text2), ("short", closed_gap)], tmp_path / "f3.png", title=title)
    (figure,) = drawn
    assert_titles_fit(figure, title, f"{model}  (n = {with_text2.n:,} pairs)")


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=120), columns=st.integers(12, 60))
def test_wrapped_titles_keep_every_character_on_short_enough_lines(text: str, columns: int) -> None:
    wrapped = wrap_title(text, columns)
    assert all(len(line) <= columns for line in wrapped.splitlines())
    assert "".join(wrapped.split()) == "".join(text.split())


def test_a_title_that_is_not_utf8_is_drawn_with_its_bytes_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_text2: Report
) -> None:
    drawn = recorded_figures(monkeypatch)
    dataset = "manifest:" + os.fsdecode(b"/data/caf\xe9.jsonl")  # \xe9 held as \udce9
    model = os.fsdecode(b"r\xe9lease")
    figure3([(model, with_text2)], tmp_path / "f3.png", title=f"Figure 3: {dataset}")
    (figure,) = drawn
    assert_titles_fit(
        figure, "Figure 3: manifest:/data/caf\\xe9.jsonl", "r\\xe9lease  (n = 300 pairs)"
    )
