"""What a run reports at its end: the ``modgap`` terminal section and the --modgap-json artefact.

Both read only the session's plain-data results, so they work the same after an xdist merge.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path
from typing import Any

from pytest_modgap.session import ModgapSession

KEY_METRICS = ("centroid_gap", "alignment", "separation", "auc", "image_cone")
JSON_FORMAT = "pytest-modgap-results/1"
# Outcome counts always shown, even at zero; "failed" and "error" only when they happened.
_ALWAYS = ("passed", "regressed", "updated", "skipped")


def terminal_lines(session: ModgapSession) -> list[str]:
    """The lines of the ``modgap`` summary section; empty when no modgap test ran."""
    if not session.outcomes and not session.measurements:
        return []
    counts = session.counts()
    shown = [f"{count} {name}" for name, count in counts.items() if count or name in _ALWAYS]
    lines = ["modgap tests: " + ", ".join(shown)]
    for record in session.measurements.values():
        lines += _measurement_lines(record, session.checks)
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
    if session.options.json is not None:
        lines.append(f"results written to {session.options.json}")
    return lines


def _measurement_lines(record: dict[str, Any], checks: list[dict[str, Any]]) -> list[str]:
    """One measurement: model and data set, the key metrics with CIs, then its baseline verdicts."""
    from pytest_modgap.baseline import dataset_key

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
    lines = [f"{measured} (n={report['n']}, samples={samples}, seed={record['seed']}; {level})"]
    width = max(len(name) for name in KEY_METRICS)
    for name in KEY_METRICS:
        if name in metrics:
            entry = metrics[name]
            value = f"{entry['value']:.4f}"
            if entry.get("ci") is not None:
                value += f" [{entry['ci'][0]:.4f}, {entry['ci'][1]:.4f}]"
            lines.append(f"    {name:<{width}}  {value}")
    key = dataset_key(record["dataset"])
    for check in checks:
        if (
            check["model"] == record["model"]
            and check["dataset"] == key
            and check["n"] == report["n"]
        ):
            worse = [row["metric"] for row in check["rows"] if row["verdict"] == "REGRESSED"]
            verdict = check["verdict"] + (f" ({', '.join(worse)})" if worse else "")
            lines.append(f"    baseline {check['baseline']}: {verdict}  [{check['nodeid']}]")
    return lines


def environment(session: ModgapSession) -> dict[str, Any]:
    """Versions (read from package metadata, never imported) and the devices the reports used."""
    from pytest_modgap.baseline import package_version

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
        "measurements": list(session.measurements.values()),
        "checks": session.checks,
    }
    from pytest_modgap.atomic import write_text_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(document, indent=2) + "\n")
