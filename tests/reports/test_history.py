"""The run history file: append-safe lines, tolerant reading, the change since the previous run,
and the trend figures of ``modgap history``."""

from __future__ import annotations

import json
import multiprocessing
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_modgap import measure_embeddings
from pytest_modgap.reports.history import (
    append_history,
    change_text,
    git_commit,
    history_entry,
    read_history,
)
from pytest_modgap.reports.trends import write_history_report
from tests.reports.synthetic import paired_embeddings

START = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def _entry(model: str, gap: float, day: int, dataset: str = "shapes") -> dict[str, Any]:
    image, text, text2 = paired_embeddings(n=80, gap=gap, seed=day)
    report = measure_embeddings(image, text, text2=text2, n_boot=20)
    return history_entry(
        report.to_dict(),
        model=model,
        dataset=dataset,
        samples=80,
        seed=0,
        commit=f"{day:07x}" + "0" * 33,
        when=START + timedelta(days=day),
    )


def _append_many(path: str, writer: int, count: int) -> None:
    padding = "x" * 3000  # lines far longer than a pipe's atomic size
    for number in range(count):
        append_history(
            path,
            [{"format": "pytest-modgap-history/1", "writer": writer, "number": number,
              "padding": padding}] * 2,
        )  # fmt: skip


def test_concurrent_appends_never_interleave_lines(tmp_path: Path) -> None:
    path = str(tmp_path / "history.jsonl")
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append_many, args=(path, w, 150)) for w in range(2)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=120)
        assert process.exitcode == 0
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]  # a torn line would not parse
    assert len(records) == 2 * 150 * 2
    for writer in range(2):
        numbers = [r["number"] for r in records if r["writer"] == writer]
        assert numbers == sorted(numbers) and len(numbers) == 300
    # Both lines of one append are adjacent: one write per append.
    for first, second in zip(records[::2], records[1::2], strict=True):
        assert (first["writer"], first["number"]) == (second["writer"], second["number"])


def test_reading_skips_damaged_lines_and_finds_the_previous_run(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    append_history(path, [_entry("m", 1.0, 0), _entry("other", 0.0, 1)])
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"format": "pytest-modgap-history/1", "model": "m"\n')  # cut short
        handle.write("[1, 2]\n\n")
    append_history(path, [_entry("m", 0.5, 2, dataset="coco")])
    history = read_history(path)
    assert [e["model"] for e in history.entries] == ["m", "other", "m"]
    assert history.skipped == (3, 4)
    previous = history.previous("m", "shapes")
    assert previous is not None and previous["time"] == "2026-01-05T12:00:00Z"
    assert history.previous("m", "shapes", truncate_dim=128) is None
    assert read_history(tmp_path / "missing.jsonl").entries == ()


def test_the_change_keeps_its_sign_and_names_the_previous_run() -> None:
    before = _entry("m", 1.5, 0)
    after = _entry("m", 0.0, 1)
    text = change_text(before, after["metrics"])
    assert text.startswith("change since the previous run (2026-01-05T12:00:00Z, 0000000): ")
    gap = float(re.search(r"centroid_gap ([+-]\d\.\d{4})", text).group(1))  # type: ignore[union-attr]
    expected = (
        after["metrics"]["centroid_gap"]["value"] - before["metrics"]["centroid_gap"]["value"]
    )
    assert gap == pytest.approx(expected, abs=1e-4) and gap < 0
    assert re.search(r"alignment \+\d\.\d{4}", text)


def test_git_commit_is_none_outside_a_work_tree_or_without_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert git_commit(tmp_path) is None
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on the PATH
    assert git_commit(Path.cwd()) is None


def test_the_history_report_draws_every_metric_over_the_runs(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    entries = [_entry("release", gap, day) for day, gap in enumerate((2.0, 1.5, 1.0, 0.5))]
    entries.append(_entry("candidate", 0.2, 4))
    entries.append(_entry("release", 0.4, 5, dataset="coco:/data/coco"))
    append_history(path, entries)
    index = write_history_report(read_history(path), tmp_path / "report")
    assert sorted(p.name for p in index.parent.iterdir()) == [
        "index.html",
        "trend-1.png",
        "trend-2.png",
    ]
    assert (index.parent / "trend-1.png").read_bytes()[:4] == b"\x89PNG"
    page = index.read_text(encoding="utf-8")
    assert "Data set: shapes" in page and "Data set: coco:/data/coco" in page
    assert page.count('src="data:image/png;base64,') == 2
    assert page.count("2026-01-") >= 6 and "0000003" in page  # one row per run, with its commit


def test_the_trend_figure_has_a_panel_per_metric_with_bands(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    import pytest_modgap.reports.figures as figures
    from pytest_modgap.reports import trends

    drawn: list[Figure] = []

    classes = figures.matplotlib_classes()

    class Recording(classes[0]):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            drawn.append(self)

    monkey = pytest.MonkeyPatch()
    monkey.setattr(figures, "matplotlib_classes", lambda: (Recording, classes[1]))
    try:
        entries = [_entry("release", gap, day) for day, gap in enumerate((2.0, 1.0, 0.5))]
        entries.append(_entry("one-off", 0.3, 3))
        trends.trend_figure(entries, tmp_path / "t.png", title="t")
    finally:
        monkey.undo()
    (figure,) = drawn
    panels = [ax for ax in figure.axes if ax.get_title()]
    names = {ax.get_title().split(" ")[0] for ax in panels}
    assert set(entries[0]["metrics"]) == names
    gap_panel = next(ax for ax in panels if ax.get_title().startswith("centroid_gap "))
    assert gap_panel.get_title() == "centroid_gap (lower is better)"
    assert len(gap_panel.collections) >= 1, "the release line has an interval band"
    assert len(gap_panel.get_lines()) >= 2, "a line for release, a point for one-off"
    lowest = panels[-3]  # no panel below it: it names the runs
    labels = [t.get_text() for t in lowest.get_xticklabels()]
    assert labels[0] == "2026-01-05\n0000000" and len(labels) == len(entries)
    assert all(t.get_text() == "" for t in gap_panel.get_xticklabels())


def test_without_matplotlib_the_history_page_has_the_table_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "history.jsonl"
    append_history(path, [_entry("release", 1.0, 0)])
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    index = write_history_report(read_history(path), tmp_path / "report")
    assert sorted(p.name for p in index.parent.iterdir()) == ["index.html"]
    page = index.read_text(encoding="utf-8")
    assert "Figures not drawn: matplotlib is not installed" in page and "release" in page
