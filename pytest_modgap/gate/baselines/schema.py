"""The baseline file format and its validated form.

A baseline file (``<baseline-dir>/<name>.yaml``, UTF-8; read with the safe loader only)::

    format: pytest-modgap/1
    model: <spec>                 # what was measured (informative: a check compares any model)
    source: <free text: the paper, or the command that recorded it>
    protocol: {samples: 1000, seed: 0}
    recorded: {date: 2025-06-30, pytest_modgap: 0.1.0, torch: 2.13.0, device: cpu, dtype: float32}
    tolerance: 0.05               # optional: default absolute tolerance of this file's metrics
    datasets:
      shapes:                     # data set key: the loader or built-in name (shapes, coco, ...)
        n: 1000                   # pairs measured; a report of another size cannot be compared
        metrics:
          alignment: {value: 0.7312, ci: [0.72, 0.74], tolerance: 0.02}   # ci, tolerance optional
          centroid_gap: {value: 0.41}
          image_cone: 0.24        # a bare number is the same as {value: 0.24}
        slices:                   # optional: per-slice entries (check(..., slices=True))
          outdoor: {n: 420, metrics: {alignment: {value: 0.70}}}

"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "pytest-modgap/1"

DEFAULT_TOLERANCE = 0.02

SHIPPED_PREFIX = "paper/"

MAX_DEPTH = 32
"""Deepest nesting of mappings and lists a baseline file may use (a valid one needs 5)."""

_TOP_KEYS = ("format", "model", "source", "protocol", "recorded", "tolerance", "datasets")

_DATASET_KEYS = ("n", "metrics", "slices")

_METRIC_KEYS = ("value", "ci", "tolerance")

_FIX = "Fix the file by hand, or delete it and record it again with --modgap-update."


@dataclass(frozen=True)
class MetricBaseline:
    """One metric of one data set in a baseline file."""

    value: float
    ci: tuple[float, float] | None = None
    tolerance: float | None = None


@dataclass(frozen=True)
class DatasetBaseline:
    """The recorded metrics of one data set: ``n`` pairs and metric name -> MetricBaseline, and
    the same per slice under ``slices`` (slice name -> DatasetBaseline)."""

    n: int
    metrics: dict[str, MetricBaseline]
    slices: dict[str, DatasetBaseline] = field(default_factory=dict)


@dataclass(frozen=True)
class Baseline:
    """A validated baseline file; ``raw`` is the parsed YAML, kept so updates keep its fields."""

    name: str
    path: Path
    shipped: bool
    model: str | None
    source: str | None
    tolerance: float | None
    datasets: dict[str, DatasetBaseline]
    raw: dict[str, Any]
