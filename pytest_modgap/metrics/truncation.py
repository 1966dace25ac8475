"""Matryoshka sweeps: measure the same embeddings truncated to several prefix dimensions.

Shows how the modality gap and alignment change when a Matryoshka model's vectors are cut short.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from pytest_modgap.errors import ModgapInputError
from pytest_modgap.metrics.catalogue import METRICS
from pytest_modgap.metrics.engine import measure_embeddings
from pytest_modgap.metrics.report import Report


def truncate(embeddings: np.ndarray, dim: int) -> np.ndarray:
    """The first ``dim`` components of every row (a Matryoshka prefix), not renormalised.

    ``measure_embeddings`` L2-normalises rows itself, so the prefix is all a sweep needs.
    """
    array = np.asarray(embeddings)
    if array.ndim != 2:
        raise ModgapInputError(
            f"truncate: embeddings have shape {array.shape}; expected (N, d), one row per pair."
        )
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
        raise ModgapInputError(f"truncate: dim is {dim!r}; expected a positive integer.")
    if dim > array.shape[1]:
        raise ModgapInputError(
            f"truncate: dim {dim} exceeds the embedding size {array.shape[1]}; a Matryoshka "
            f"prefix can only be shorter than the vector. Pick dims of at most {array.shape[1]}."
        )
    return array[:, :dim]


def measure_truncations(
    image: Any,
    text: Any,
    dims: Iterable[int],
    *,
    text2: Any = None,
    groups: Any = None,
    ci: float | None = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[int, Report]:
    """A Report per prefix dimension in ``dims`` (ascending), from the same pairs and seed.

    Arguments are those of ``measure_embeddings``; each report's ``metadata`` has ``truncate_dim``.
    Every dimension is checked before any is measured, so a bad one fails fast.
    """
    image, text = np.asarray(image), np.asarray(text)
    second = None if text2 is None else np.asarray(text2)
    chosen = sorted(set(dims))
    if not chosen:
        raise ModgapInputError("dims: is empty; give at least one prefix dimension, e.g. 128.")
    for dim in chosen:
        for array in (image, text) if second is None else (image, text, second):
            truncate(array, dim)
    return {
        dim: measure_embeddings(
            truncate(image, dim),
            truncate(text, dim),
            text2=None if second is None else truncate(second, dim),
            groups=groups,
            ci=ci,
            n_boot=n_boot,
            seed=seed,
        ).with_metadata(truncate_dim=dim)
        for dim in chosen
    }


def sweep_table(reports: dict[int, Report], metrics: Sequence[str] | None = None) -> str:
    """The metrics side by side, one column per dimension: ``value ±h``, h half the CI's width.

    ``metrics``: the rows to show (default: every metric all reports have, in report order).
    """
    if not reports:
        raise ModgapInputError("reports: is empty; measure at least one dimension first.")
    dims = sorted(reports)
    common = [name for name in reports[dims[0]] if all(name in reports[d] for d in dims)]
    names = common if metrics is None else list(metrics)
    unknown = [name for name in names if name not in common]
    if unknown:
        raise ModgapInputError(
            f"metrics: {', '.join(unknown)} not in every report; available: {', '.join(common)}."
        )
    level = reports[dims[0]].ci_level
    header = ["metric", "better", *(f"d={dim}" for dim in dims)]
    rows = [
        [name, METRICS[name].better if name in METRICS else "?"]
        + [_cell(reports[dim], name) for dim in dims]
        for name in names
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    note = (
        f"± is half the width of the {level:.0%} interval"
        if level is not None
        else "no intervals (ci=None)"
    )
    return "\n".join([*lines, f"({note}; n = {reports[dims[0]].n} pairs)"])


def _cell(report: Report, name: str) -> str:
    value = f"{report[name]:.4f}"
    if name not in report.ci:
        return value
    low, high = report.ci[name]
    return f"{value} ±{(high - low) / 2:.4f}"
