"""Figures 2 and 3 of the jina-embeddings-v4 paper (section 8), drawn from a Report's distributions.

One panel per model, stacked on a shared x axis; matplotlib (the "figures" extra) is imported on use.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_modgap.atomic import write_bytes_atomic
from pytest_modgap.errors import ModgapError
from pytest_modgap.metrics.allpairs import OVERLAP_BINS
from pytest_modgap.metrics.report import Report

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

EDGES = np.linspace(-1.0, 1.0, OVERLAP_BINS + 1)
"""The bin edges of every histogram drawn: the 200 equal bins on [−1, 1] of the overlap metrics."""

IMAGE_TEXT_COLOR = "#0072B2"
TEXT_TEXT_COLOR = "#009E73"
NEGATIVE_COLOR = "#E69F00"
"""Okabe-Ito colours: they stay distinguishable for colour-blind readers and in greyscale print."""

_PADDING_BINS = 3
_HEADROOM = 1.6
"""The y axis reaches this multiple of the tallest bar: the top of each panel is the legend's."""
_PANEL_HEIGHT_INCHES = 2.3
_FIGURE_WIDTH_INCHES = 7.5


def figure_data(report: Report) -> dict[str, Any]:
    """The histograms a report's panels show: bin edges, densities and the means marked.

    Keys: ``edges`` (201,), ``positive`` / ``negative`` / ``text_text`` densities (200,) of matched
    image-text, non-matching image-text and matched text-text cosines (``text_text`` is None without
    text2), ``*_counts`` the raw counts, ``means`` (name -> the metric drawn as a vertical line) and
    ``n``. Positives and text-text cosines are binned exactly as the overlap metrics bin them, so
    the overlap of ``positive`` and ``negative`` is the report's ``pos_neg_overlap``. A density
    integrates to 1 over [−1, 1].
    """
    distributions = report.distributions
    if distributions is None:
        raise ModgapError(
            "report: has no similarity distributions (reports read back from JSON keep only the "
            "metrics), so Figures 2 and 3 cannot be drawn from it. Draw them from the Report "
            "that measure() or measure_embeddings() returned."
        )
    positive_counts = _bin_counts(distributions.positive)
    negative_counts = np.asarray(distributions.negative_hist, dtype=np.float64)
    text_text_counts = (
        None if distributions.text_text is None else _bin_counts(distributions.text_text)
    )
    means = {"positive": report["alignment"], "negative": report["negative_similarity"]}
    if "text_text_similarity" in report:
        means["text_text"] = report["text_text_similarity"]
    return {
        "edges": EDGES.copy(),
        "positive": _density(positive_counts),
        "negative": _density(negative_counts),
        "text_text": None if text_text_counts is None else _density(text_text_counts),
        "positive_counts": positive_counts,
        "negative_counts": negative_counts,
        "text_text_counts": text_text_counts,
        "means": means,
        "n": report.n,
    }


def _bin_counts(cosines: np.ndarray) -> np.ndarray:
    """Counts per overlap bin, through the engine's own binning (float32 arithmetic, clamped ends),
    so a cosine on a bin edge lands where the metrics put it."""
    import torch

    from pytest_modgap.metrics.allpairs import histogram_bin

    bins = histogram_bin(torch.from_numpy(np.asarray(cosines, dtype=np.float64)), OVERLAP_BINS)
    return np.bincount(bins.numpy(), minlength=OVERLAP_BINS).astype(np.float64)


def _density(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    width = EDGES[1] - EDGES[0]
    return counts / (total * width) if total > 0 else counts.copy()


@dataclass(frozen=True)
class _Series:
    """One filled histogram of a panel, with the vertical line at its mean."""

    key: str
    label: str
    color: str


_FIGURE2_SERIES = (
    _Series("positive", "matched image-text", IMAGE_TEXT_COLOR),
    _Series("text_text", "matched text-text", TEXT_TEXT_COLOR),
)
_FIGURE3_SERIES = (
    _Series("positive", "matched image-text", IMAGE_TEXT_COLOR),
    _Series("negative", "non-matching image-text", NEGATIVE_COLOR),
)
_MEAN_METRIC = {
    "positive": "alignment",
    "text_text": "text_text_similarity",
    "negative": "negative_similarity",
}


def figure2(
    reports: Sequence[tuple[str, Report]], path: Path, *, title: str | None = None, dpi: int = 150
) -> Path:
    """Figure 2: matched image-text against matched text-text cosine similarities, one panel per model.

    ``reports``: (label, report) per model, drawn top to bottom on a shared x axis (the paper stacks
    OpenAI CLIP, jina-clip-v2 and jina-embeddings-v4 so the gap is seen closing). Every report needs
    text2 (a second caption per pair). The legend gives alignment, text_text_similarity, matched_gap
    and matched_overlap. Writes a PNG to ``path`` atomically and returns ``path``.
    """
    write_bytes_atomic(Path(path), figure2_png(reports, title=title, dpi=dpi))
    return Path(path)


def figure2_png(
    reports: Sequence[tuple[str, Report]], *, title: str | None = None, dpi: int = 150
) -> bytes:
    """Figure 2 as PNG bytes (``figure2`` without the file: for pages that embed it)."""
    for label, report in reports:
        distributions = report.distributions
        if distributions is not None and distributions.text_text is None:
            raise ModgapError(
                f"figure2: the report of {label!r} has no text-text similarities; Figure 2 needs a "
                f"second caption per pair (text2, or a data set with two captions per image)."
            )
    return _render(
        reports,
        series=_FIGURE2_SERIES,
        summary=("matched_gap", "matched_overlap"),
        title=title or "Matched image-text vs matched text-text cosine similarity (cf. Figure 2)",
        dpi=dpi,
    )


def figure3(
    reports: Sequence[tuple[str, Report]], path: Path, *, title: str | None = None, dpi: int = 150
) -> Path:
    """Figure 3: matched against non-matching image-text cosine similarities, one panel per model.

    ``reports``: (label, report) per model, stacked on a shared x axis. Negatives come from the
    report's 200-bin histogram of every non-matching pair; positives are binned the same way. The
    legend gives alignment, negative_similarity, separation, auc and pos_neg_overlap. Writes a PNG
    to ``path`` atomically and returns ``path``.
    """
    write_bytes_atomic(Path(path), figure3_png(reports, title=title, dpi=dpi))
    return Path(path)


def figure3_png(
    reports: Sequence[tuple[str, Report]], *, title: str | None = None, dpi: int = 150
) -> bytes:
    """Figure 3 as PNG bytes (``figure3`` without the file: for pages that embed it)."""
    return _render(
        reports,
        series=_FIGURE3_SERIES,
        summary=("separation", "auc", "pos_neg_overlap"),
        title=title or "Matched vs non-matching image-text cosine similarity (cf. Figure 3)",
        dpi=dpi,
    )


def _render(
    reports: Sequence[tuple[str, Report]],
    *,
    series: tuple[_Series, ...],
    summary: tuple[str, ...],
    title: str,
    dpi: int,
) -> bytes:
    if not reports:
        raise ModgapError("figures: no reports given; pass at least one (label, report) pair.")
    figure_class, canvas_class = matplotlib_classes()
    panels = [(label, report, figure_data(report)) for label, report in reports]
    low, high = _data_range([data[s.key] for _, _, data in panels for s in series])

    figure: Figure = figure_class(
        figsize=(_FIGURE_WIDTH_INCHES, 0.9 + _PANEL_HEIGHT_INCHES * len(panels)),
        layout="constrained",
    )
    canvas_class(figure)
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, report, data) in zip(axes, panels, strict=True):
        _panel(ax, label, report, data, series, summary)
    axes[-1].set_xlim(low, high)
    axes[-1].set_xlabel("cosine similarity")
    fit_title(figure, title)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _panel(
    ax: Axes,
    label: str,
    report: Report,
    data: dict[str, Any],
    series: tuple[_Series, ...],
    summary: tuple[str, ...],
) -> None:
    edges = data["edges"]
    for item in series:
        density = data[item.key]
        metric = _MEAN_METRIC[item.key]
        ax.stairs(density, edges, fill=True, color=item.color, alpha=0.35, linewidth=0)
        ax.stairs(
            density,
            edges,
            color=item.color,
            linewidth=1.2,
            label=f"{item.label}: mean {report[metric]:.3f} ({metric})",
        )
        # The line stops at the tallest bar so it never runs through the legend above it.
        ax.axvline(
            report[metric], ymax=1.0 / _HEADROOM, color=item.color, linestyle="--", linewidth=1.2
        )
    legend_title = "   ".join(f"{name} {report[name]:.3f}" for name in summary if name in report)
    ax.legend(
        title=legend_title, loc="upper left", fontsize=8, title_fontsize=8, frameon=False
    ).get_title().set_fontweight("bold")
    title = ax.set_title(f"{label}  (n = {report.n:,} pairs)", loc="left", fontsize=10)
    # The panel's width before the layout runs: the layout only widens it.
    fit_text(title, ax.get_position().width * ax.figure.bbox.width)
    ax.set_ylabel("density")
    ax.set_ylim(bottom=0.0, top=_top(data, series))
    ax.spines[["top", "right"]].set_visible(False)


def _top(data: dict[str, Any], series: tuple[_Series, ...]) -> float:
    peak = max(float(np.max(data[item.key])) for item in series)
    return peak * _HEADROOM if peak > 0 else 1.0


def _data_range(densities: Sequence[np.ndarray]) -> tuple[float, float]:
    """The x range that holds every non-empty bin of every panel, a few bins wider on each side."""
    occupied = np.flatnonzero(np.any(np.stack(densities) > 0, axis=0))
    if occupied.size == 0:
        return -1.0, 1.0
    first = max(0, int(occupied[0]) - _PADDING_BINS)
    last = min(OVERLAP_BINS, int(occupied[-1]) + 1 + _PADDING_BINS)
    return float(EDGES[first]), float(EDGES[last])


_TITLE_WIDTH_SHARE = 0.96
"""The share of the figure's width a title may fill: a little room is left at each edge."""
_MIN_COLUMNS = 12
_BREAKS = re.compile(r"(?<=[\s/\\:,])")
"""Where a wrapped title may break: after a space, a path separator, a colon or a comma."""


def fit_title(figure: Figure, title: str, *, fontsize: float = 11) -> None:
    """Set ``title`` above the whole figure, wrapped onto as many lines as it needs.

    A title names the data set spec, often a long path: set as one line it runs past both edges
    of a centred title and is cut there, losing the very part that tells two data sets apart.
    The figure needs its canvas (for the text's measured width).
    """
    fit_text(figure.suptitle(title, fontsize=fontsize), figure.bbox.width * _TITLE_WIDTH_SHARE)


def fit_text(text: Text, width: float) -> None:
    """Wrap ``text`` (a title on a figure with a canvas) until it is at most ``width`` pixels
    wide, breaking after spaces, path separators, colons and commas where it can."""
    original = displayable(text.get_text())
    text.set_text(original)
    widest = max(map(len, original.splitlines()), default=0)
    measured = text.get_window_extent().width
    while measured > width and widest > _MIN_COLUMNS:
        # Characters are about equally wide: shorten the lines in proportion to the excess.
        columns = max(_MIN_COLUMNS, min(widest - 1, int(widest * width / measured)))
        text.set_text(wrap_title(original, columns))
        widest = max(map(len, text.get_text().splitlines()))
        measured = text.get_window_extent().width


def displayable(text: str) -> str:
    """``text`` with what a UTF-8 encoder refuses written as escapes: a file name that is not
    UTF-8 reaches Python with lone surrogates (``caf\\udce9``), which matplotlib's font code and
    a UTF-8 page cannot take; its bytes are shown as Python writes them (``caf\\xe9``)."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no file name gives (e.g. from a hand-edited file)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def wrap_title(text: str, columns: int) -> str:
    """``text`` on lines of at most ``columns`` characters, broken at ``_BREAKS`` where it can
    and inside a part only when the part alone is longer than a line; only the spaces at the
    breaks are dropped."""
    lines: list[str] = []
    line = ""
    for piece in _BREAKS.split(text):
        if line and len(line) + len(piece.rstrip()) > columns:
            lines.append(line.rstrip())
            line = ""
        while len(piece.rstrip()) > columns:
            lines.append(piece[:columns])
            piece = piece[columns:]
        line += piece
    lines.append(line.rstrip())
    return "\n".join(part for part in lines if part)


def matplotlib_classes() -> tuple[Any, Any]:
    """matplotlib's Figure and Agg canvas: no pyplot, so no global state and no display needed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ModgapError(
            f"Drawing Figures 2 and 3 needs matplotlib ({exc}). Install it with "
            f'pip install "pytest-modgap[figures]".'
        ) from exc
    return Figure, FigureCanvasAgg
