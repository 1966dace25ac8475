"""Building blocks of the plugin tests: embedding files, the plugin's -p arguments, user test files.

Imported by conftest.py and the test modules; no fixtures here.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

# Installed (pip install -e .), the pytest11 entry point loads the plugin by itself and "-p" would
# register it twice; from a plain checkout it has to be named.
PLUGIN_ARGS: tuple[str, ...] = (
    ()
    if importlib.metadata.entry_points(group="pytest11", name="modgap")
    else ("-p", "pytest_modgap.gate.plugin")
)

GATE_TEST = """
import pytest

@pytest.mark.modgap(samples=100)
def test_gate(modgap):
    report = modgap.measure()
    modgap.check(report, baseline="release")
"""
"""A user test that measures 100 pairs and checks them against the baseline "release"."""


def write_embeddings(path: Path, *, gap: float, seed: int = 0, n: int = 120, d: int = 16) -> str:
    """Paired embeddings whose modality gap grows with ``gap``; returns the ``embeddings:`` spec.

    Images and texts share a random signal (so pairs align) and are pushed apart along one axis by
    ``gap``: 0 gives a small centroid gap, 3 a large one with lower alignment.
    """
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(n, d))
    image = shared + 0.5 * rng.normal(size=(n, d))
    text = shared + 0.5 * rng.normal(size=(n, d))
    image[:, 0] += gap
    text[:, 0] -= gap
    np.savez(path, image=image, text=text)
    return f"embeddings:{path}"
