"""The published values of the paper reproduction, read from the shipped ``paper/*`` baselines."""

from __future__ import annotations

from pytest_modgap.gate.baselines import load, shipped_dir
from pytest_modgap.reports.paper import PAPER_BASELINES, PAPER_DATASETS


def paper_values() -> dict[str, dict[str, float]]:
    """Table 4's alignment per known model spec and data set key, read from the shipped baselines."""
    values: dict[str, dict[str, float]] = {}
    for spec, name in PAPER_BASELINES.items():
        baseline = load(name, shipped_dir())
        values[spec] = {
            key: entry.metrics["alignment"].value
            for key, entry in baseline.datasets.items()
            if key in PAPER_DATASETS and "alignment" in entry.metrics
        }
    return values
