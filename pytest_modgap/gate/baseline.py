"""The baseline engine: load, validate, compare, explain and (atomically) write YAML baselines.

Every baseline check of pytest-modgap, with the fixture or without it, goes through this module.

A baseline file (``<baseline-dir>/<name>.yaml``; read with ``yaml.safe_load`` only)::

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

Metric names are those of ``METRICS``; its ``better`` field says which way a change is a regression.
A metric regresses when it moves in the worse direction by more than its tolerance (absolute).
The tolerance is the first one given of: the check's ``tolerance`` argument, the metric's own
``tolerance``, the file's ``tolerance``, ``default_tolerance`` (``--modgap-tolerance``), 0.02.
Moving the better way never fails; metrics whose direction is ``none`` are shown, never fail.

Names under ``paper/`` are the published values shipped with the package (read-only).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import importlib.resources
import math
import os
import re
import shlex
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

from pytest_modgap.atomic import write_text_atomic
from pytest_modgap.errors import BaselineError
from pytest_modgap.metrics.catalogue import METRICS

if TYPE_CHECKING:
    from pytest_modgap.metrics.report import Report

FORMAT = "pytest-modgap/1"
DEFAULT_TOLERANCE = 0.02
SHIPPED_PREFIX = "paper/"

_TOP_KEYS = ("format", "model", "source", "protocol", "recorded", "tolerance", "datasets")
_DATASET_KEYS = ("n", "metrics")
_METRIC_KEYS = ("value", "ci", "tolerance")
_NAME = re.compile(r"^[A-Za-z0-9_][\w.-]*(/[A-Za-z0-9_][\w.-]*)*$")
# Two xdist workers updating one file wait for each other this long before giving up; a lock file
# older than _STALE_LOCK_S was left by a killed run and is taken over.
_LOCK_TIMEOUT_S = 60.0
_STALE_LOCK_S = 120.0


@dataclass(frozen=True)
class MetricBaseline:
    """One metric of one data set in a baseline file."""

    value: float
    ci: tuple[float, float] | None = None
    tolerance: float | None = None


@dataclass(frozen=True)
class DatasetBaseline:
    """The recorded metrics of one data set: ``n`` pairs and metric name -> MetricBaseline."""

    n: int
    metrics: dict[str, MetricBaseline]


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

    @property
    def change(self) -> float:
        """obtained - baseline."""
        return self.obtained - self.baseline

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
            "tolerance": self.tolerance,
            "better": self.better,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class Comparison:
    """The outcome of checking one report against one baseline entry.

    ``verdict`` is ``passed``, ``regressed`` or ``updated`` (the baseline was written instead).
    """

    baseline: str
    path: Path
    dataset: str
    n: int
    model: str | None
    rows: tuple[MetricComparison, ...]
    verdict: str
    ci_level: float | None = None

    @property
    def regressed(self) -> tuple[MetricComparison, ...]:
        """The rows that regressed."""
        return tuple(row for row in self.rows if row.regressed)

    def table(self) -> str:
        """metric | baseline | obtained (CI) | change | tolerance | verdict; regressed rows: >."""
        level = f"{self.ci_level:.0%} CI" if self.ci_level is not None else "no CI"
        header = ("metric", "baseline", f"obtained ({level})", "change", "tolerance", "verdict")
        cells = [
            (
                row.name,
                f"{row.baseline:.4f}",
                _with_ci(row.obtained, row.ci),
                f"{row.change:+.4f}",
                f"{row.tolerance:.4f}" if row.better != "none" else "-",
                _verdict_text(row),
            )
            for row in self.rows
        ]
        widths = [max(len(line[i]) for line in (header, *cells)) for i in range(len(header))]

        def line(marker: str, values: Sequence[str]) -> str:
            text = "  ".join(
                value.ljust(width) for value, width in zip(values, widths, strict=True)
            )
            return f"{marker} {text}".rstrip()

        rows = [
            line(">" if row.regressed else " ", cell)
            for row, cell in zip(self.rows, cells, strict=True)
        ]
        return "\n".join([line(" ", header), *rows])

    def explain(self, command: str | None = None) -> str:
        """The failure message: what regressed, the table, and what to do next."""
        worse = self.regressed
        names = ", ".join(row.name for row in worse)
        lines = [
            f"modgap: {len(worse)} of {len(self.rows)} metrics regressed ({names}) against "
            f"baseline {self.baseline!r} ({self.path}, data set {self.dataset!r}, n={self.n}"
            f"{', model ' + self.model if self.model else ''}):",
            "",
            self.table(),
            "",
        ]
        if command is not None:
            lines += ["If this change is intended, re-record the baseline with:", f"  {command}"]
        else:
            lines.append(
                "This is a published baseline and is never re-recorded. If this change is intended,"
                " check against a baseline of your own name and record it with --modgap-update."
            )
        return "\n".join(lines)

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
        }


class BaselineRegression(AssertionError):
    """A report regressed against its baseline; ``comparison`` holds every row."""

    def __init__(self, comparison: Comparison, message: str) -> None:
        super().__init__(message)
        self.comparison = comparison


def _with_ci(value: float, ci: tuple[float, float] | None) -> str:
    """``0.7312 [0.7201, 0.7420]``."""
    return f"{value:.4f}" if ci is None else f"{value:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]"


def _verdict_text(row: MetricComparison) -> str:
    """The verdict column, with the direction spelled out for a regression."""
    if row.regressed:
        return f"REGRESSED ({row.better} is better)"
    return row.verdict


def dataset_key(spec: str) -> str:
    """The key a data set spec is recorded under: its loader or built-in name.

    ``flickr30k:/data/f30k`` -> ``flickr30k``, ``mscoco:...`` -> ``coco``, ``shapes`` -> ``shapes``,
    a JSONL manifest -> its file stem, precomputed ``embeddings:x.npz`` -> ``embeddings``. The key
    leaves out the path, so one baseline serves a data set wherever it is stored.
    """
    spec = spec.strip()
    prefix, colon, rest = spec.partition(":")
    loader = prefix.lower()
    if colon and loader in ("jsonl", "manifest"):
        return Path(rest.strip()).stem
    if colon and loader == "mscoco":
        return "coco"
    if colon and re.fullmatch(r"[a-z][a-z0-9_]*", loader) and len(loader) > 1:
        return loader
    if spec.endswith(".jsonl"):
        return Path(spec).stem
    return spec


def shipped_dir() -> Path:
    """The folder of the shipped baselines (``pytest_modgap/baselines``, also in the wheel)."""
    return Path(str(importlib.resources.files("pytest_modgap") / "baselines"))


def shipped_names() -> list[str]:
    """Every shipped baseline name, e.g. ``paper/openai-clip``."""
    root = shipped_dir()
    return sorted(
        path.relative_to(root).with_suffix("").as_posix() for path in root.rglob("*.yaml")
    )


def _check_name(name: str) -> str:
    """``name`` without a ``.yaml`` suffix; a BaselineError for absolute paths or ``..``."""
    __tracebackhide__ = True
    bare = name[: -len(".yaml")] if name.endswith(".yaml") else name
    if not _NAME.match(bare) or ".." in bare.split("/"):
        raise BaselineError(
            f"Baseline name {name!r} is not a valid name: use letters, digits, '.', '_', '-' and "
            f"'/' for subfolders of the baseline directory (e.g. 'release-3' or 'team/clip-b32'), "
            f"no absolute path and no '..'."
        )
    return bare


def resolve(name: str, baseline_dir: str | Path) -> tuple[Path, bool]:
    """Where baseline ``name`` lives: ``(path, shipped)``; the user's folder wins over the shipped.

    The path may not exist yet (a baseline to record); the caller decides whether that is an error.
    """
    __tracebackhide__ = True
    bare = _check_name(name)
    user_path = Path(baseline_dir) / f"{bare}.yaml"
    if user_path.is_file():
        return user_path, False
    shipped_path = shipped_dir() / f"{bare}.yaml"
    if shipped_path.is_file():
        return shipped_path, True
    return user_path, bare.startswith(SHIPPED_PREFIX)


def load(name: str, baseline_dir: str | Path) -> Baseline:
    """Read and validate baseline ``name``; a one-paragraph BaselineError when it is not usable."""
    __tracebackhide__ = True
    path, shipped = resolve(name, baseline_dir)
    if not path.is_file():
        raise BaselineError(
            f"Baseline {name!r} not found: {path} does not exist and no shipped baseline has that "
            f"name (shipped: {', '.join(shipped_names())})."
        )
    return parse(path.read_text(encoding="utf-8"), path, name=_check_name(name), shipped=shipped)


def parse(text: str, path: Path, *, name: str, shipped: bool = False) -> Baseline:
    """Validate the text of a baseline file; every problem names ``path`` and what to fix."""
    __tracebackhide__ = True
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BaselineError(
            f"Baseline file {path} is not valid YAML{where}: {problem}. Fix the file by hand, or "
            f"delete it and record it again with --modgap-update."
        ) from None
    if not isinstance(raw, dict):
        _fail(path, f"the file must be a mapping with keys {', '.join(_TOP_KEYS)}")
    unknown = sorted(str(key) for key in raw if key not in _TOP_KEYS)
    if unknown:
        _fail(
            path, f"unknown top-level key(s) {', '.join(unknown)} (allowed: {', '.join(_TOP_KEYS)})"
        )
    if raw.get("format") != FORMAT:
        _fail(path, f"'format' is {raw.get('format')!r}; this version reads {FORMAT!r}")
    datasets = raw.get("datasets")
    if not isinstance(datasets, dict) or not datasets:
        _fail(path, "'datasets' must map each data set key to {n: <pairs>, metrics: {...}}")
    tolerance = _optional_number(path, "tolerance", raw.get("tolerance"), minimum=0.0)
    for key in ("model", "source"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            _fail(path, f"'{key}' must be text, not {type(raw[key]).__name__}")
    return Baseline(
        name=name,
        path=path,
        shipped=shipped,
        model=raw.get("model"),
        source=raw.get("source"),
        tolerance=tolerance,
        datasets={
            str(key): _parse_dataset(path, str(key), entry) for key, entry in datasets.items()
        },
        raw=raw,
    )


def _parse_dataset(path: Path, key: str, entry: Any) -> DatasetBaseline:
    """One ``datasets:`` entry, validated."""
    __tracebackhide__ = True
    where = f"datasets.{key}"
    if not isinstance(entry, dict):
        _fail(path, f"'{where}' must be a mapping with keys n and metrics")
    unknown = sorted(str(name) for name in entry if name not in _DATASET_KEYS)
    if unknown:
        _fail(path, f"'{where}' has unknown key(s) {', '.join(unknown)} (allowed: n, metrics)")
    n = entry.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        _fail(
            path, f"'{where}.n' must be the number of pairs measured (an integer >= 2), not {n!r}"
        )
    metrics = entry.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        _fail(path, f"'{where}.metrics' must map metric names to {{value: ...}}")
    parsed: dict[str, MetricBaseline] = {}
    for metric, value in metrics.items():
        if metric not in METRICS:
            _fail(
                path,
                f"'{where}.metrics' names unknown metric {metric!r}; known metrics: "
                f"{', '.join(METRICS)}",
            )
        parsed[metric] = _parse_metric(path, f"{where}.metrics.{metric}", value)
    return DatasetBaseline(n=n, metrics=parsed)


def _parse_metric(path: Path, where: str, entry: Any) -> MetricBaseline:
    """A metric entry: a bare number or ``{value, ci?, tolerance?}``."""
    __tracebackhide__ = True
    if not isinstance(entry, dict):
        entry = {"value": entry}
    unknown = sorted(str(name) for name in entry if name not in _METRIC_KEYS)
    if unknown:
        _fail(
            path,
            f"'{where}' has unknown key(s) {', '.join(unknown)} (allowed: value, ci, tolerance)",
        )
    value = _optional_number(path, f"{where}.value", entry.get("value"))
    if value is None:
        _fail(path, f"'{where}' has no value")
    ci = entry.get("ci")
    if ci is not None:
        if not isinstance(ci, list) or len(ci) != 2:
            _fail(path, f"'{where}.ci' must be a list [low, high], not {ci!r}")
        low = _optional_number(path, f"{where}.ci", ci[0])
        high = _optional_number(path, f"{where}.ci", ci[1])
        ci = (low, high)
    tolerance = _optional_number(path, f"{where}.tolerance", entry.get("tolerance"), minimum=0.0)
    return MetricBaseline(value=value, ci=ci, tolerance=tolerance)


def _optional_number(path: Path, where: str, value: Any, minimum: float | None = None) -> Any:
    """``value`` as a finite float (None stays None); a BaselineError for text, bool, NaN, < min."""
    __tracebackhide__ = True
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        _fail(path, f"'{where}' must be a finite number, not {value!r}")
    if minimum is not None and value < minimum:
        _fail(path, f"'{where}' must be >= {minimum}, not {value!r}")
    return float(value)


def _fail(path: Path, problem: str) -> NoReturn:
    """Raise the one-paragraph error for a malformed baseline file."""
    __tracebackhide__ = True
    raise BaselineError(
        f"Baseline file {path} is malformed: {problem}. Fix the file by hand, or delete it and "
        f"record it again with --modgap-update."
    )


def compare(
    report: Report,
    baseline: Baseline,
    *,
    tolerance: float | None = None,
    metrics: Sequence[str] | None = None,
    default_tolerance: float | None = None,
) -> Comparison:
    """Compare ``report`` with the baseline entry of its data set, row by row (no exception on a
    regression: the Comparison's ``verdict`` says so). A BaselineError when they cannot be compared.
    """
    __tracebackhide__ = True
    key = _report_dataset_key(report)
    entry = baseline.datasets.get(key)
    if entry is None:
        raise BaselineError(
            f"Baseline {baseline.name!r} ({baseline.path}) has no entry for data set {key!r}; it "
            f"records {', '.join(sorted(baseline.datasets))}. Measure one of those data sets, or "
            f"add {key!r} to this baseline with --modgap-update"
            f"{'' if not baseline.shipped else ' under a name of your own'}."
        )
    if entry.n != report.n:
        raise BaselineError(
            f"Baseline {baseline.name!r} ({baseline.path}) recorded data set {key!r} with "
            f"n={entry.n} pairs, but this report measured n={report.n}; values from different "
            f"sample counts are not comparable. Measure with samples={entry.n}, or re-record "
            f"with --modgap-update."
        )
    names = _selected(entry, report, baseline, metrics)
    rows = []
    for name in names:
        recorded = entry.metrics[name]
        limit = _first(tolerance, recorded.tolerance, baseline.tolerance, default_tolerance)
        rows.append(
            _row(
                name, recorded.value, report[name], report.ci.get(name), limit, METRICS[name].better
            )
        )
    verdict = "regressed" if any(row.regressed for row in rows) else "passed"
    return Comparison(
        baseline=baseline.name,
        path=baseline.path,
        dataset=key,
        n=report.n,
        model=_report_model(report),
        rows=tuple(rows),
        verdict=verdict,
        ci_level=report.ci_level,
    )


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


def _report_dataset_key(report: Report) -> str:
    """The data set key of a report from its metadata (``measure`` records the spec)."""
    __tracebackhide__ = True
    spec = report.metadata.get("dataset")
    if not isinstance(spec, str):
        raise BaselineError(
            "This report has no data set in its metadata, so its baseline entry cannot be found. "
            "Measure with pytest_modgap.measure (or the modgap fixture), or add it with "
            "report.with_metadata(dataset='<data set spec>')."
        )
    dim = report.metadata.get("truncate_dim")
    # Matryoshka truncations are separate entries: "shapes@128" next to the full-size "shapes".
    return dataset_key(spec) if dim is None else f"{dataset_key(spec)}@{dim}"


def _report_model(report: Report) -> str | None:
    """The model spec recorded in a report's metadata, if any."""
    model = report.metadata.get("model")
    return model if isinstance(model, str) else None


def write(
    report: Report,
    name: str,
    baseline_dir: str | Path,
    *,
    metrics: Sequence[str] | None = None,
    source: str | None = None,
) -> Comparison:
    """Record ``report`` as the entry of its data set in ``<baseline_dir>/<name>.yaml``.

    Other data sets of an existing file are kept. The file is replaced atomically (a temp file in
    the same folder, then ``os.replace``) under a lock file, so xdist workers never lose or tear
    an update. Shipped (``paper/...``) baselines are never written.
    """
    __tracebackhide__ = True
    bare = _check_name(name)
    if bare.startswith(SHIPPED_PREFIX):
        raise BaselineError(
            f"Baseline {name!r} is a published baseline shipped with pytest-modgap and is never "
            f"rewritten; names under {SHIPPED_PREFIX!r} are reserved. Record your own under "
            f"another name, e.g. baseline={bare[len(SHIPPED_PREFIX) :]!r}."
        )
    key = _report_dataset_key(report)
    names = list(report) if metrics is None else list(metrics)
    unknown = [metric for metric in names if metric not in report]
    if unknown:
        raise BaselineError(
            f"Cannot record {', '.join(unknown)} in baseline {name!r}: not in this report "
            f"(it has {', '.join(report)})."
        )
    path = Path(baseline_dir) / f"{bare}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        raw: dict[str, Any] = (
            dict(load(bare, baseline_dir).raw) if path.is_file() else {"format": FORMAT}
        )
        raw["model"] = _report_model(report) or raw.get("model")
        raw["source"] = source or raw.get("source") or "recorded with pytest --modgap-update"
        raw["protocol"] = {
            "samples": report.metadata.get("samples"),
            "seed": report.metadata.get("seed", report.seed),
        }
        raw["recorded"] = _environment(report)
        datasets = dict(raw.get("datasets") or {})
        datasets[key] = {"n": report.n, "metrics": {m: _metric_entry(report, m) for m in names}}
        raw["datasets"] = datasets
        ordered = {field: raw[field] for field in _TOP_KEYS if raw.get(field) is not None}
        text = yaml.dump(
            ordered, Dumper=_Dumper, sort_keys=False, default_flow_style=None, allow_unicode=True
        )
        write_text_atomic(path, text)
    return Comparison(
        baseline=bare,
        path=path,
        dataset=key,
        n=report.n,
        model=_report_model(report),
        rows=(),
        verdict="updated",
        ci_level=report.ci_level,
    )


class _FlowMapping(dict[str, Any]):
    """A mapping written on one line, ``{value: 0.73, ci: [0.72, 0.74]}``, as people write them."""


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes metric entries in flow style."""


_Dumper.add_representer(
    _FlowMapping,
    lambda dumper, data: dumper.represent_mapping(
        "tag:yaml.org,2002:map", data.items(), flow_style=True
    ),
)


def _metric_entry(report: Report, name: str) -> _FlowMapping:
    """``{value, ci?}`` rounded to 6 decimals, far below any useful tolerance."""
    entry = _FlowMapping(value=round(float(report[name]), 6))
    if name in report.ci:
        entry["ci"] = [round(float(bound), 6) for bound in report.ci[name]]
    return entry


def _environment(report: Report) -> dict[str, Any]:
    """The ``recorded:`` block: date, versions (from package metadata, not imports), device."""
    recorded: dict[str, Any] = {"date": datetime.date.today().isoformat()}
    for distribution in ("pytest-modgap", "torch", "transformers"):
        recorded[distribution.replace("-", "_")] = package_version(distribution)
    for field in ("device", "dtype"):
        if report.metadata.get(field) is not None:
            recorded[field] = str(report.metadata[field])
    return recorded


def package_version(distribution: str) -> str | None:
    """The installed version of ``distribution`` without importing it (None when absent)."""
    if distribution == "pytest-modgap":
        from pytest_modgap import __version__

        return __version__
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold ``<path>.lock`` (created exclusively) while reading and replacing ``path``."""
    lock = path.with_name(path.name + ".lock")
    deadline = time.monotonic() + _LOCK_TIMEOUT_S
    while True:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            try:
                if time.time() - lock.stat().st_mtime > _STALE_LOCK_S:
                    lock.unlink(missing_ok=True)
                    continue
            except FileNotFoundError:
                continue
            if time.monotonic() > deadline:
                raise BaselineError(
                    f"Baseline {path} is locked by {lock}, held for over {_LOCK_TIMEOUT_S:.0f} s. "
                    f"If no other pytest run is recording it, delete the lock file."
                ) from None
            time.sleep(0.05)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


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
    tolerance: float | None = None,
    metrics: Sequence[str] | None = None,
    update: bool = False,
    default_tolerance: float | None = None,
    model: str | None = None,
    nodeid: str | None = None,
    command_options: Sequence[str] = (),
) -> Comparison:
    """Check ``report`` against ``baseline`` (or record it when ``update``); the engine of both
    ``assert_no_regression`` and the fixture's ``check``.

    Raises BaselineRegression (an AssertionError with the table and the re-record command) on a
    regression and BaselineError when the baseline is missing or cannot be used; returns the
    Comparison otherwise. ``model``, ``command_options`` and ``nodeid`` go into the re-record
    command.
    """
    __tracebackhide__ = True
    model = model or _report_model(report)
    nodeid = nodeid or _current_nodeid()
    if update:
        source = f"recorded with: {record_command(model, nodeid, command_options)}"
        return write(report, baseline, baseline_dir, metrics=metrics, source=source)
    path, _ = resolve(baseline, baseline_dir)
    if not path.is_file():
        raise BaselineError(
            f"Baseline {baseline!r} does not exist yet: no {path} and no shipped baseline of that "
            f"name (shipped: {', '.join(shipped_names())}). Baselines are never created silently; "
            f"record this one with: {record_command(model, nodeid, command_options)}"
        )
    loaded = load(baseline, baseline_dir)
    comparison = compare(
        report, loaded, tolerance=tolerance, metrics=metrics, default_tolerance=default_tolerance
    )
    if comparison.regressed:
        command = None if loaded.shipped else record_command(model, nodeid, command_options)
        raise BaselineRegression(comparison, comparison.explain(command))
    return comparison


def assert_no_regression(
    report: Report,
    baseline: str,
    *,
    baseline_dir: str | Path | None = None,
    tolerance: float | None = None,
    metrics: Sequence[str] | None = None,
    update: bool = False,
) -> Comparison:
    """Fail (AssertionError with a readable table) if ``report`` regressed against ``baseline``.

    ``baseline`` is a name: ``<baseline_dir>/<name>.yaml`` (``baseline_dir`` defaults to
    ``./baselines``), else a shipped one such as ``paper/jina-embeddings-v4``. ``tolerance``
    overrides every tolerance in the file; ``metrics`` restricts the check to those names.
    ``update=True`` records ``report`` instead (never a shipped baseline). Usable without the
    ``modgap`` fixture, in or out of pytest. Returns the Comparison.
    """
    __tracebackhide__ = True
    return check(
        report,
        baseline,
        baseline_dir=Path("baselines") if baseline_dir is None else baseline_dir,
        tolerance=tolerance,
        metrics=metrics,
        update=update,
    )
