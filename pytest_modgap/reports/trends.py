"""Trends over a run history: each metric over the recorded runs with its interval band, one figure
per data set, and the history page (``modgap history PATH --report-dir DIR``).
"""

from __future__ import annotations

import base64
import io
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_modgap.atomic import write_bytes_atomic, write_text_atomic
from pytest_modgap.metrics.catalogue import METRICS
from pytest_modgap.reports.history import CHANGE_METRICS, History, run_label

_COLUMNS = 3
_PANEL_INCHES = (3.4, 2.3)
_MAX_TICKS = 12
_SLUG_CHARS = 60
_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
"""Okabe-Ito colours, one per model spec (then repeated)."""


def dataset_groups(entries: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Entries per data set (``shapes``, ``shapes @128`` for a Matryoshka dimension), oldest first."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in sorted(entries, key=lambda entry: str(entry["time"])):
        dim = entry.get("truncate_dim")
        label = entry["dataset"] if dim is None else f"{entry['dataset']} @{dim}"
        groups.setdefault(label, []).append(entry)
    return groups


def trend_figure(entries: Sequence[dict[str, Any]], path: Path, *, title: str) -> Path:
    """Draw every metric of ``entries`` (one data set) over the runs, oldest left, as a PNG.

    One panel per metric; one line per model spec, each point a run with its confidence interval
    as a band (a spec measured once is a point with an error bar); x ticks name the runs by time
    and git commit. Needs matplotlib (the "figures" extra); written atomically.
    """
    from pytest_modgap.reports.figures import displayable, fit_title, matplotlib_classes

    figure_class, canvas_class = matplotlib_classes()
    names = [name for name in METRICS if any(name in e["metrics"] for e in entries)]
    names += sorted({n for e in entries for n in e["metrics"] if n not in METRICS})
    rows = -(-len(names) // _COLUMNS)
    figure = figure_class(
        figsize=(_PANEL_INCHES[0] * _COLUMNS, 0.8 + _PANEL_INCHES[1] * rows), layout="constrained"
    )
    canvas_class(figure)
    axes = figure.subplots(rows, _COLUMNS, squeeze=False).ravel()
    models = list(dict.fromkeys(entry["model"] for entry in entries))
    ticks = [displayable(tick) for tick in run_ticks(entries)]
    step = max(1, -(-len(ticks) // _MAX_TICKS))
    for number, (ax, name) in enumerate(zip(axes, names, strict=False)):
        for index, model in enumerate(models):
            _series(ax, entries, name, model, _COLORS[index % len(_COLORS)])
        better = METRICS[name].better if name in METRICS else "?"
        shown = displayable(name)
        ax.set_title(f"{shown} ({better} is better)" if better != "none" else shown, fontsize=9)
        ax.set_xlim(-0.5, len(entries) - 0.5)
        # Run labels only under the lowest panel of each column: every panel shares the runs.
        lowest = number + _COLUMNS >= len(names)
        ax.set_xticks(
            range(0, len(ticks), step), ticks[::step] if lowest else [], fontsize=7, rotation=45
        )
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", color="#eeeeee", linewidth=0.6)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes[len(names) :]:
        ax.set_axis_off()
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", fontsize=8, frameon=False)
    fit_title(figure, title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def run_ticks(entries: Sequence[dict[str, Any]]) -> list[str]:
    """Each run's x label, all different: its date and commit (date and time to the minute when no
    commit was recorded); runs that would share a label get the time to the second, and runs of
    the same second (two models measured in one run) a number."""
    short = [_tick(entry, seconds=False) for entry in entries]
    shared = Counter(short)
    ticks = [
        _tick(entry, seconds=True) if shared[tick] > 1 else tick
        for entry, tick in zip(entries, short, strict=True)
    ]
    shared = Counter(ticks)
    seen: Counter[str] = Counter()
    numbered = []
    for tick in ticks:
        if shared[tick] > 1:
            seen[tick] += 1
            tick = f"{tick} #{seen[tick]}"
        numbered.append(tick)
    return numbered


def _tick(entry: dict[str, Any], *, seconds: bool) -> str:
    time = str(entry["time"])
    commit = entry.get("git_commit")
    commit = commit[:7] if isinstance(commit, str) else None
    if seconds:
        return f"{time[:10]}\n{time[11:19]}" + (f" {commit}" if commit else "")
    return f"{time[:10]}\n{commit or time[11:16]}"


def _series(ax: Any, entries: Sequence[dict[str, Any]], name: str, model: str, color: str) -> None:
    """One model spec's runs of one metric: the values, joined, and the interval band."""
    from pytest_modgap.reports.figures import displayable

    points = [
        (index, entry["metrics"][name])
        for index, entry in enumerate(entries)
        if entry["model"] == model and name in entry["metrics"]
    ]
    if not points:
        return
    xs = [index for index, _ in points]
    values = [float(metric["value"]) for _, metric in points]
    lows = [
        float(m["ci"][0]) if m.get("ci") else v for (_, m), v in zip(points, values, strict=False)
    ]
    highs = [
        float(m["ci"][1]) if m.get("ci") else v for (_, m), v in zip(points, values, strict=False)
    ]
    if len(points) == 1:
        ax.errorbar(
            xs,
            values,
            yerr=[[values[0] - lows[0]], [highs[0] - values[0]]],
            fmt="o",
            color=color,
            markersize=4,
            capsize=3,
            label=displayable(model),
        )
        return
    ax.fill_between(xs, lows, highs, color=color, alpha=0.2, linewidth=0)
    ax.plot(
        xs, values, marker="o", markersize=3, color=color, linewidth=1.2, label=displayable(model)
    )


def write_history_report(history: History, directory: str | Path) -> Path:
    """``index.html`` in ``directory``: per data set, the trend figure (when matplotlib is there)
    and a table of the runs with their key metrics; returns the index's path."""
    from pytest_modgap.reports.figures import displayable
    from pytest_modgap.reports.html import escape, figures_unavailable, html_page, short_label

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    missing = figures_unavailable()
    groups = dataset_groups(history.entries)
    body = [
        f"<h1>Run history: {escape(history.path.name)}</h1>",
        f"<p>{len(history.entries)} recorded measurement{'s' if len(history.entries) != 1 else ''}"
        f" of {len(groups)} data set{'s' if len(groups) != 1 else ''} in "
        f"{short_label(str(history.path))}.</p>",
    ]
    if history.skipped:
        lines = ", ".join(str(number) for number in history.skipped[:10])
        body.append(f'<p class="note">Lines skipped (not history entries): {escape(lines)}</p>')
    if missing:
        body.append(f'<p class="note">Figures not drawn: {escape(missing)}</p>')
    names: set[str] = set()
    for dataset, entries in groups.items():
        body.append(f"<h2>Data set: {escape(dataset)}</h2>")
        if not missing:
            name = f"trend-{_file_slug(dataset, names)}.png"
            path = trend_figure(entries, root / name, title=f"Metrics over the runs: {dataset}")
            encoded = base64.b64encode(path.read_bytes()).decode("ascii")
            body.append(
                f'<figure><img alt="Trends on {escape(dataset)}" '
                f'src="data:image/png;base64,{encoded}"><figcaption class="note">Each metric '
                f"over the runs, oldest left, with its confidence interval as a band "
                f"({escape(path.name)}).</figcaption></figure>"
            )
        body.append(_runs_table(entries))
    index = root / "index.html"
    # Data set and model names from file names that are not UTF-8 are shown as escapes.
    write_text_atomic(index, displayable(html_page("pytest-modgap run history", body)))
    return index


def _file_slug(label: str, taken: set[str]) -> str:
    """A file-name-safe form of a data set label (``coco:/data/coco @128`` ->
    ``coco-data-coco-128``), numbered when another label already gave the same one."""
    base = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:_SLUG_CHARS] or "dataset"
    slug, number = base, 2
    while slug in taken:
        slug, number = f"{base}-{number}", number + 1
    taken.add(slug)
    return slug


def _runs_table(entries: Sequence[dict[str, Any]]) -> str:
    from pytest_modgap.reports.html import escape, short_label

    head = "<th>run</th><th>model</th><th>n</th>" + "".join(
        f"<th>{escape(name)}</th>" for name in CHANGE_METRICS
    )
    rows = []
    for entry in entries:
        cells = [
            f"<td>{escape(run_label(entry))}</td>",
            f"<td>{short_label(str(entry['model']))}</td>",
            f'<td class="num">{escape(entry.get("n", "—"))}</td>',
        ]
        for name in CHANGE_METRICS:
            metric = entry["metrics"].get(name)
            cells.append(f'<td class="num">{escape(_value(metric))}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<table>\n<thead><tr>"
        + head
        + "</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )


def _value(metric: dict[str, Any] | None) -> str:
    if metric is None:
        return "—"
    text = f"{float(metric['value']):.4f}"
    ci = metric.get("ci")
    return text if not ci else f"{text} [{float(ci[0]):.4f}, {float(ci[1]):.4f}]"
