"""A check against a baseline's snapshot: this run's vectors and the snapshot's, the same pairs,
compared paired, so each row's change gets its own interval and the pairs that got worse can be
named."""

from __future__ import annotations

import base64
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pytest_modgap.errors import BaselineError
from pytest_modgap.gate.baselines.snapshot import read_snapshot

if TYPE_CHECKING:
    from pytest_modgap.gate.baselines.comparison import Comparison, MetricComparison
    from pytest_modgap.gate.baselines.schema import Baseline
    from pytest_modgap.metrics.measured import MeasuredPairs
    from pytest_modgap.metrics.paired import MetricDifference
    from pytest_modgap.metrics.report import Report

LISTED_PAIRS = 20
"""Pairs per view kept for the JSON report, the HTML report and the job summary."""


def pair_with_snapshot(comparison: Comparison, baseline: Baseline, report: Report) -> Comparison:
    """``comparison`` with the change's interval on every metric row and the pairs that
    got worse, when the entry has a snapshot and the report its vectors; else unchanged.

    The interval is the paired bootstrap interval (``metrics.paired.compare_embeddings``: the same
    resamples of the pairs for both) of metric(this run) - metric(snapshot), moved by the gap
    between the recorded value and the snapshot's recomputed one (its float16 rounding), so it
    stands around the row's change. The verdict is the documented rule, unchanged. The
    snapshot's own metrics and similarity distributions (``recorded_report``) let the report
    draw Figures 2 and 3 of the baseline beside this run's.
    """
    __tracebackhide__ = True
    from pytest_modgap.metrics.engine import measure_embeddings
    from pytest_modgap.metrics.pair_changes import pair_changes
    from pytest_modgap.metrics.paired import compare_embeddings

    entry = baseline.datasets.get(comparison.dataset)
    measured = report.measured
    if entry is None or entry.snapshot is None or measured is None:
        return comparison
    folder = Path(os.path.realpath(baseline.path)).parent
    reference = read_snapshot(folder, entry.snapshot, key=comparison.dataset)
    where = folder / entry.snapshot.file
    if reference.pair_ids.shape != measured.pair_ids.shape or not np.array_equal(
        reference.pair_ids, measured.pair_ids
    ):
        raise BaselineError(
            f"Baseline snapshot {where} of entry {comparison.dataset!r} holds other pairs than "
            f"this run measured (the pairs' content hashes differ), though the entry's fingerprint "
            f"matches: the snapshot does not belong to this entry. Re-record the baseline with "
            f"--modgap-update, or check without the snapshot (ini modgap_snapshots = false)."
        )
    paired = compare_embeddings(
        measured,
        reference,
        ci=report.ci_level if report.ci_level is not None else 0.95,
        n_boot=report.n_boot or 1000,
        seed=report.seed,
        retrieval=measured.retrieval,
    )
    differences = {row.name: row for row in paired}
    changes = pair_changes(measured, reference, limit=LISTED_PAIRS)
    return replace(
        comparison,
        rows=tuple(_with_interval(row, differences) for row in comparison.rows),
        pair_changes=replace(changes, thumbnails=_thumbnails(measured, changes.indices())),
        snapshot=str(where),
        recorded_report=measure_embeddings(
            reference.image, reference.text, **reference.arguments(), ci=None
        ),
    )


def _thumbnails(measured: MeasuredPairs, indices: list[int]) -> dict[int, str]:
    """``data:`` URIs of the listed pairs' images (those that can be read again)."""
    if measured.thumbnail is None:
        return {}
    found = {}
    for index in indices:
        picture = measured.thumbnail(index)
        if picture is not None:
            found[index] = "data:image/png;base64," + base64.b64encode(picture).decode("ascii")
    return found


def _with_interval(
    row: MetricComparison, differences: dict[str, MetricDifference]
) -> MetricComparison:
    found = differences.get(row.name)
    if found is None or found.ci is None:
        return row
    offset = row.change - found.difference
    return replace(row, change_ci=(found.ci[0] + offset, found.ci[1] + offset))
