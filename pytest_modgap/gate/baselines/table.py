"""The comparison table a failing check prints: one aligned row per metric, regressions marked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_modgap.gate.baselines.comparison import MetricComparison


def _table(
    rows: Sequence[MetricComparison], ci_level: float | None, *, slices: bool = False
) -> str:
    """The aligned comparison table of ``rows`` (a slice column first with ``slices``)."""
    level = f"{ci_level:.0%} CI" if ci_level is not None else "no CI"
    header: tuple[str, ...] = (
        "metric",
        "baseline",
        f"obtained ({level})",
        "change (paired CI)" if any(row.change_ci is not None for row in rows) else "change",
        "tolerance",
        "verdict",
    )
    cells: list[tuple[str, ...]] = [
        (
            row.name,
            f"{row.baseline:.4f}",
            _with_ci(row.obtained, row.ci),
            _change_text(row.change, row.change_ci),
            f"{row.tolerance:.4f}" if row.better != "none" else "-",
            _verdict_text(row),
        )
        for row in rows
    ]
    if slices:
        header = ("slice", *header)
        cells = [(str(row.slice), *cell) for row, cell in zip(rows, cells, strict=True)]
    widths = [max(len(line[i]) for line in (header, *cells)) for i in range(len(header))]

    def line(marker: str, values: Sequence[str]) -> str:
        text = "  ".join(value.ljust(width) for value, width in zip(values, widths, strict=True))
        return f"{marker} {text}".rstrip()

    lines = [
        line(">" if row.regressed else " ", cell) for row, cell in zip(rows, cells, strict=True)
    ]
    return "\n".join([line(" ", header), *lines])


def _with_ci(value: float, ci: tuple[float, float] | None) -> str:
    """``0.7312 [0.7201, 0.7420]``."""
    return f"{value:.4f}" if ci is None else f"{value:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]"


def _change_text(change: float, ci: tuple[float, float] | None) -> str:
    """``+0.0123`` or, paired with a snapshot, ``+0.0123 [+0.0101, +0.0145]``."""
    return f"{change:+.4f}" if ci is None else f"{change:+.4f} [{ci[0]:+.4f}, {ci[1]:+.4f}]"


def _verdict_text(row: MetricComparison) -> str:
    """The verdict column, with the direction spelled out for a regression."""
    if row.regressed:
        return f"REGRESSED ({row.better} is better)"
    return row.verdict
