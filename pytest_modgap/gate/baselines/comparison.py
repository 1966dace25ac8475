"""Comparing a report with its baseline entry: rows, verdicts, tolerances and the failure text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_modgap.errors import BaselineError
from pytest_modgap.gate.baselines.identity import (
    entry_key,
    report_identity,
    report_run,
    report_spec,
    run_notes,
)
from pytest_modgap.gate.baselines.location import legacy_dataset_key
from pytest_modgap.gate.baselines.parsing import _finite
from pytest_modgap.gate.baselines.quoting import short
from pytest_modgap.gate.baselines.schema import DEFAULT_TOLERANCE, Baseline, DatasetBaseline
from pytest_modgap.gate.baselines.table import _table
from pytest_modgap.metrics.catalogue import METRICS

if TYPE_CHECKING:
    from pytest_modgap.metrics.pair_changes import PairChange, PairChanges
    from pytest_modgap.metrics.report import Report

Limits = tuple["float | Mapping[str, float] | None", "float | None", "float | None"]
"""The check's tolerance (one number, or per metric), the file's and the default."""

FAILURE_PAIRS = 5
"""Pairs per view that a failure message lists (the JSON report and the HTML list 20)."""


@dataclass(frozen=True)
class MetricComparison:
    """One row of the comparison table; ``verdict`` is ok, improved, REGRESSED or info."""

    name: str
    baseline: float
    obtained: float
    ci: tuple[float, float] | None
    tolerance: float
    better: str
    verdict: str
    slice: str | None = None
    change_ci: tuple[float, float] | None = None
    """The change's own interval, from a paired comparison with the baseline's snapshot (the same
    pairs, resampled together); None without a snapshot."""

    @property
    def change(self) -> float:
        """obtained - baseline."""
        return self.obtained - self.baseline

    @property
    def excess(self) -> float:
        """How far the metric moved the worse way beyond its tolerance (ranks regressions)."""
        worse = -self.change if self.better == "higher" else self.change
        return worse - self.tolerance

    @property
    def regressed(self) -> bool:
        """True when this metric moved the worse way by more than its tolerance."""
        return self.verdict == "REGRESSED"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, for the --modgap-json artefact and xdist workeroutput."""
        return {
            "metric": self.name,
            "baseline": self.baseline,
            "obtained": self.obtained,
            "ci": list(self.ci) if self.ci is not None else None,
            "change": self.change,
            "change_ci": list(self.change_ci) if self.change_ci is not None else None,
            "tolerance": self.tolerance,
            "better": self.better,
            "verdict": self.verdict,
            **({} if self.slice is None else {"slice": self.slice}),
        }


@dataclass(frozen=True)
class Comparison:
    """The outcome of checking one report against one baseline entry.

    ``verdict`` is ``passed``, ``regressed`` or ``updated`` (the baseline was written instead).
    ``slice_rows`` compare the recorded slices (``check(..., slices=True)``), each row naming its
    slice.
    """

    baseline: str
    path: Path
    dataset: str
    n: int
    model: str | None
    rows: tuple[MetricComparison, ...]
    verdict: str
    ci_level: float | None = None
    slice_rows: tuple[MetricComparison, ...] = ()
    notes: tuple[str, ...] = ()
    """Options that move vectors slightly (device type, dtype, versions) and differ from the
    recorded run: named beside the table, never a reason to refuse."""
    pair_changes: PairChanges | None = None
    """With a snapshot: the pairs, images and classes that got worse (20 per view at most)."""
    snapshot: str | None = None
    """The snapshot file the check was paired with."""
    recorded_report: Report | None = None
    """With a snapshot: the metrics and similarity distributions of the baseline's vectors (for
    Figures 2 and 3 of the baseline beside the candidate); not part of ``to_dict``."""

    @property
    def regressed(self) -> tuple[MetricComparison, ...]:
        """The rows of the whole data set that regressed."""
        return tuple(row for row in self.rows if row.regressed)

    @property
    def regressed_slices(self) -> tuple[MetricComparison, ...]:
        """The slice rows that regressed, worst first (furthest beyond their tolerance)."""
        worse = [row for row in self.slice_rows if row.regressed]
        return tuple(sorted(worse, key=lambda row: row.excess, reverse=True))

    def table(self) -> str:
        """metric | baseline | obtained (CI) | change | tolerance | verdict; regressed rows: >."""
        return _table(self.rows, self.ci_level)

    def slice_table(self) -> str:
        """The regressed slice rows, worst first, with a slice column."""
        return _table(self.regressed_slices, self.ci_level, slices=True)

    def explain(self, command: str | None = None) -> str:
        """The failure message: what regressed, the table, and what to do next."""
        worse = self.regressed
        names = ", ".join(row.name for row in worse)
        sliced = self.regressed_slices
        slice_names = ", ".join(dict.fromkeys(str(row.slice) for row in sliced))
        what = f"{len(worse)} of {len(self.rows)} metrics regressed ({names})"
        if sliced:
            regressed = f"slices {slice_names} (worst first)"
            what = f"{what} and {regressed}" if worse else f"{regressed} regressed"
        lines = [
            f"modgap: {what} against "
            f"baseline {self.baseline!r} ({self.path}, data set {self.dataset!r}, n={self.n}"
            f"{', model ' + self.model if self.model else ''}):",
            "",
            self.table(),
            "",
        ]
        if sliced:
            lines += ["Slices that regressed, worst first:", self.slice_table(), ""]
        lines += self._context_lines()
        if command is not None:
            lines += ["If this change is intended, re-record the baseline with:", f"  {command}"]
        else:
            lines.append(
                "This is a published baseline and is never re-recorded. If this change is intended,"
                " check against a baseline of your own name and record it with --modgap-update."
            )
        return "\n".join(lines)

    def _context_lines(self) -> list[str]:
        """How the change was measured, the notes, and the pairs that got worse (5 per view)."""
        lines: list[str] = []
        if self.snapshot is not None:
            lines += [
                f"The change column is paired: this run against the baseline's snapshot of the "
                f"same {self.n} pairs ({self.snapshot}), with the change's own interval.",
                "",
            ]
        if self.notes:
            lines += ["Note: recorded in another setting (vectors may move slightly):"]
            lines += [f"  - {note}" for note in self.notes] + [""]
        if self.pair_changes is not None:
            for title, changes in self.pair_changes.limited(FAILURE_PAIRS).sections():
                lines.append(f"Pairs that got worse, {title}:")
                lines += [f"  {_pair_line(change)}" for change in changes]
                lines.append("")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, for the --modgap-json artefact and xdist workeroutput."""
        return {
            "baseline": self.baseline,
            "path": str(self.path),
            "dataset": self.dataset,
            "n": self.n,
            "model": self.model,
            "verdict": self.verdict,
            "rows": [row.to_dict() for row in self.rows],
            **({"notes": list(self.notes)} if self.notes else {}),
            **({"snapshot": self.snapshot} if self.snapshot is not None else {}),
            **(
                {"pairs_worse": self.pair_changes.to_dict()}
                if self.pair_changes is not None
                else {}
            ),
            **(
                {}
                if not self.slice_rows
                else {
                    "slices": [row.to_dict() for row in self.slice_rows],
                    "regressed_slices": list(
                        dict.fromkeys(str(row.slice) for row in self.regressed_slices)
                    ),
                }
            ),
        }


def compare(
    report: Report,
    baseline: Baseline,
    *,
    tolerance: float | Mapping[str, float] | None = None,
    metrics: Sequence[str] | None = None,
    default_tolerance: float | None = None,
    slices: bool = False,
    entry: str | None = None,
    record_hint: str | None = None,
) -> Comparison:
    """Compare ``report`` with its baseline entry (``entry``, else its data set's key), row by row
    (no exception on a regression: the Comparison's ``verdict`` says so). A BaselineError when they
    cannot be compared: no such entry, or an entry that measured something else (other pairs,
    samples, seed, templates or truncation), each difference named, with ``record_hint`` (the
    command that records the entry anew). With ``slices``, every recorded slice is compared too.
    """
    __tracebackhide__ = True
    tolerance = check_tolerances(tolerance, "tolerance")
    default_tolerance = check_tolerance(default_tolerance, "default_tolerance")
    key = entry_key(report, entry)
    found = baseline.datasets.get(key)
    if found is None and baseline.legacy and entry is None:
        key = legacy_dataset_key(report_spec(report))
        dim = report.metadata.get("truncate_dim")
        key = key if dim is None else f"{key}@{dim}"
        found = baseline.datasets.get(key)
    if found is None:
        raise BaselineError(
            f"Baseline {baseline.name!r} ({baseline.path}) has no entry for data set {key!r}; it "
            f"records {', '.join(sorted(baseline.datasets))}. Measure one of those data sets, or "
            f"add {key!r} to this baseline with --modgap-update"
            f"{'' if not baseline.shipped else ' under a name of your own'}."
        )
    if found.n != report.n:
        raise BaselineError(
            f"Baseline {baseline.name!r} ({baseline.path}) recorded data set {key!r} with "
            f"n={found.n} pairs, but this report measured n={report.n}; values from different "
            f"sample counts are not comparable. Measure with samples={found.n}, or re-record "
            f"with --modgap-update."
        )
    notes: tuple[str, ...] = ()
    if found.identity is not None:
        _refuse_other_measurements(baseline, key, found, report, record_hint)
        notes = tuple(run_notes(found.run, report_run(report)))
    names = _selected(found, report, baseline, metrics)
    limits = (tolerance, baseline.tolerance, default_tolerance)
    rows = _rows(found, report, names, limits)
    slice_rows = _slice_rows(found, report, baseline, key, metrics, limits) if slices else []
    regressed = any(row.regressed for row in (*rows, *slice_rows))
    verdict = "regressed" if regressed else "passed"
    return Comparison(
        slice_rows=tuple(slice_rows),
        baseline=baseline.name,
        path=baseline.path,
        dataset=key,
        n=report.n,
        model=_report_model(report),
        rows=tuple(rows),
        verdict=verdict,
        ci_level=report.ci_level,
        notes=notes,
    )


def _refuse_other_measurements(
    baseline: Baseline, key: str, found: DatasetBaseline, report: Report, record_hint: str | None
) -> None:
    """A BaselineError naming every way this run measured something else than the entry."""
    __tracebackhide__ = True
    assert found.identity is not None
    differences = found.identity.differences(report_identity(report))
    if not differences:
        return
    listed = "; ".join(differences)
    record = f" Record the entry anew with: {record_hint}." if record_hint else ""
    raise BaselineError(
        f"Baseline {baseline.name!r} ({baseline.path}) entry {key!r} measured something else than "
        f"this run, so the two cannot be compared: {listed}. Measure what the entry records, "
        f"record a new entry for this data set under its own name (entry='NAME'), or, if the "
        f"change is intended, re-record this one.{record}"
    )


def _rows(
    entry: DatasetBaseline,
    report: Report,
    names: Sequence[str],
    limits: Limits,
    slice_name: str | None = None,
) -> list[MetricComparison]:
    """One compared row per metric name; ``limits``: the check's (one number, or per metric),
    the file's and the default tolerance, around the metric's own."""
    tolerance, file_tolerance, default_tolerance = limits
    rows = []
    for name in names:
        recorded = entry.metrics[name]
        given = tolerance.get(name) if isinstance(tolerance, Mapping) else tolerance
        limit = _first(given, recorded.tolerance, file_tolerance, default_tolerance)
        row = _row(
            name, recorded.value, report[name], report.ci.get(name), limit, METRICS[name].better
        )
        rows.append(row if slice_name is None else replace(row, slice=slice_name))
    return rows


def _slice_rows(
    entry: DatasetBaseline,
    report: Report,
    baseline: Baseline,
    key: str,
    metrics: Sequence[str] | None,
    limits: Limits,
) -> list[MetricComparison]:
    """The rows of every slice the entry records; a BaselineError when there is none, or when the
    report lacks a recorded slice or measured it on another number of pairs."""
    __tracebackhide__ = True
    if not entry.slices:
        raise BaselineError(
            f"Baseline {baseline.name!r} ({baseline.path}) records no slices for data set {key!r}; "
            f"record them with --modgap-update (the check's slices=True records each slice), or "
            f"check without slices=True."
        )
    rows: list[MetricComparison] = []
    for label, recorded in entry.slices.items():
        part = report.slices.get(label)
        if part is None:
            raise BaselineError(
                f"Baseline {baseline.name!r} ({baseline.path}) records slice {label!r} of data set "
                f"{key!r}, which this report does not have (it has "
                f"{', '.join(report.slices) or 'no slices'}; a slice needs at least 20 pairs). "
                f"Measure the same data set and samples, or re-record with --modgap-update."
            )
        if part.n != recorded.n:
            raise BaselineError(
                f"Baseline {baseline.name!r} ({baseline.path}) recorded slice {label!r} of data "
                f"set {key!r} with n={recorded.n} pairs, but this report has n={part.n}; re-record "
                f"with --modgap-update."
            )
        wanted = list(recorded.metrics) if metrics is None else list(metrics)
        names = [name for name in wanted if name in recorded.metrics and name in part]
        rows += _rows(recorded, part, names, limits, slice_name=label)
    return rows


def _selected(
    entry: DatasetBaseline, report: Report, baseline: Baseline, metrics: Sequence[str] | None
) -> list[str]:
    """The metric names to compare: ``metrics`` or every recorded one; each must be in both."""
    __tracebackhide__ = True
    if metrics is None:
        names = list(entry.metrics)
    else:
        names = list(metrics)
        unknown = [name for name in names if name not in METRICS]
        if unknown:
            raise BaselineError(
                f"metrics= names unknown metric(s) {', '.join(map(repr, unknown))}; known metrics: "
                f"{', '.join(METRICS)}."
            )
        missing = [name for name in names if name not in entry.metrics]
        if missing:
            raise BaselineError(
                f"Baseline {baseline.name!r} ({baseline.path}) records no "
                f"{', '.join(missing)} for this data set; it records {', '.join(entry.metrics)}."
            )
    absent = [name for name in names if name not in report]
    if absent:
        raise BaselineError(
            f"Baseline {baseline.name!r} ({baseline.path}) records {', '.join(absent)}, which this "
            f"report does not have (text-text metrics need a second caption per pair). Restrict "
            f"the check with metrics=[...], or measure a data set with two captions per image."
        )
    return names


def check_tolerance(value: Any, argument: str) -> float | None:
    """None, or ``value`` as a float that is finite and >= 0; a BaselineError naming ``argument``.

    Every comparison with NaN is false, so a NaN tolerance would pass every check (as would
    infinity), and a negative one would fail every check: refused wherever a tolerance comes in.
    """
    __tracebackhide__ = True
    if value is None:
        return None
    number = _finite(value)
    if number is None or number < 0.0:
        raise BaselineError(
            f"{argument}={short(value)} is not a usable tolerance: give the absolute change a "
            f"metric may make, a finite number >= 0 (e.g. {argument}=0.02). NaN or infinity "
            f"would pass every check, and a negative tolerance would fail every one."
        )
    return number


def check_tolerances(value: Any, argument: str) -> float | dict[str, float] | None:
    """``check_tolerance`` for one number, or a mapping of metric name -> tolerance (the metrics
    it names take it; the others keep their own, the file's or the default)."""
    __tracebackhide__ = True
    if not isinstance(value, Mapping):
        return check_tolerance(value, argument)
    unknown = [name for name in value if name not in METRICS]
    if unknown:
        raise BaselineError(
            f"{argument}= names unknown metric(s) {', '.join(map(short, unknown))}; known "
            f"metrics: {', '.join(METRICS)}."
        )
    checked = {
        name: check_tolerance(limit, f"{argument}[{name!r}]") for name, limit in value.items()
    }
    return {name: limit for name, limit in checked.items() if limit is not None}


def _first(*values: float | None) -> float:
    """The first value that is not None, else DEFAULT_TOLERANCE."""
    for value in values:
        if value is not None:
            return value
    return DEFAULT_TOLERANCE


def _row(
    name: str,
    recorded: float,
    obtained: float,
    ci: tuple[float, float] | None,
    tolerance: float,
    better: str,
) -> MetricComparison:
    """One compared metric. A tiny epsilon keeps a change of exactly the tolerance from failing on
    float rounding (0.75 - 0.73 > 0.02 in binary floating point)."""
    change = obtained - recorded
    worse = -change if better == "higher" else change
    if better == "none":
        verdict = "info"
    elif worse > tolerance + 1e-12:
        verdict = "REGRESSED"
    elif -worse > tolerance + 1e-12:
        verdict = "improved"
    else:
        verdict = "ok"
    return MetricComparison(name, recorded, obtained, ci, tolerance, better, verdict)


def _report_model(report: Report) -> str | None:
    """The model spec recorded in a report's metadata, if any."""
    model = report.metadata.get("model")
    return model if isinstance(model, str) else None


def _pair_line(change: PairChange) -> str:
    """``image  "caption"  0.8123 -> 0.5012``: one pair of a failure message."""
    caption = change.caption if len(change.caption) <= 70 else change.caption[:67] + "..."
    if change.detail:
        moved = change.detail
    elif float(change.before).is_integer() and float(change.after).is_integer():
        moved = f"rank {change.before:.0f} -> {change.after:.0f}"
    else:
        moved = f"{change.before:.4f} -> {change.after:.4f}"
    name = change.name if len(change.name) <= 50 else "..." + change.name[-47:]
    return f"{name}  {caption!r}  {moved}"
