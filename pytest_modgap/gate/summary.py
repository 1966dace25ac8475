"""What a run reports at its end: the ``modgap`` terminal section, the --modgap-json artefact, the
--modgap-history lines, the report folder and the GitHub job summary.

All read only the session's plain-data results, so they work the same after an xdist merge.
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_modgap.errors import ModgapError
from pytest_modgap.gate.session import ModgapSession

KEY_METRICS = ("centroid_gap", "alignment", "separation", "auc", "image_cone")
SLICE_METRIC = "alignment"
"""The metric by which the summary ranks slices (the JSON ranks them by every key metric)."""
WORST_SLICES = 3
JSON_FORMAT = "pytest-modgap-results/1"
# Outcome counts always shown, even at zero; "failed" and "error" only when they happened.
_ALWAYS = ("passed", "regressed", "updated", "skipped")


def terminal_lines(session: ModgapSession) -> list[str]:
    """The lines of the ``modgap`` summary section; empty when no modgap test ran and every
    output was written."""
    if not session.outcomes and not session.measurements:
        return list(session.write_errors.values())
    counts = session.counts()
    shown = [f"{count} {name}" for name, count in counts.items() if count or name in _ALWAYS]
    lines = ["modgap tests: " + ", ".join(shown)]
    for label, record in session.measurements.items():
        lines += _measurement_lines(record, session.checks)
        if label in session.history_changes:
            lines.append(f"    {session.history_changes[label]}")
    lines += _sweep_lines(session)
    for comparison in session.comparisons:
        worse = comparison["failed"]
        verdict = f"WORSE on {', '.join(worse)}" if worse else "not worse on any metric"
        lines.append(
            f"{comparison['candidate']} vs reference {comparison['reference']} on "
            f"{comparison['dataset']} ({comparison['n']} pairs, paired bootstrap): {verdict}"
        )
    skipped = [
        (nodeid, entry.get("reason", ""))
        for nodeid, entry in sorted(session.outcomes.items())
        if entry["outcome"] == "skipped"
    ]
    reasons = sorted({reason for _, reason in skipped})
    for reason in reasons:
        number = sum(1 for _, why in skipped if why == reason)
        lines.append(f"skipped {number}: {reason}")
    updated = sorted(
        {(c["path"], c["dataset"]) for c in session.checks if c["verdict"] == "updated"}
    )
    for path, dataset in updated:
        lines.append(f"updated baseline {path} (data set {dataset})")
    options = session.options
    if options.json is not None:
        lines.append(session.write_errors.get("json") or f"results written to {options.json}")
    if options.history is not None and session.measurements:
        lines.append(
            session.write_errors.get("history")
            or f"{len(session.measurements)} measurement(s) appended to {options.history}"
        )
    if options.report_dir is not None and session.measurements:
        lines.append(
            session.write_errors.get("report_dir")
            or f"figures and index.html written to {options.report_dir}"
        )
        if "report_dir" in session.notes:
            lines.append(session.notes["report_dir"])
    if "github" in session.write_errors:
        lines.append(session.write_errors["github"])
    return lines


def write_outputs(session: ModgapSession) -> None:
    """Write --modgap-history, --modgap-json, --modgap-report-dir and the GitHub job summary at the
    end of the run.

    Their paths were checked before the first test; what fails now (a disk gone read-only or
    full, a folder deleted during the run, a bug in one writer) goes into ``session.write_errors``
    as one line of the summary, and the other outputs are still written: a traceback here would
    cost every output after the failing one and the whole summary of the run.
    """
    options = session.options
    if options.history is not None and session.measurements:
        _guarded(session, "history", "--modgap-history", options.history, write_history)
    if options.json is not None:
        _guarded(session, "json", "--modgap-json", options.json, write_json)
    if options.report_dir is not None and session.measurements:
        _guarded(session, "report_dir", "--modgap-report-dir", options.report_dir, write_report)
    from pytest_modgap.gate.github_summary import append_summary, summary_path

    github = summary_path()
    if github is not None:
        _guarded(
            session,
            "github",
            "the GitHub job summary GITHUB_STEP_SUMMARY",
            github,
            append_summary,
        )


def _guarded(
    session: ModgapSession,
    name: str,
    flag: str,
    path: Path,
    write: Callable[[ModgapSession, Path], object],
) -> None:
    """Run one output's ``write``; any failure becomes its line in ``session.write_errors``."""
    try:
        write(session, path)
    except Exception as error:  # noqa: BLE001 - one output's failure must not stop the others
        session.write_errors[name] = _not_written(flag, path, error)


def write_history(session: ModgapSession, path: Path) -> None:
    """--modgap-history: note each measurement's change since the previous run of its model and
    data set in the file (for the summary), then append one line per measurement."""
    from pytest_modgap.reports.history import (
        append_history,
        change_text,
        git_commit,
        history_entry,
        read_history,
    )

    history = read_history(path)
    commit = git_commit()
    entries = []
    for label, record in session.measurements.items():
        report = record["report"]
        previous = history.previous(record["model"], record["dataset"], record.get("truncate_dim"))
        if previous is not None:
            session.history_changes[label] = change_text(previous, report["metrics"])
        entries.append(
            history_entry(
                report,
                model=record["model"],
                dataset=record["dataset"],
                samples=record["samples"],
                seed=record["seed"],
                truncate_dim=record.get("truncate_dim"),
                commit=commit,
                source="pytest",
            )
        )
    append_history(path, entries)


def _not_written(flag: str, path: Path, error: Exception) -> str:
    """``modgap: could not write --modgap-json=PATH (Read-only file system: PATH)`` on one line."""
    if isinstance(error, OSError) and error.strerror:
        reason = f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    elif isinstance(error, OSError | ModgapError):
        reason = str(error)
    else:
        # Not a failure the writer expects: the exception's type says where to look.
        reason = f"{type(error).__name__}: {error}"
    return f"modgap: could not write {flag}={path} ({' '.join(reason.split())})"


def _sweep_lines(session: ModgapSession) -> list[str]:
    """--modgap-truncate-dim: per model and data set, the key metrics side by side per dimension."""
    sweeps: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for record in session.measurements.values():
        if record.get("truncate_dim") is not None:
            key = (record["model"], record["dataset"])
            sweeps.setdefault(key, {})[record["truncate_dim"]] = record["report"]["metrics"]
    lines = []
    for (model, dataset), by_dim in sorted(sweeps.items()):
        dims = sorted(by_dim)
        lines.append(f"Matryoshka sweep of {model} on {dataset}:")
        lines.append("  " + f"{'dim':<14}" + "".join(f"{dim:>10}" for dim in dims))
        for name in KEY_METRICS:
            values = "".join(f"{by_dim[dim][name]['value']:>10.4f}" for dim in dims)
            lines.append(f"  {name:<14}{values}")
    return lines


def _measurement_lines(record: dict[str, Any], checks: list[dict[str, Any]]) -> list[str]:
    """One measurement: model and data set, the key metrics with CIs, then its baseline verdicts."""
    from pytest_modgap.gate.baselines import dataset_key

    report = record["report"]
    metrics = report["metrics"]
    level = f"{report['ci_level']:.0%} CI" if report.get("ci_level") is not None else "no CI"
    samples = "all" if record["samples"] is None else record["samples"]
    # Precomputed embeddings are model and data in one file: name it once.
    measured = (
        f"{record['model']} (precomputed)"
        if record["dataset"] == record["model"]
        else f"{record['model']} on {record['dataset']}"
    )
    dim = record.get("truncate_dim")
    truncated = "" if dim is None else f", first {dim} dims"
    lines = [
        f"{measured} (n={report['n']}, samples={samples}, seed={record['seed']}{truncated}; {level})"
    ]
    width = max(len(name) for name in KEY_METRICS)
    for name in KEY_METRICS:
        if name in metrics:
            entry = metrics[name]
            value = f"{entry['value']:.4f}"
            if entry.get("ci") is not None:
                value += f" [{entry['ci'][0]:.4f}, {entry['ci'][1]:.4f}]"
            lines.append(f"    {name:<{width}}  {value}")
    worst = worst_slices(report, SLICE_METRIC)
    if worst:
        shown = ", ".join(f"{label} {value:.4f}" for label, value in worst)
        lines.append(f"    worst slices by {SLICE_METRIC} (of {len(report['slices'])}): {shown}")
    key = dataset_key(record["dataset"]) + ("" if dim is None else f"@{dim}")
    for check in checks:
        if (
            check["model"] == record["model"]
            and check["dataset"] == key
            and check["n"] == report["n"]
        ):
            worse = [row["metric"] for row in check["rows"] if row["verdict"] == "REGRESSED"]
            worse += [f"slice {label}" for label in check.get("regressed_slices", ())]
            verdict = check["verdict"] + (f" ({', '.join(worse)})" if worse else "")
            lines.append(f"    baseline {check['baseline']}: {verdict}  [{check['nodeid']}]")
    return lines


def worst_slices(
    report: dict[str, Any], name: str, count: int = WORST_SLICES
) -> list[tuple[str, float]]:
    """The ``count`` slices of a report (``Report.to_dict`` form) with the worst ``name``, worst
    first, by the metric's better direction."""
    from pytest_modgap.metrics.catalogue import METRICS

    better = METRICS[name].better if name in METRICS else "none"
    found = [
        (label, part["metrics"][name]["value"])
        for label, part in report.get("slices", {}).items()
        if name in part["metrics"]
    ]
    if better == "none":
        return []
    return sorted(found, key=lambda item: item[1], reverse=better == "lower")[:count]


def _worst_slices_entry(report: dict[str, Any]) -> dict[str, Any]:
    """``{"worst_slices": {metric: [[slice, value], ...]}}`` for the key metrics, or nothing."""
    if not report.get("slices"):
        return {}
    ranked = {name: worst_slices(report, name) for name in KEY_METRICS}
    return {
        "worst_slices": {
            name: [list(item) for item in found] for name, found in ranked.items() if found
        }
    }


def environment(session: ModgapSession) -> dict[str, Any]:
    """Versions (read from package metadata, never imported) and the devices the reports used."""
    from pytest_modgap.gate.baselines import package_version

    devices = sorted(
        {
            str(record["report"]["metadata"]["device"])
            for record in session.measurements.values()
            if record["report"]["metadata"].get("device") is not None
        }
    )
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pytest": package_version("pytest"),
        "pytest_modgap": package_version("pytest-modgap"),
        "torch": package_version("torch"),
        "transformers": package_version("transformers"),
        "numpy": package_version("numpy"),
        "devices": devices,
        "executable": sys.executable,
    }


def write_json(session: ModgapSession, path: Path) -> None:
    """Write every report, baseline comparison and outcome, and the environment, atomically."""
    options = session.options
    document = {
        "format": JSON_FORMAT,
        "environment": environment(session),
        "options": {
            "models": list(options.models),
            "dataset": options.dataset,
            "samples": options.samples,
            "seed": options.seed,
            "n_boot": options.n_boot,
            "tolerance": options.tolerance,
            "baseline_dir": str(options.baseline_dir),
            "update": options.update,
            "strict": options.strict,
        },
        "counts": session.counts(),
        "tests": session.outcomes,
        # The similarity distributions (N floats each) feed --modgap-report-dir; the JSON stays lean.
        "measurements": [
            {
                **record,
                "report": _without_distributions(record["report"]),
                **_worst_slices_entry(record["report"]),
            }
            for record in session.measurements.values()
        ],
        "checks": session.checks,
        "comparisons": session.comparisons,
    }
    from pytest_modgap.atomic import write_text_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(document, indent=2) + "\n")


def _without_distributions(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key != "distributions"}


def write_report(session: ModgapSession, directory: Path) -> Path:
    """--modgap-report-dir: Figures 2 and 3 of every measurement (models stacked per data set) and
    an index.html with the metrics, the baseline verdicts and the reference comparisons."""
    from pytest_modgap.metrics.report import Report
    from pytest_modgap.reports.html import check_rows, figures_unavailable, write_report_dir

    results = []
    for record in session.measurements.values():
        dim = record.get("truncate_dim")
        model = record["model"] if dim is None else f"{record['model']} @{dim}"
        results.append((model, record["dataset"], Report.from_dict(record["report"])))
    verdicts: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    for check in session.checks:
        verdicts += check_rows(check, model=check["model"], dataset=check["dataset"])
    for comparison in session.comparisons:
        for row in comparison["metrics"]:
            comparisons.append(
                {
                    "model": comparison["candidate"],
                    "dataset": comparison["dataset"],
                    "baseline": f"reference model {comparison['reference']}",
                    **row,
                }
            )
    for entry in session.recorded_reports:
        # The baseline's distributions beside the candidates', under the data set's spec.
        spec = _spec_of(session, entry["dataset"])
        if spec is not None:
            results.append((entry["model"], spec, Report.from_dict(entry["report"])))
    worse_pairs = [
        (
            f"{short_model(check['model'])} on {check['dataset']} against baseline "
            f"{check['baseline']} ({check['verdict']})",
            check["pairs_worse"],
        )
        for check in session.checks
        if check.get("pairs_worse")
    ]
    missing = figures_unavailable()
    if missing:
        session.notes["report_dir"] = f"modgap: figures not drawn: {missing}"
    return write_report_dir(
        directory,
        results,
        verdicts=verdicts or None,
        comparisons=comparisons or None,
        worse_pairs=worse_pairs or None,
    )


def short_model(model: str | None) -> str:
    """A model spec's last path part (``.../checkpoints/candidate`` -> ``candidate``)."""
    return "model" if not model else Path(model).name or model


def _spec_of(session: ModgapSession, key: str) -> str | None:
    """The data set spec measured under baseline entry ``key`` (so the baseline's figures stand
    in the same figure as the candidate's)."""
    from pytest_modgap.gate.baselines import dataset_key

    for record in session.measurements.values():
        dim = record.get("truncate_dim")
        if dataset_key(record["dataset"]) + ("" if dim is None else f"@{dim}") == key:
            return str(record["dataset"])
    return None
