"""The GitHub Actions job summary: when ``GITHUB_STEP_SUMMARY`` names a file, the run appends a
Markdown section there (per model and data set: the verdict and what regressed), shown on the run's page.

Reads only the session's plain-data results, so it works the same after an xdist merge.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from pytest_modgap.gate.session import ModgapSession

ENVIRONMENT_VARIABLE = "GITHUB_STEP_SUMMARY"


class _Measurement(NamedTuple):
    """One measurement of the run with the verdicts that belong to it."""

    key: str
    record: dict[str, Any]
    checks: list[dict[str, Any]]
    comparisons: list[dict[str, Any]]
    change: str | None


def summary_path() -> Path | None:
    """The job summary file GitHub Actions gives this step, or None outside Actions."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    return Path(value) if value else None


def append_summary(session: ModgapSession, path: Path) -> None:
    """Append the run's Markdown section to ``path`` in one write (the step's other tools append
    to the same file)."""
    text = markdown(session)
    if text:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text)


def markdown(session: ModgapSession) -> str:
    """The Markdown section of the run: outcome counts, then one block per model and data set
    with its baseline and reference verdicts, the regressed metrics (baseline, obtained value
    with its interval, change, tolerance) and the change since the previous run; '' when no
    modgap test ran."""
    if not session.outcomes and not session.measurements:
        return ""
    counts = session.counts()
    shown = ", ".join(f"{count} {name}" for name, count in counts.items() if count)
    lines = [f"## modgap: {shown or 'no tests'}", ""]
    for measurement in _measurements(session):
        lines += _block(measurement)
    for comparison in session.comparisons:
        if comparison.get("measurement") not in session.measurements:  # compare() alone
            where = f"{_code(comparison['candidate'])} on {_code(comparison['dataset'])}"
            mark = "❌" if comparison["failed"] else "✅"
            lines += [f"### {mark} {where} (n = {comparison['n']})", ""]
            lines += _reference_lines(_Measurement("", {}, [], [comparison], None))
    skipped = sorted(
        {
            entry.get("reason", "")
            for entry in session.outcomes.values()
            if entry["outcome"] == "skipped"
        }
    )
    for reason in skipped:
        lines += [f"- skipped: {_text(reason)}", ""]
    return "\n".join(lines).rstrip() + "\n\n"


def _measurements(session: ModgapSession) -> list[_Measurement]:
    from pytest_modgap.gate.baselines import dataset_key

    found = []
    for key, record in session.measurements.items():
        report = record["report"]
        dim = record.get("truncate_dim")
        baseline_key = dataset_key(record["dataset"]) + ("" if dim is None else f"@{dim}")
        checks = [
            check
            for check in session.checks
            if check["model"] == record["model"]
            and check["dataset"] == baseline_key
            and check["n"] == report["n"]
        ]
        comparisons = [c for c in session.comparisons if c.get("measurement") == key]
        found.append(
            _Measurement(key, record, checks, comparisons, session.history_changes.get(key))
        )
    return found


def _block(measurement: _Measurement) -> list[str]:
    record = measurement.record
    failed = any(check["verdict"] == "regressed" for check in measurement.checks) or any(
        comparison["failed"] for comparison in measurement.comparisons
    )
    mark = "❌" if failed else "✅"
    dim = record.get("truncate_dim")
    where = (
        f"{_code(record['model'])} (precomputed)"  # model and data in one file: named once
        if record["dataset"] == record["model"]
        else f"{_code(record['model'])} on {_code(record['dataset'])}"
    )
    size = f"n = {record['report']['n']}" + ("" if dim is None else f", first {dim} dims")
    lines = [f"### {mark} {where} ({size})", ""]
    for section in _SECTIONS:
        lines += section(measurement)
    return lines


def _baseline_lines(measurement: _Measurement) -> list[str]:
    lines = []
    for check in measurement.checks:
        regressed = [row for row in check["rows"] if row["verdict"] == "REGRESSED"]
        verdict = check["verdict"]
        detail = f" on {len(regressed)} of {len(check['rows'])} metrics" if regressed else ""
        lines.append(f"- baseline {_code(check['baseline'])}: **{verdict}**{detail}")
        if regressed:
            lines += ["", "  | metric | baseline | obtained (CI) | change | tolerance |"]
            lines.append("  |---|--:|--:|--:|--:|")
            for row in regressed:
                change = f"{row['change']:+.4f}"
                if row.get("change_ci") is not None:
                    low, high = row["change_ci"]
                    change += f" [{low:+.4f}, {high:+.4f}]"
                lines.append(
                    f"  | {row['metric']} ({row['better']} is better) | {row['baseline']:.4f} | "
                    f"{_with_ci(row['obtained'], row.get('ci'))} | {change} | "
                    f"{row['tolerance']:.4f} |"
                )
            lines.append("")
        lines += _slice_lines(check)
        if verdict == "regressed":
            lines += _pairs_worse_lines(check.get("pairs_worse"))
    return [*lines, ""] if lines and lines[-1] else lines


_PAIR_VIEWS = (
    ("similarity", "matched similarity dropped most"),
    ("image_rank", "image to text: true caption fell furthest in rank"),
    ("caption_rank", "text to image: true image fell furthest in rank"),
    ("zeroshot_flips", "zero-shot: right before, wrong now"),
)


def _slice_lines(check: dict[str, Any]) -> list[str]:
    """The slices that regressed, worst first, as the terminal shows them (``slices=True``)."""
    rows = [row for row in check.get("slices") or () if row["verdict"] == "REGRESSED"]
    if not rows:
        return []
    names = ", ".join(_code(name) for name in check.get("regressed_slices") or ())
    lines = [f"  slices that regressed, worst first: {names}", ""]
    lines += ["  | slice | metric | baseline | obtained (CI) | change | tolerance |"]
    lines.append("  |---|---|--:|--:|--:|--:|")
    for row in rows:
        lines.append(
            f"  | {_text(str(row.get('slice')))} | {row['metric']} ({row['better']} is better) | "
            f"{row['baseline']:.4f} | {_with_ci(row['obtained'], row.get('ci'))} | "
            f"{row['change']:+.4f} | {row['tolerance']:.4f} |"
        )
    return [*lines, ""]


def _value(number: float) -> str:
    return f"{number:.0f}" if float(number).is_integer() else f"{number:.4f}"


def _pairs_worse_lines(pairs_worse: dict[str, Any] | None) -> list[str]:
    """The pairs that got worse (a check paired with its snapshot), as text in a folded block."""
    if not pairs_worse or not any(pairs_worse.get(key) for key, _ in _PAIR_VIEWS):
        return []
    lines = ["  <details><summary>Pairs that got worse</summary>", ""]
    for key, title in _PAIR_VIEWS:
        listed = pairs_worse.get(key) or []
        if not listed:
            continue
        lines += [f"  {title}:", ""]
        for change in listed:
            moved = (
                change.get("detail") or f"{_value(change['before'])} → {_value(change['after'])}"
            )
            lines.append(
                f"  - {_code(str(change['image']))} {_text(str(change['caption']))}: {moved}"
            )
        lines.append("")
    return [*lines, "  </details>", ""]


def _reference_lines(measurement: _Measurement) -> list[str]:
    lines = []
    for comparison in measurement.comparisons:
        worse = [row for row in comparison["metrics"] if row["verdict"] == "worse"]
        verdict = f"**worse** on {len(worse)} metrics" if worse else "not worse on any metric"
        lines.append(
            f"- reference model {_code(comparison['reference'])}: {verdict} "
            f"({comparison['n']} pairs, paired bootstrap)"
        )
        if worse:
            lines += ["", "  | metric | reference | candidate | difference (CI) | tolerance |"]
            lines.append("  |---|--:|--:|--:|--:|")
            for row in worse:
                difference = f"{row['difference']:+.4f}"
                if row.get("ci") is not None:
                    difference += f" [{row['ci'][0]:+.4f}, {row['ci'][1]:+.4f}]"
                lines.append(
                    f"  | {row['metric']} ({row['better']} is better) | {row['reference']:.4f} | "
                    f"{row['candidate']:.4f} | {difference} | {row['tolerance']:.4f} |"
                )
            lines.append("")
    return [*lines, ""] if lines and lines[-1] else lines


def _history_lines(measurement: _Measurement) -> list[str]:
    return [f"- {_text(measurement.change)}", ""] if measurement.change else []


# One renderer per part of a measurement's block, in order. Per-slice results (issue 10) add a
# renderer of the record's worst slices here; the blocks around it need no change.
_SECTIONS: tuple[Callable[[_Measurement], list[str]], ...] = (
    _baseline_lines,
    _reference_lines,
    _history_lines,
)


def _with_ci(value: float, ci: list[float] | None) -> str:
    return f"{value:.4f}" if ci is None else f"{value:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]"


def _code(text: str) -> str:
    """Inline code that survives backticks and table pipes in a spec."""
    return "`" + str(text).replace("`", "'").replace("|", "\\|") + "`"


def _text(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
