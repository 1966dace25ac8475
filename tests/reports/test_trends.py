"""Trend figures of ``modgap history --report-dir``: titles that fit, file names that say the data
set, and x labels that tell every run apart."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_modgap.reports.history import append_history, history_entry, read_history
from pytest_modgap.reports.trends import trend_figure, write_history_report
from tests.reports.figure_checks import LONG_SPEC, assert_titles_fit, recorded_figures

START = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def _entry(
    model: str, seconds: int, dataset: str = "shapes", commit: str | None = None
) -> dict[str, Any]:
    report = {"n": 10, "metrics": {"alignment": {"value": 0.5 + seconds / 1e4, "ci": None}}}
    return history_entry(
        report,
        model=model,
        dataset=dataset,
        samples=10,
        seed=0,
        commit=commit,
        when=START + timedelta(seconds=seconds),
    )


def _tick_labels(figure: Any) -> list[str]:
    labelled = [ax for ax in figure.axes if any(t.get_text() for t in ax.get_xticklabels())]
    return [t.get_text() for t in labelled[0].get_xticklabels()]


def test_a_long_data_set_spec_in_the_title_is_wrapped_inside_the_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn = recorded_figures(monkeypatch)
    title = f"Metrics over the runs: {LONG_SPEC}"
    trend_figure(
        [_entry("m", 0, LONG_SPEC), _entry("m", 60, LONG_SPEC)], tmp_path / "t.png", title=title
    )
    (figure,) = drawn
    assert_titles_fit(figure, title)


def test_runs_in_the_same_minute_or_of_the_same_commit_get_their_own_x_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn = recorded_figures(monkeypatch)
    commit = "abcdef1" + "0" * 33
    entries = [
        _entry("m", 5),
        _entry("m", 40),  # the same minute as the run before
        _entry("m", 3600, commit=commit),
        _entry("m", 3700, commit=commit),  # the same commit and day
        _entry("m", 7200),
        _entry("other", 7200),  # the same second: two models of one run
        _entry("m", 86400 * 3, commit="1234567" + "0" * 33),
    ]
    trend_figure(entries, tmp_path / "t.png", title="t")
    (figure,) = drawn
    labels = _tick_labels(figure)
    assert len(labels) == len(entries) and len(set(labels)) == len(entries), labels
    assert labels[0] == "2026-01-05\n12:00:05" and labels[1] == "2026-01-05\n12:00:40"
    assert labels[2] == "2026-01-05\n13:00:00 abcdef1"
    assert labels[-1] == "2026-01-08\n1234567", "a run that is alone keeps the short label"


def test_trend_figures_are_named_by_their_data_set(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    append_history(
        path,
        [
            _entry("m", 0),
            _entry("m", 60, "coco:/data/coco"),
            _entry("m", 120, "coco:/data/coco", commit=None) | {"truncate_dim": 128},
            _entry("m", 180, "COCO:/data/coco"),  # the same name once made file-name safe
        ],
    )
    index = write_history_report(read_history(path), tmp_path / "report")
    assert sorted(p.name for p in index.parent.iterdir()) == [
        "index.html",
        "trend-coco-data-coco-128.png",
        "trend-coco-data-coco-2.png",
        "trend-coco-data-coco.png",
        "trend-shapes.png",
    ]
    page = index.read_text(encoding="utf-8")
    assert "(trend-coco-data-coco-128.png)" in page and "(trend-shapes.png)" in page


def test_a_history_of_paths_that_are_not_utf8_draws_and_writes_its_page(tmp_path: Path) -> None:
    # Python holds the \xe9 of a Latin-1 file name as a lone surrogate, which neither matplotlib
    # nor a UTF-8 page can take: both show the byte as \xe9.
    dataset = "manifest:" + os.fsdecode(b"/data/caf\xe9.jsonl")
    model = os.fsdecode(b"./checkpoints/r\xe9lease")
    path = tmp_path / os.fsdecode(b"h\xe9story.jsonl")
    append_history(path, [_entry(model, 0, dataset), _entry(model, 60, dataset)])
    index = write_history_report(read_history(path), tmp_path / "report")
    page = index.read_text(encoding="utf-8")
    assert "Data set: manifest:/data/caf\\xe9.jsonl" in page and "r\\xe9lease" in page
    assert "h\\xe9story.jsonl" in page
    assert (index.parent / "trend-manifest-data-caf-jsonl.png").read_bytes()[:4] == b"\x89PNG"
