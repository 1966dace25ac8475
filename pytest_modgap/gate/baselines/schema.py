"""The baseline file format and its validated form.

A baseline file (``<baseline-dir>/<name>.yaml``, UTF-8; read with the safe loader only)::

    format: pytest-modgap/2
    model: <spec>                 # what was measured last (informative: a check compares any model)
    source: <free text: the paper, or the command that recorded it>
    tolerance: 0.05               # optional: default absolute tolerance of this file's metrics
    datasets:
      "wds:setA":                 # entry key: built-in or public set name, else LOADER:FILE-OR-FOLDER
        n: 1000                   # pairs measured; a report of another size cannot be compared
        identity:                 # what was measured: a check of anything else is refused
          dataset: wds:/data/setA/shard-{0..9}.tar
          pairs: 9f2c...          # content fingerprint of the sampled pairs (and their prompts)
          samples: 1000
          seed: 0
          templates: ["a photo of a {c}."]   # zero-shot prompts (data sets with class names)
          truncate_dim: null      # Matryoshka truncation
        run: {device: cpu, dtype: float32, torch: 2.13.0, transformers: 5.25.0,
              pytest_modgap: 0.1.0, date: 2026-12-06}   # differences are noted, never refused
        snapshot: {file: release-3.snapshots/wds-setA.npz, sha256: 4b1e...}
        metrics:
          alignment: {value: 0.7312, ci: [0.72, 0.74], tolerance: 0.02}   # ci, tolerance optional
          centroid_gap: {value: 0.41}
          image_cone: 0.24        # a bare number is the same as {value: 0.24}
        slices:                   # optional: per-slice entries (check(..., slices=True))
          outdoor: {n: 420, metrics: {alignment: {value: 0.70}}}

Values are written as Python's shortest exact float text, so a value reads back as the very float
that was recorded. Format 1 files (one ``protocol`` and ``recorded`` block per file, no identity,
no snapshot, entries keyed by the loader's name alone) still read and check as numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "pytest-modgap/2"
"""The format this version writes."""
LEGACY_FORMAT = "pytest-modgap/1"
"""The format before entries recorded their identity and snapshot: read, checked as numbers."""
FORMAT_PREFIX = "pytest-modgap/"

DEFAULT_TOLERANCE = 0.02

SHIPPED_PREFIX = "paper/"

MAX_DEPTH = 32
"""Deepest nesting of mappings and lists a baseline file may use (a valid one needs 5)."""

_TOP_KEYS = ("format", "model", "source", "protocol", "recorded", "tolerance", "datasets")

_DATASET_KEYS = ("n", "identity", "run", "snapshot", "metrics", "slices")
_SLICE_KEYS = ("n", "metrics")
_IDENTITY_KEYS = ("dataset", "pairs", "samples", "seed", "templates", "truncate_dim")
_SNAPSHOT_KEYS = ("file", "sha256")

_METRIC_KEYS = ("value", "ci", "tolerance")

_FIX = "Fix the file by hand, or delete it and record it again with --modgap-update."


@dataclass(frozen=True)
class MetricBaseline:
    """One metric of one data set in a baseline file."""

    value: float
    ci: tuple[float, float] | None = None
    tolerance: float | None = None


@dataclass(frozen=True)
class EntryIdentity:
    """What a data set entry measured. Two measurements are comparable only when every field is
    equal: ``dataset`` is the spec as given (informative: the same pairs may move folders),
    ``pairs`` the content fingerprint of the sampled pairs and their zero-shot prompts."""

    dataset: str
    pairs: str | None
    samples: int | None
    seed: int
    templates: tuple[str, ...] | None
    truncate_dim: int | None

    def differences(self, other: EntryIdentity) -> list[str]:
        """One line per field in which ``other`` (this run) differs from this (the recorded)."""
        found = []
        if self.pairs != other.pairs:
            found.append(
                f"the pairs: the entry measured pairs with fingerprint {_cut(self.pairs)} "
                f"(from {self.dataset}), this run {_cut(other.pairs)} (from {other.dataset})"
            )
        for name in ("samples", "seed", "templates", "truncate_dim"):
            recorded, now = getattr(self, name), getattr(other, name)
            if recorded != now:
                found.append(f"{name}: recorded {_shown(recorded)}, this run {_shown(now)}")
        return found

    def to_yaml(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "pairs": self.pairs,
            "samples": self.samples,
            "seed": self.seed,
            "templates": None if self.templates is None else list(self.templates),
            "truncate_dim": self.truncate_dim,
        }


def _cut(fingerprint: str | None) -> str:
    return "none" if fingerprint is None else fingerprint[:12]


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return "[" + ", ".join(repr(item) for item in value) + "]"
    return repr(value)


@dataclass(frozen=True)
class SnapshotRef:
    """Where an entry's snapshot is (``file``, relative to the baseline's folder) and its hash."""

    file: str
    sha256: str


@dataclass(frozen=True)
class DatasetBaseline:
    """The recorded metrics of one data set: ``n`` pairs and metric name -> MetricBaseline, and
    the same per slice under ``slices`` (slice name -> DatasetBaseline). ``identity`` says what
    was measured (None in format 1 and published files), ``run`` how (device, dtype, versions),
    ``snapshot`` where its vectors are."""

    n: int
    metrics: dict[str, MetricBaseline]
    slices: dict[str, DatasetBaseline] = field(default_factory=dict)
    identity: EntryIdentity | None = None
    run: dict[str, str] = field(default_factory=dict)
    snapshot: SnapshotRef | None = None


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
    format: str = FORMAT

    @property
    def legacy(self) -> bool:
        """A format-1 file: entries without identity, keyed by the loader's name."""
        return self.format == LEGACY_FORMAT
