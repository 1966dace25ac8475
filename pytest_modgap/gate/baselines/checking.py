"""The check itself: compare (or record with ``update``), and fail with the table and the command
that re-records the baseline."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_modgap.errors import BaselineError
from pytest_modgap.gate.baselines.comparison import (
    Comparison,
    _report_model,
    check_tolerance,
    check_tolerances,
    compare,
)
from pytest_modgap.gate.baselines.location import (
    _refuse_non_file,
    load,
    resolve,
    shipped_names,
    similar_names,
)
from pytest_modgap.gate.baselines.paired_check import pair_with_snapshot
from pytest_modgap.gate.baselines.writing import write

if TYPE_CHECKING:
    from pytest_modgap.metrics.report import Report


class BaselineRegression(AssertionError):
    """A report regressed against its baseline; ``comparison`` holds every row."""

    def __init__(self, comparison: Comparison, message: str) -> None:
        super().__init__(message)
        self.comparison = comparison


def record_command(model: str | None, nodeid: str | None, options: Sequence[str] = ()) -> str:
    """``pytest --modgap-model=<spec> [options] --modgap-update <nodeid>``: the (re-)record command.

    ``options`` are the run's own ``--modgap-*`` arguments that change what is measured or where
    it is written. The ``=`` form matters: pytest picks its rootdir (and so the default baseline
    folder) before plugins load, and would take a separate ``<spec>`` directory for a test path.
    """
    parts = ["pytest"]
    if model:
        parts.append("--modgap-model=" + shlex.quote(model))
    parts += options
    parts.append("--modgap-update")
    if nodeid:
        parts.append(shlex.quote(nodeid))
    return " ".join(parts)


def _current_nodeid() -> str | None:
    """The node id of the running pytest test (from PYTEST_CURRENT_TEST), or None outside pytest."""
    current = os.environ.get("PYTEST_CURRENT_TEST")
    return current.rsplit(" ", 1)[0] if current else None


def check(
    report: Report,
    baseline: str,
    *,
    baseline_dir: str | Path,
    tolerance: float | Mapping[str, float] | None = None,
    metrics: Sequence[str] | None = None,
    update: bool = False,
    default_tolerance: float | None = None,
    model: str | None = None,
    nodeid: str | None = None,
    command_options: Sequence[str] = (),
    slices: bool = False,
    entry: str | None = None,
    snapshots: bool = True,
) -> Comparison:
    """Check ``report`` against ``baseline`` (or record it when ``update``); the engine of both
    ``assert_no_regression`` and the fixture's ``check``. ``slices``: check (record) every slice
    of the report too (``Report.slices``).

    Raises BaselineRegression (an AssertionError with the table and the re-record command) on a
    regression and BaselineError when the baseline is missing or cannot be used; returns the
    Comparison otherwise. ``model``, ``command_options`` and ``nodeid`` go into the re-record
    command. ``entry`` names the data set's entry (default: its key, ``dataset_key``).
    ``snapshots``: record the vectors beside the YAML, and check paired against them when they
    are there (False: the recorded numbers alone).
    """
    __tracebackhide__ = True
    check_tolerances(tolerance, "tolerance")
    check_tolerance(default_tolerance, "default_tolerance")
    model = model or _report_model(report)
    nodeid = nodeid or _current_nodeid()
    if update:
        source = f"recorded with: {record_command(model, nodeid, command_options)}"
        return write(
            report,
            baseline,
            baseline_dir,
            metrics=metrics,
            source=source,
            slices=slices,
            entry=entry,
            snapshots=snapshots,
        )
    path, _ = resolve(baseline, baseline_dir)
    _refuse_non_file(path)
    if not path.is_file():
        close = similar_names(baseline, baseline_dir)
        guess = (
            f". Did you mean {' or '.join(repr(name) for name in close)}? If not, record"
            if close
            else "; record"
        )
        raise BaselineError(
            f"Baseline {baseline!r} does not exist yet: no {path} and no shipped baseline of that "
            f"name (shipped: {', '.join(shipped_names())}). Baselines are never created silently"
            f"{guess} this one with: {record_command(model, nodeid, command_options)}"
        )
    loaded = load(baseline, baseline_dir)
    command = None if loaded.shipped else record_command(model, nodeid, command_options)
    comparison = compare(
        report,
        loaded,
        tolerance=tolerance,
        metrics=metrics,
        default_tolerance=default_tolerance,
        slices=slices,
        entry=entry,
        record_hint=command,
    )
    if snapshots:
        comparison = pair_with_snapshot(comparison, loaded, report)
    if comparison.verdict == "regressed":
        raise BaselineRegression(comparison, comparison.explain(command))
    return comparison


def assert_no_regression(
    report: Report,
    baseline: str,
    *,
    baseline_dir: str | Path | None = None,
    tolerance: float | Mapping[str, float] | None = None,
    metrics: Sequence[str] | None = None,
    update: bool = False,
    slices: bool = False,
    entry: str | None = None,
    snapshots: bool = True,
) -> Comparison:
    """Fail (AssertionError with a readable table) if ``report`` regressed against ``baseline``.

    ``baseline`` is a name: ``<baseline_dir>/<name>.yaml`` (``baseline_dir`` defaults to
    ``./baselines``), else a shipped one such as ``paper/jina-embeddings-v4``. ``tolerance``
    overrides every tolerance in the file (one number, or per metric: ``{"alignment": 0.05}``); ``metrics`` restricts the check to those names.
    ``update=True`` records ``report`` instead (never a shipped baseline). ``slices=True`` checks
    (records) each of the report's slices too; the failure names those that regressed, worst
    first. ``entry`` names the data set's entry yourself (default: its key); ``snapshots=False``
    neither writes nor reads the vectors beside the YAML. Usable without the ``modgap`` fixture,
    in or out of pytest. Returns the Comparison.
    """
    __tracebackhide__ = True
    return check(
        report,
        baseline,
        baseline_dir=Path("baselines") if baseline_dir is None else baseline_dir,
        tolerance=tolerance,
        metrics=metrics,
        update=update,
        slices=slices,
        entry=entry,
        snapshots=snapshots,
    )
