"""What a report measured and how, in the terms of a baseline entry: its key, its identity (what
must match for a comparison) and its run (what may differ, with a note)."""

from __future__ import annotations

import datetime
import importlib.metadata
from typing import TYPE_CHECKING

from pytest_modgap.errors import BaselineError
from pytest_modgap.gate.baselines.location import dataset_key
from pytest_modgap.gate.baselines.schema import EntryIdentity

if TYPE_CHECKING:
    from pytest_modgap.metrics.report import Report

_VERSIONED = ("torch", "transformers")


def report_spec(report: Report) -> str:
    """The data set spec a report measured (``measure`` records it); a BaselineError without."""
    __tracebackhide__ = True
    spec = report.metadata.get("dataset")
    if not isinstance(spec, str):
        raise BaselineError(
            "This report has no data set in its metadata, so its baseline entry cannot be found. "
            "Measure with pytest_modgap.measure (or the modgap fixture), or add it with "
            "report.with_metadata(dataset='<data set spec>')."
        )
    return spec


def entry_key(report: Report, entry: str | None = None) -> str:
    """The key of the report's entry: ``entry`` when given, else the data set's key
    (``dataset_key``), with ``@DIM`` for a Matryoshka truncation (``shapes@128``)."""
    __tracebackhide__ = True
    if entry is not None:
        if not isinstance(entry, str) or not entry.strip() or entry != entry.strip():
            raise BaselineError(
                f"entry={entry!r} is not a usable entry name: give a non-empty name without "
                f"leading or trailing spaces, e.g. entry='eval-set-a'."
            )
        return entry
    dim = report.metadata.get("truncate_dim")
    key = dataset_key(report_spec(report))
    return key if dim is None else f"{key}@{dim}"


def report_identity(report: Report) -> EntryIdentity:
    """What ``report`` measured: the spec, the pairs' fingerprint, samples, seed, templates and
    truncation, from the metadata ``measure`` records."""
    metadata = report.metadata
    templates = metadata.get("templates")
    samples = metadata.get("samples")
    spec = report_spec(report)
    return EntryIdentity(
        # Precomputed vectors name their file, which is the model measured, not the data set.
        dataset="embeddings" if dataset_key(spec) == "embeddings" else spec,
        pairs=metadata.get("pairs"),
        samples=samples if isinstance(samples, int) else None,
        seed=int(metadata.get("seed", report.seed)),
        templates=None if templates is None else tuple(str(t) for t in templates),
        truncate_dim=metadata.get("truncate_dim"),
    )


def report_run(report: Report) -> dict[str, str]:
    """How ``report`` was measured: device, dtype, library versions and the date."""
    run: dict[str, str] = {}
    for name in ("device", "dtype"):
        if report.metadata.get(name) is not None:
            run[name] = str(report.metadata[name])
    for distribution in ("pytest-modgap", *_VERSIONED):
        version = package_version(distribution)
        if version is not None:
            run[distribution.replace("-", "_")] = version
    run["date"] = datetime.date.today().isoformat()
    return run


def run_notes(recorded: dict[str, str], now: dict[str, str]) -> list[str]:
    """One line per option that moves vectors slightly and differs between the recorded run and
    this one (device type, dtype, torch, transformers): noted beside the table, never refused."""
    notes = []
    kinds = {
        name: run.get("device", "").split(":")[0] for name, run in (("r", recorded), ("n", now))
    }
    if kinds["r"] and kinds["n"] and kinds["r"] != kinds["n"]:
        notes.append(f"device: recorded on {kinds['r']}, checked on {kinds['n']}")
    for name in ("dtype", *_VERSIONED):
        if recorded.get(name) and now.get(name) and recorded[name] != now[name]:
            notes.append(f"{name}: recorded with {recorded[name]}, checked with {now[name]}")
    return notes


def package_version(distribution: str) -> str | None:
    """The installed version of ``distribution`` without importing it (None when absent)."""
    if distribution == "pytest-modgap":
        from pytest_modgap import __version__

        return __version__
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
