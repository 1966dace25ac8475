"""The run history file: append-safe lines, tolerant reading, the change since the previous run,
and the trend figures of ``modgap history``."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _light_entry(model: str, day: int, dataset: str = "shapes", metrics: int = 3) -> dict[str, Any]:
    """An entry from a hand-made report: for tests of the file itself, no measurement needed."""
    report = {
        "n": 10,
        "metrics": {
            f"metric_{i}": {"value": day + i / 10, "ci": [day + i / 10 - 0.05, day + i / 10]}
            for i in range(metrics)
        },
    }
    return history_entry(
        report, model=model, dataset=dataset, samples=10, seed=0, when=START + timedelta(days=day)
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
        "trend-coco-data-coco.png",
        "trend-shapes.png",
    ]
    assert (index.parent / "trend-shapes.png").read_bytes()[:4] == b"\x89PNG"
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


def test_an_append_after_a_cut_short_last_line_starts_on_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    append_history(path, [_light_entry("m", 0)])
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"format": "pytest-modgap-history/1", "model": "m", "da')  # a killed write
    append_history(path, [_light_entry("m", 1)])
    history = read_history(path)
    assert [entry["time"][:10] for entry in history.entries] == ["2026-01-05", "2026-01-06"]
    assert history.skipped == (2,)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_line_separators_inside_a_data_set_path_keep_every_entry(
    tmp_path: Path, separator: str
) -> None:
    path = tmp_path / "history.jsonl"
    dataset = f"manifest:/data/a{separator}b.jsonl"
    entries = [_light_entry("m", 0, dataset), _light_entry("m", 1, dataset)]
    append_history(path, entries[:1])
    # Lines written raw (as earlier versions did, ensure_ascii=False) must read back too.
    with path.open("a", encoding="utf-8", newline="") as handle:
        handle.write(json.dumps(entries[1], ensure_ascii=False) + "\n")
    history = read_history(path)
    assert [entry["dataset"] for entry in history.entries] == [dataset, dataset]
    assert history.skipped == ()
    previous = history.previous("m", dataset)
    assert previous is not None and previous["time"] == "2026-01-06T12:00:00Z"


def test_a_data_set_path_that_is_not_utf8_is_written_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    dataset = "manifest:" + os.fsdecode(b"/data/caf\xe9.jsonl")  # Latin-1 bytes: \udce9
    append_history(path, [_light_entry("m", 0, dataset)])
    (entry,) = read_history(path).entries
    assert entry["dataset"] == dataset
    assert os.fsencode(entry["dataset"]) == b"manifest:/data/caf\xe9.jsonl"


def _peak_bytes(read: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        read()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_previous_run_is_found_in_memory_that_does_not_grow_with_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.jsonl"
    append_history(path, [_light_entry(f"m{day % 3}", day, metrics=24) for day in range(500)])
    size = path.stat().st_size
    found: list[dict[str, Any] | None] = []
    peak = _peak_bytes(lambda: found.append(read_history(path).previous("m2", "shapes")))
    assert found[0] is not None and found[0]["time"].startswith("2027-05-17")  # day 497
    assert peak < size / 20, f"finding the previous run took {peak:,} bytes for a {size:,} file"


def test_every_entry_is_held_in_less_memory_than_the_file(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    written = [_light_entry("m", day, metrics=24) for day in range(500)]
    append_history(path, written)
    size = path.stat().st_size
    held: list[tuple[dict[str, Any], ...]] = []
    peak = _peak_bytes(lambda: held.append(read_history(path).entries))
    assert peak < size, f"reading every entry took {peak:,} bytes for a {size:,} file"
    (entries,) = held
    assert len(entries) == 500
    first = entries[0]["metrics"]
    assert dict(first) == written[0]["metrics"] and "metric_23" in first
    assert first["metric_1"] == {"value": 0.1, "ci": [0.1 - 0.05, 0.1]}


# Any code point, lone surrogates (what Python makes of a file name that is not UTF-8) included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)
FUZZ = settings(max_examples=200, deadline=None)


@FUZZ
@given(models=st.lists(ANY_TEXT, min_size=1, max_size=3), dataset=ANY_TEXT, source=ANY_TEXT)
def test_any_unicode_in_an_entry_reads_back_as_written(
    models: list[str], dataset: str, source: str
) -> None:
    written = [
        _light_entry(model, day, dataset) | {"source": source} for day, model in enumerate(models)
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.jsonl"
        append_history(path, written[:1])
        append_history(path, written[1:])
        history = read_history(path)
        assert history.skipped == ()
        assert [(e["model"], e["dataset"], e["source"]) for e in history.entries] == [
            (model, dataset, source) for model in models
        ]
        assert history.previous(models[-1], dataset) == written[-1]


@FUZZ
@given(
    damage=st.lists(
        ANY_TEXT.map(lambda text: text.encode("utf-8", "surrogatepass")) | st.binary(max_size=40),
        min_size=1,
        max_size=3,
    )
)
def test_damaged_lines_of_any_content_cost_only_themselves(damage: list[bytes]) -> None:
    written = [_light_entry("m", day) for day in range(len(damage) + 1)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.jsonl"
        for entry, garbage in zip(written, damage, strict=False):
            append_history(path, [entry])
            with path.open("ab") as handle:
                handle.write(garbage)  # no newline: as a killed write leaves it
        append_history(path, written[-1:])
        history = read_history(path)
        assert [e["time"] for e in history.entries] == [e["time"] for e in written]
        assert history.previous("m", "shapes") == written[-1]
