"""The report folder: Figures 2 and 3 as PNG files and one self-contained index.html around them.

The page holds the metrics with intervals per model and data set, baseline verdicts and the figures.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_modgap.atomic import write_text_atomic
from pytest_modgap.errors import ModgapError
from pytest_modgap.metrics.catalogue import METRICS
from pytest_modgap.metrics.report import Report

Result = Report | tuple[str, str, Report]
"""A report, labelled by its metadata's model and dataset, or (model, dataset, report)."""

FAILING_VERDICTS = frozenset({"regressed", "worse", "failed", "fail"})
GOOD_VERDICTS = frozenset({"improved", "better"})
_VERDICT_COLUMNS = ("model", "dataset", "baseline", "metric", "verdict")
_SIGNED_COLUMNS = frozenset({"change", "change_ci", "difference"})
"""Verdict columns that are differences: shown with their sign, as the terminal tables show them."""

LABEL_CHARS = 40
"""Model and data set labels longer than this (absolute paths) are shortened to their last path
components in the page; the full text stays in the cell's title attribute (shown on hover)."""

# Every table is as wide as the page and no wider: fixed layout shares the width among the columns,
# and long words (paths, specs) break anywhere instead of pushing columns off a 1200-px page.
_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #1d1d1f; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
h1, h2, p { overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; width: 100%;
        table-layout: fixed; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #e5e5e5; text-align: left;
         overflow-wrap: anywhere; word-break: break-word; vertical-align: top; }
td.num { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; }
th { background: #f5f5f7; }
tr.bad td { background: #fde8e8; } tr.good td { background: #e8f6ec; }
.summary.bad { color: #b00020; font-weight: bold; } .summary.good { color: #1b7f3b; }
.note { color: #555; font-size: 0.9em; }
img { max-width: 100%; border: 1px solid #eee; }
img.thumb { width: 48px; height: 48px; object-fit: contain; border: 0; }
"""


@dataclass(frozen=True)
class _Entry:
    model: str
    dataset: str
    report: Report


def write_report_dir(
    directory: str | Path,
    results: Sequence[Result],
    *,
    verdicts: Sequence[Mapping[str, Any]] | None = None,
    comparisons: Sequence[Mapping[str, Any]] | None = None,
    title: str = "pytest-modgap report",
    worse_pairs: Sequence[tuple[str, Mapping[str, Any]]] | None = None,
) -> Path:
    """Write Figures 2 and 3 and ``index.html`` into ``directory``; return the index's path.

    ``results``: the measured reports (several models are stacked in one figure per data set, as in
    the paper; several data sets get one figure pair each, ``figure2-<data set>.png``). Figure 2 is
    drawn from the reports that have text-text similarities. ``verdicts``: optional baseline checks
    as plain dicts (``model``, ``dataset``, ``baseline``, ``metric``, ``verdict`` and any other
    columns); failing verdicts are highlighted. ``comparisons``: optional rows of paired
    candidate-vs-reference comparisons in the same form (``baseline`` naming the reference model),
    shown in a section of their own. ``worse_pairs``: (heading, ``pairs_worse`` of a check paired
    with its baseline's snapshot), listed with thumbnails, on a pass too. Without matplotlib the
    page is written without figures and says how to install them. Every file is written atomically.
    """
    entries = [_entry(result) for result in results]
    if not entries:
        raise ModgapError("write_report_dir: no results given; pass at least one Report.")
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    by_dataset: dict[str, list[_Entry]] = {}
    for entry in entries:
        by_dataset.setdefault(entry.dataset, []).append(entry)

    figures_missing = figures_unavailable()
    sections = []
    slugs: set[str] = set()
    for dataset, group in by_dataset.items():
        suffix = "" if len(by_dataset) == 1 else "-" + _unique_slug(dataset, slugs)
        figures = [] if figures_missing else _draw_figures(root, dataset, group, suffix=suffix)
        sections.append(_dataset_section(dataset, group, figures))

    body = [f"<h1>{_e(title)}</h1>", _overview(entries, verdicts, comparisons)]
    if figures_missing:
        body.append(f'<p class="note">Figures not drawn: {_e(figures_missing)}</p>')
    if verdicts:
        body.append(_verdict_section("Baseline checks", verdicts))
    if comparisons:
        body.append(_verdict_section("Comparison with the reference model", comparisons))
    for heading, pairs_worse in worse_pairs or ():
        body.append(pairs_worse_section(heading, pairs_worse))
    body.extend(sections)
    index = root / "index.html"
    write_text_atomic(index, html_page(title, body))
    return index


def html_page(title: str, body: Sequence[str]) -> str:
    """A complete, self-contained HTML page (the report's style inline) around ``body``."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def escape(value: object) -> str:
    """``value`` as HTML text, quotes included (safe in attributes too)."""
    return html.escape(str(value), quote=True)


def short_label(text: str, limit: int = LABEL_CHARS) -> str:
    """``text`` as escaped HTML, shortened when longer than ``limit`` characters.

    A path (or a spec holding one) keeps its last components behind an ellipsis
    (``…/checkpoints/candidate``), anything else its start; the full text goes into a ``title``
    attribute, so it shows on hover and stays in the page for search and copy.
    """
    if len(text) <= limit:
        return _e(text)
    parts = text.replace("\\", "/").rstrip("/").split("/")
    if len(parts) == 1:
        shown = text[: limit - 1] + "…"
    else:
        shown = parts[-1]
        for part in reversed(parts[:-1]):
            if len(shown) + len(part) + 1 > limit - 2:
                break
            shown = f"{part}/{shown}"
        shown = "…/" + shown if len(shown) <= limit - 2 else "…" + shown[-(limit - 1) :]
    return f'<span title="{_e(text)}">{_e(shown)}</span>'


def _entry(result: Result) -> _Entry:
    if isinstance(result, Report):
        return _Entry(
            model=str(result.metadata.get("model", "model")),
            dataset=str(result.metadata.get("dataset", "data set")),
            report=result,
        )
    model, dataset, report = result
    return _Entry(model=str(model), dataset=str(dataset), report=report)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _unique_slug(label: str, taken: set[str]) -> str:
    """A file-name-safe form of a data set label, different from the ones already taken."""
    base = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:60] or "dataset"
    slug, number = base, 2
    while slug in taken:
        slug, number = f"{base}-{number}", number + 1
    taken.add(slug)
    return slug


def figures_unavailable() -> str:
    """Why figures cannot be drawn here ('' when they can)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return 'matplotlib is not installed; pip install "pytest-modgap[figures]" adds it.'
    return ""


def _draw_figures(
    root: Path, dataset: str, group: list[_Entry], *, suffix: str
) -> list[tuple[str, Path]]:
    """Draw the data set's figures; (caption, path) of each one drawn."""
    from pytest_modgap.reports.figures import figure2, figure3

    drawable = [(e.model, e.report) for e in group if e.report.distributions is not None]
    with_text2 = [
        (label, report)
        for label, report in drawable
        if report.distributions is not None and report.distributions.text_text is not None
    ]
    drawn = []
    if with_text2:
        path = figure2(
            with_text2,
            root / f"figure2{suffix}.png",
            title=f"Matched image-text vs matched text-text cosine similarity: {dataset}",
        )
        drawn.append(("Figure 2: matched image-text vs matched text-text similarities", path))
    if drawable:
        path = figure3(
            drawable,
            root / f"figure3{suffix}.png",
            title=f"Matched vs non-matching image-text cosine similarity: {dataset}",
        )
        drawn.append(("Figure 3: matched vs non-matching image-text similarities", path))
    return drawn


def _overview(
    entries: list[_Entry],
    verdicts: Sequence[Mapping[str, Any]] | None,
    comparisons: Sequence[Mapping[str, Any]] | None,
) -> str:
    models = list(dict.fromkeys(entry.model for entry in entries))
    datasets = list(dict.fromkeys(entry.dataset for entry in entries))
    lines = [
        f"<p>{len(models)} model{'s' if len(models) > 1 else ''} "
        f"({', '.join(short_label(m) for m in models)}) on {len(datasets)} data "
        f"set{'s' if len(datasets) > 1 else ''} ({', '.join(short_label(d) for d in datasets)}).</p>"
    ]
    if comparisons:
        worse = sum(_verdict_class(c.get("verdict")) == "bad" for c in comparisons)
        text = (
            f"Worse than the reference model on {worse} of {len(comparisons)} metrics."
            if worse
            else f"Not worse than the reference model on any of {len(comparisons)} metrics."
        )
        lines.append(f'<p class="summary {"bad" if worse else "good"}">{_e(text)}</p>')
    if verdicts:
        failing = sum(_verdict_class(v.get("verdict")) == "bad" for v in verdicts)
        status = "bad" if failing else "good"
        text = (
            f"{failing} of {len(verdicts)} baseline checks failed."
            if failing
            else f"All {len(verdicts)} baseline checks passed."
        )
        lines.append(f'<p class="summary {status}">{_e(text)}</p>')
    return "\n".join(lines)


def _verdict_class(verdict: Any) -> str:
    word = str(verdict).strip().lower()
    if word in FAILING_VERDICTS:
        return "bad"
    return "good" if word in GOOD_VERDICTS else ""


def _format(value: Any, *, signed: bool = False) -> str:
    """A verdict cell: numbers to 4 decimals (with their sign when ``signed``), intervals as
    [low, high], None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        value = 0.0 if round(value, 4) == 0 else value  # never "-0.0000"
        return f"{value:+.4f}" if signed else f"{value:.4f}"
    if isinstance(value, list | tuple) and all(isinstance(v, int | float) for v in value):
        return "[" + ", ".join(_format(float(v), signed=signed) for v in value) + "]"
    return str(value)


def _cell(verdict: Mapping[str, Any], column: str, signed_ci: bool) -> str:
    """One verdict cell. A metric without a better direction (text_text_similarity) has no
    tolerance, as in the terminal table; differences (and their intervals) keep their sign."""
    value = verdict.get(column)
    if column == "tolerance" and verdict.get("better") == "none":
        value = None
    signed = column in _SIGNED_COLUMNS or (column == "ci" and signed_ci)
    text = _format(value, signed=signed)
    if column in ("model", "dataset", "baseline") and isinstance(value, str):
        return f"<td>{short_label(value)}</td>"
    if isinstance(value, int | float | list | tuple):
        return f'<td class="num">{_e(text)}</td>'
    return f"<td>{_e(text)}</td>"


def check_rows(check: Mapping[str, Any], **context: Any) -> list[dict[str, Any]]:
    """The verdict rows of one baseline check (a ``Comparison.to_dict()``): the baseline's name
    under ``baseline`` and each metric's recorded value under ``baseline_value``, so the name is
    not overwritten by the number; ``context`` (model, dataset) goes first."""
    rows = []
    for row in check["rows"]:
        values = {key: value for key, value in row.items() if key != "baseline"}
        rows.append(
            {
                **context,
                "baseline": check["baseline"],
                "metric": values.pop("metric"),
                "verdict": values.pop("verdict"),
                "baseline_value": row["baseline"],
                **values,
            }
        )
    return rows


def verdict_table(title: str, verdicts: Sequence[Mapping[str, Any]]) -> str:
    """A titled table of verdict rows (baseline checks or a reference comparison), failures marked."""
    return _verdict_section(title, verdicts)


def _verdict_section(title: str, verdicts: Sequence[Mapping[str, Any]]) -> str:
    extra = [key for v in verdicts for key in v if key not in _VERDICT_COLUMNS]
    columns = [c for c in _VERDICT_COLUMNS if any(c in v for v in verdicts)]
    columns += list(dict.fromkeys(extra))
    # The "ci" of a paired comparison is the interval of its difference: signed like it.
    signed_ci = "difference" in columns
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    rows = []
    for verdict in verdicts:
        css = _verdict_class(verdict.get("verdict"))
        cells = "".join(_cell(verdict, c, signed_ci) for c in columns)
        rows.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return (
        f"<h2>{_e(title)}</h2>\n<table>\n<thead><tr>"
        + head
        + "</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )


_PAIR_VIEWS = (
    ("similarity", "matched similarity dropped most", "cos(image, caption)"),
    ("image_rank", "image to text: true caption fell furthest in rank", "rank (0 = first)"),
    ("caption_rank", "text to image: true image fell furthest in rank", "rank (0 = first)"),
    ("zeroshot_flips", "zero-shot: right before, wrong now", "answer"),
)


def pairs_worse_section(heading: str, pairs_worse: Mapping[str, Any]) -> str:
    """The pairs of a paired baseline check that got worse, one table per view: thumbnail (when
    the image could be read), image, caption, baseline -> now."""
    parts = [f"<h2>Pairs that got worse: {_e(heading)}</h2>"]
    for key, title, unit in _PAIR_VIEWS:
        listed = pairs_worse.get(key) or []
        if not listed:
            continue
        rows = []
        for change in listed:
            uri = change.get("thumbnail")
            picture = (
                f'<img class="thumb" src="{_e(uri)}" alt="">'
                if isinstance(uri, str) and uri.startswith("data:image/png;base64,")
                else ""
            )
            moved = change.get("detail") or (
                f"{_number(change['before'])} → {_number(change['after'])}"
            )
            rows.append(
                f"<tr><td>{picture}</td><td>{short_label(str(change['image']))}</td>"
                f'<td>{_e(change["caption"])}</td><td class="num">{_e(moved)}</td></tr>'
            )
        parts.append(
            f"<h3>{_e(title)}</h3>\n<table>\n<thead><tr><th></th><th>image</th><th>caption</th>"
            f"<th>{_e(unit)}: baseline → now</th></tr></thead>\n<tbody>\n"
            + "\n".join(rows)
            + "\n</tbody>\n</table>"
        )
    return "\n".join(parts)


def _number(value: Any) -> str:
    number = float(value)
    return f"{number:.0f}" if number.is_integer() else f"{number:.4f}"


def metrics_table(results: Sequence[Result]) -> str:
    """The HTML table of every metric with its interval, one column per report (also the metric
    table that the pytest-html integration puts into a test's row)."""
    return _metrics_table([_entry(result) for result in results])


def _metrics_table(group: list[_Entry]) -> str:
    names = [name for name in METRICS if any(name in e.report for e in group)]
    names += [name for e in group for name in e.report if name not in METRICS and name not in names]
    head = '<th style="width: 11em">metric</th><th style="width: 4.5em">better</th>' + "".join(
        f'<th>{short_label(e.model)}<br><span class="note">n = {e.report.n:,}</span></th>'
        for e in group
    )
    rows = []
    for name in names:
        better = METRICS[name].better if name in METRICS else "?"
        title = f' title="{_e(METRICS[name].definition)}"' if name in METRICS else ""
        cells = "".join(
            f'<td class="num">{_e(e.report.format_value(name)) if name in e.report else "—"}</td>'
            for e in group
        )
        rows.append(f"<tr><td{title}>{_e(name)}</td><td>{_e(better)}</td>{cells}</tr>")
    return (
        "<table>\n<thead><tr>"
        + head
        + "</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + ("\n</tbody>\n</table>")
    )


SLICE_COLUMNS = (
    "alignment",
    "centroid_gap",
    "relative_gap",
    "separation",
    "i2t_recall@1",
    "t2i_recall@1",
    "zeroshot_top1",
)
"""The metrics of the per-slice table (those the slices have), in this order."""
SLICE_ORDER = "alignment"


def slice_table(report: Report, model: str) -> str:
    """A table of ``report``'s slices (``Report.slices``), worst ``alignment`` first: each slice's
    pairs and the headline metrics with intervals; the full slice reports are in the JSON."""
    slices = report.slices
    columns = [name for name in SLICE_COLUMNS if any(name in part for part in slices.values())]
    ordered = sorted(
        slices.items(), key=lambda item: item[1].metrics.get(SLICE_ORDER, float("inf"))
    )
    head = '<th style="width: 11em">slice</th><th style="width: 5em">pairs</th>' + "".join(
        f'<th title="{_e(METRICS[name].definition)}">{_e(name)}</th>' for name in columns
    )
    rows = [
        f'<tr><td>{short_label(label)}</td><td class="num">{part.n:,}</td>'
        + "".join(
            f'<td class="num">{_e(part.format_value(name)) if name in part else "—"}</td>'
            for name in columns
        )
        + "</tr>"
        for label, part in ordered
    ]
    return (
        f"<h3>Slices of {short_label(model)} ({len(slices)}, worst {_e(SLICE_ORDER)} first)</h3>\n"
        "<table>\n<thead><tr>"
        + head
        + "</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )


def _dataset_section(dataset: str, group: list[_Entry], figures: list[tuple[str, Path]]) -> str:
    levels = {e.report.ci_level for e in group if e.report.ci_level is not None}
    level = ", ".join(f"{lvl:.0%}" for lvl in sorted(levels)) or "no"
    parts = [
        f"<h2>Data set: {short_label(dataset, 80)}</h2>",
        f'<p class="note">Values with {_e(level)} confidence intervals (basic bootstrap '
        f"over pairs).</p>",
        _metrics_table(group),
        *(slice_table(e.report, e.model) for e in group if e.report.slices),
        _metadata_table(group),
    ]
    for caption, path in figures:
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{encoded}">'
            f'<figcaption class="note">{_e(caption)} ({_e(path.name)})</figcaption></figure>'
        )
    if not figures and not any(e.report.distributions is not None for e in group):
        parts.append(
            '<p class="note">No figures: these reports carry no similarity distributions '
            "(reports read back from JSON keep only the metrics).</p>"
        )
    return "\n".join(parts)


def _metadata_table(group: list[_Entry]) -> str:
    keys = list(dict.fromkeys(k for e in group for k in e.report.metadata if k != "model"))
    if not keys:
        return ""
    head = '<th style="width: 11em">run</th>' + "".join(
        f"<th>{short_label(e.model)}</th>" for e in group
    )
    rows = [
        f"<tr><td>{_e(key)}</td>"
        + "".join(f"<td>{short_label(_format(e.report.metadata.get(key)))}</td>" for e in group)
        + "</tr>"
        for key in keys
    ]
    return (
        "<table>\n<thead><tr>"
        + head
        + "</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + ("\n</tbody>\n</table>")
    )
