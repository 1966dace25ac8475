"""The baseline engine: load, validate, compare, explain and (atomically) write YAML baselines.

Every baseline check of pytest-modgap, with the fixture or without it, goes through this module.

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

Metric names are those of ``METRICS``; its ``better`` field says which way a change is a regression.
A metric regresses when it moves in the worse direction by more than its tolerance (absolute).
The tolerance is the first one given of: the check's ``tolerance`` argument, the metric's own
``tolerance``, the file's ``tolerance``, ``default_tolerance`` (``--modgap-tolerance``), 0.02.
Moving the better way never fails; metrics whose direction is ``none`` are shown, never fail.
With ``slices=True`` each recorded slice (``Report.slices``: a manifest's ``slice``, or a class) is
compared the same way, and the failure names the slices that regressed, worst first.

Names under ``paper/`` are the published values shipped with the package (read-only).

A baseline decides whether a release passes, so a hostile or careless file must not be able to
change a verdict or take the run down. It is read with ``yaml.load(text, Loader=_BaselineLoader)``,
a ``yaml.SafeLoader`` subclass (the same safe tags and constructors: no Python objects) that also
refuses anchors and aliases (an "alias bomb" expands a few lines into gigabytes), nesting deeper
than ``MAX_DEPTH`` (checked as the nodes are composed, before any recursion could overflow) and
duplicate mapping keys (plain YAML keeps the last one silently). Every error quotes values through
``short()``, so no message grows with the file.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import importlib.resources
import math
import numbers
import os
import re
import reprlib
import shlex
import socket
import sys
import time
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

from pytest_modgap.atomic import write_text_atomic
from pytest_modgap.errors import BaselineError
from pytest_modgap.metrics.catalogue import METRICS

if sys.platform != "win32":
    import fcntl

if TYPE_CHECKING:
    from pytest_modgap.metrics.report import Report

FORMAT = "pytest-modgap/1"
DEFAULT_TOLERANCE = 0.02
SHIPPED_PREFIX = "paper/"
MAX_DEPTH = 32
"""Deepest nesting of mappings and lists a baseline file may use (a valid one needs 5)."""
SHORT_LIMIT = 60
"""Characters of a value's repr that an error message quotes at most."""

_TOP_KEYS = ("format", "model", "source", "protocol", "recorded", "tolerance", "datasets")
_DATASET_KEYS = ("n", "metrics", "slices")
_METRIC_KEYS = ("value", "ci", "tolerance")
_NAME = re.compile(r"^[A-Za-z0-9_][\w.-]*(/[A-Za-z0-9_][\w.-]*)*$")
_FIX = "Fix the file by hand, or delete it and record it again with --modgap-update."
# Two xdist workers updating one file wait for each other this long before giving up. The lock is
# an flock on <file>.lock, which the OS drops when its holder dies: a killed run blocks no one.
# Without flock (Windows), a lock file older than _STALE_LOCK_S was left by a killed run.
_LOCK_TIMEOUT_S = 60.0
_STALE_LOCK_S = 120.0


def _short_repr() -> reprlib.Repr:
    """A reprlib.Repr that stops early: a huge value costs no more than a small one to quote."""
    limited = reprlib.Repr()
    limited.maxlevel = 2
    limited.maxdict = limited.maxlist = limited.maxtuple = limited.maxset = 4
    limited.maxstring = limited.maxother = limited.maxlong = SHORT_LIMIT
    return limited


_REPR = _short_repr()


def short(value: Any, limit: int = SHORT_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters with ``...``: how every baseline error quotes a
    value from the file, so a message never grows with the file (or expands what it points to)."""
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int beyond Python's int-to-text digit limit
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _names(values: Iterator[Any] | Sequence[Any], most: int = 8) -> str:
    """Up to ``most`` values quoted with ``short`` (text without quotes), then ``and N more``."""
    listed = [
        value
        if isinstance(value, str) and len(value) <= 40 and value.isprintable()
        else short(value, 40)
        for value in values
    ]
    shown = ", ".join(listed[:most])
    return shown if len(listed) <= most else f"{shown} and {len(listed) - most} more"


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


def _table(
    rows: Sequence[MetricComparison], ci_level: float | None, *, slices: bool = False
) -> str:
    """The aligned comparison table of ``rows`` (a slice column first with ``slices``)."""
    level = f"{ci_level:.0%} CI" if ci_level is not None else "no CI"
    header: tuple[str, ...] = (
        "metric",
        "baseline",
        f"obtained ({level})",
        "change",
        "tolerance",
        "verdict",
    )
    cells: list[tuple[str, ...]] = [
        (
            row.name,
            f"{row.baseline:.4f}",
            _with_ci(row.obtained, row.ci),
            f"{row.change:+.4f}",
            f"{row.tolerance:.4f}" if row.better != "none" else "-",
            _verdict_text(row),
        )
        for row in rows
    ]
    if slices:
        header = ("slice", *header)
        cells = [(str(row.slice), *cell) for row, cell in zip(rows, cells, strict=True)]
    widths = [max(len(line[i]) for line in (header, *cells)) for i in range(len(header))]

    def line(marker: str, values: Sequence[str]) -> str:
        text = "  ".join(value.ljust(width) for value, width in zip(values, widths, strict=True))
        return f"{marker} {text}".rstrip()

    lines = [
        line(">" if row.regressed else " ", cell) for row, cell in zip(rows, cells, strict=True)
    ]
    return "\n".join([line(" ", header), *lines])


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
    _refuse_non_file(path)
    if not path.is_file():
        raise BaselineError(
            f"Baseline {name!r} not found: {path} does not exist and no shipped baseline has that "
            f"name (shipped: {', '.join(shipped_names())})."
        )
    return parse(_read_text(path), path, name=_check_name(name), shipped=shipped)


def _refuse_non_file(path: Path) -> None:
    """A BaselineError when something that is not a file (a folder) sits where a baseline goes."""
    __tracebackhide__ = True
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise BaselineError(
            f"Baseline file {path} is {kind}, not a baseline file. Move it out of the way, or use "
            f"another baseline name."
        )


def _read_text(path: Path) -> str:
    """The text of baseline file ``path``; a BaselineError naming it when it cannot be read or is
    not UTF-8 (the encoding ``write`` uses)."""
    __tracebackhide__ = True
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BaselineError(
            f"Baseline file {path} cannot be read ({error.strerror or error}). Make it readable, "
            f"or delete it and record it again with --modgap-update."
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise BaselineError(
            f"Baseline file {path} is not UTF-8 text: byte {data[error.start]:#04x} at line {line} "
            f"cannot be decoded. Save the file as UTF-8 (the encoding --modgap-update writes), or "
            f"delete it and record it again with --modgap-update."
        ) from None


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that a baseline may not use: an anchor or alias, deep nesting, a duplicate key."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _BaselineLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` plus the limits of a baseline file; use as
    ``yaml.load(text, Loader=_BaselineLoader)``.

    SafeLoader's tags and constructors are kept unchanged (so this is still "safe_load only"); the
    composer refuses anchors, aliases and nesting beyond MAX_DEPTH before it recurses, the
    constructor refuses duplicate keys, and a scalar its constructor cannot convert (a date
    2025-13-45, ``!!int x``) is a YAML error with a line rather than a bare ValueError.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped stub
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(
                "anchors and aliases (&name, *name) are not allowed in a baseline file; write "
                "every value out",
                event.start_mark,
            )
        nests = isinstance(event, yaml.CollectionStartEvent)
        if nests and self._depth >= MAX_DEPTH:
            raise _Refused(
                f"mappings and lists nest deeper than {MAX_DEPTH} levels (a baseline needs 5)",
                event.start_mark,
            )
        self._depth += nests
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= nests

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, OverflowError, LookupError) as error:
            tag = str(node.tag).rsplit(":", 1)[-1]
            what = short(node.value) if isinstance(node, yaml.ScalarNode) else "this value"
            raise yaml.constructor.ConstructorError(
                problem=f"cannot read {what} as {short(tag)} ({short(str(error))})",
                problem_mark=node.start_mark,
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        if not isinstance(node, yaml.MappingNode):  # e.g. "!!set x": SafeLoader's error
            return super().construct_mapping(node, deep=deep)
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else []
            if not isinstance(key, Hashable):
                continue  # SafeLoader refuses unhashable keys itself, with their line
            if key in first_line:
                raise _Refused(
                    f"duplicate key {short(key)} (first at line {first_line[key] + 1}); YAML "
                    f"would keep only the last value, so remove one",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """The YAML data of baseline file ``path``, read as ``parse`` reads it (UTF-8, the baseline
    loader) but not validated; a BaselineError naming the file when it cannot be read."""
    __tracebackhide__ = True
    return _load_yaml(_read_text(path), path)


def _load_yaml(text: str, path: Path) -> Any:
    """``text`` loaded with the baseline loader; a BaselineError with the line of any problem."""
    __tracebackhide__ = True
    try:
        return yaml.load(text, Loader=_BaselineLoader)  # a SafeLoader subclass: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        verdict = "is refused" if isinstance(exc, _Refused) else "is not valid YAML"
        raise BaselineError(
            f"Baseline file {path} {verdict}{where}: {_clip(problem)}. {_FIX}"
        ) from None


def parse(text: str, path: Path, *, name: str, shipped: bool = False) -> Baseline:
    """Validate the text of a baseline file; every problem names ``path`` and what to fix."""
    __tracebackhide__ = True
    raw = _load_yaml(text, path)
    if not isinstance(raw, dict):
        _fail(path, f"the file must be a mapping with keys {', '.join(_TOP_KEYS)}")
    unknown = sorted((key for key in raw if key not in _TOP_KEYS), key=short)
    if unknown:
        _fail(path, f"unknown top-level key(s) {_names(unknown)} (allowed: {', '.join(_TOP_KEYS)})")
    if raw.get("format") != FORMAT:
        _fail(path, f"'format' is {short(raw.get('format'))}; this version reads {FORMAT!r}")
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
        datasets=_parse_datasets(path, datasets),
        raw=raw,
    )


def _parse_datasets(path: Path, datasets: dict[Any, Any]) -> dict[str, DatasetBaseline]:
    """The ``datasets:`` mapping, keyed by text: ``2017`` and ``"2017"`` are one key, twice."""
    __tracebackhide__ = True
    parsed: dict[str, DatasetBaseline] = {}
    for key, entry in datasets.items():
        text = str(key)
        if text in parsed:
            _fail(path, f"'datasets' has the data set key {short(text)} twice")
        parsed[text] = _parse_dataset(path, text, entry)
    return parsed


def _parse_dataset(
    path: Path, key: str, entry: Any, *, where: str | None = None
) -> DatasetBaseline:
    """One ``datasets:`` entry (or one of its slices), validated."""
    __tracebackhide__ = True
    where = where or f"datasets.{_names([key])}"
    allowed = _DATASET_KEYS if ".slices." not in where else _DATASET_KEYS[:2]
    if not isinstance(entry, dict):
        _fail(path, f"'{where}' must be a mapping with keys n and metrics")
    unknown = sorted((name for name in entry if name not in allowed), key=short)
    if unknown:
        _fail(
            path, f"'{where}' has unknown key(s) {_names(unknown)} (allowed: {', '.join(allowed)})"
        )
    n = entry.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        _fail(
            path,
            f"'{where}.n' must be the number of pairs measured (an integer >= 2), not {short(n)}",
        )
    metrics = entry.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        _fail(path, f"'{where}.metrics' must map metric names to {{value: ...}}")
    parsed: dict[str, MetricBaseline] = {}
    for metric, value in metrics.items():
        if metric not in METRICS:
            _fail(
                path,
                f"'{where}.metrics' names unknown metric {short(metric)}; known metrics: "
                f"{', '.join(METRICS)}",
            )
        parsed[metric] = _parse_metric(path, f"{where}.metrics.{metric}", value)
    slices = entry.get("slices")
    if slices is None:
        return DatasetBaseline(n=n, metrics=parsed)
    if not isinstance(slices, dict) or not slices:
        _fail(path, f"'{where}.slices' must map slice names to {{n: <pairs>, metrics: {{...}}}}")
    parsed_slices: dict[str, DatasetBaseline] = {}
    for name, part in slices.items():
        label = str(name)
        if label in parsed_slices:
            _fail(path, f"'{where}.slices' has the slice {short(label)} twice")
        parsed_slices[label] = _parse_dataset(
            path, label, part, where=f"{where}.slices.{_names([label])}"
        )
    return DatasetBaseline(n=n, metrics=parsed, slices=parsed_slices)


def _parse_metric(path: Path, where: str, entry: Any) -> MetricBaseline:
    """A metric entry: a bare number or ``{value, ci?, tolerance?}``."""
    __tracebackhide__ = True
    if not isinstance(entry, dict):
        entry = {"value": entry}
    unknown = sorted((name for name in entry if name not in _METRIC_KEYS), key=short)
    if unknown:
        _fail(
            path,
            f"'{where}' has unknown key(s) {_names(unknown)} (allowed: value, ci, tolerance)",
        )
    value = _optional_number(path, f"{where}.value", entry.get("value"))
    if value is None:
        _fail(path, f"'{where}' has no value")
    ci = entry.get("ci")
    if ci is not None:
        if not isinstance(ci, list) or len(ci) != 2:
            _fail(path, f"'{where}.ci' must be a list [low, high], not {short(ci)}")
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
    number = _finite(value)
    if number is None:
        _fail(path, f"'{where}' must be a finite number, not {short(value)}")
    if minimum is not None and number < minimum:
        _fail(path, f"'{where}' must be >= {minimum}, not {short(value)}")
    return number


def _finite(value: Any) -> float | None:
    """``value`` as a finite float, or None for text, bool, NaN, infinity or an int beyond float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _clip(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters: PyYAML's problem texts may quote the file."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(path: Path, problem: str) -> NoReturn:
    """Raise the one-paragraph error for a malformed baseline file."""
    __tracebackhide__ = True
    raise BaselineError(f"Baseline file {path} is malformed: {problem}. {_FIX}")


def compare(
    report: Report,
    baseline: Baseline,
    *,
    tolerance: float | None = None,
    metrics: Sequence[str] | None = None,
    default_tolerance: float | None = None,
    slices: bool = False,
) -> Comparison:
    """Compare ``report`` with the baseline entry of its data set, row by row (no exception on a
    regression: the Comparison's ``verdict`` says so). A BaselineError when they cannot be compared.
    With ``slices``, every slice the entry records is compared too (``Comparison.slice_rows``).
    """
    __tracebackhide__ = True
    tolerance = check_tolerance(tolerance, "tolerance")
    default_tolerance = check_tolerance(default_tolerance, "default_tolerance")
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
    limits = (tolerance, baseline.tolerance, default_tolerance)
    rows = _rows(entry, report, names, limits)
    slice_rows = _slice_rows(entry, report, baseline, key, metrics, limits) if slices else []
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
    )


def _rows(
    entry: DatasetBaseline,
    report: Report,
    names: Sequence[str],
    limits: tuple[float | None, float | None, float | None],
    slice_name: str | None = None,
) -> list[MetricComparison]:
    """One compared row per metric name; ``limits``: the check's, the file's and the default
    tolerance, around the metric's own."""
    tolerance, file_tolerance, default_tolerance = limits
    rows = []
    for name in names:
        recorded = entry.metrics[name]
        limit = _first(tolerance, recorded.tolerance, file_tolerance, default_tolerance)
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
    limits: tuple[float | None, float | None, float | None],
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
    slices: bool = False,
) -> Comparison:
    """Record ``report`` as the entry of its data set in ``<baseline_dir>/<name>.yaml`` (with
    ``slices``, each of its slices under ``slices:`` too).

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
    _refuse_non_file(path)
    try:
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
            if slices and report.slices:
                datasets[key]["slices"] = {
                    label: {
                        "n": part.n,
                        "metrics": {m: _metric_entry(part, m) for m in names if m in part},
                    }
                    for label, part in report.slices.items()
                }
            raw["datasets"] = datasets
            ordered = {field: raw[field] for field in _TOP_KEYS if raw.get(field) is not None}
            text = yaml.dump(
                ordered,
                Dumper=_Dumper,
                sort_keys=False,
                default_flow_style=None,
                allow_unicode=True,
            )
            write_text_atomic(path, text)
    except OSError as error:
        # A read-only folder, a file where a folder should be, a full disk: one clear failure.
        where = f"{error.strerror}: {error.filename}" if error.filename else str(error)
        raise BaselineError(
            f"Baseline file {path} cannot be written ({where}). Make {path.parent} a writable "
            f"folder, or record the baseline in another one (--modgap-baseline-dir=DIR, or "
            f"baseline_dir= outside pytest)."
        ) from None
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
    for name in ("device", "dtype"):
        if report.metadata.get(name) is not None:
            recorded[name] = str(report.metadata[name])
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
    """Hold the lock of ``path`` (``<path>.lock``) while reading and replacing it."""
    __tracebackhide__ = True
    lock = path.with_name(path.name + ".lock")
    if sys.platform == "win32":
        with _exclusive_lock(lock, path):
            yield
    else:
        with _flock(lock, path):
            yield


if sys.platform != "win32":

    @contextmanager
    def _flock(lock: Path, path: Path) -> Iterator[None]:
        """An flock on ``lock``: the OS releases it when its holder exits or is killed, so a lock
        file left behind by a killed run is simply taken (no timeout, no age rule).

        The holder deletes the file before letting go, so the folder is left clean. A waiter may
        then win the lock of the deleted file, which protects nothing: after taking it, check
        that the path still names the locked file, and start again if not.
        """
        __tracebackhide__ = True
        deadline = time.monotonic() + _LOCK_TIMEOUT_S
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() > deadline:
                    raise BaselineError(_busy(lock, path)) from None
                time.sleep(0.05)
                continue
            except BaseException:
                os.close(fd)
                raise
            if _same_file(lock, fd):
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, _owner().encode("utf-8"))
            yield
        finally:
            lock.unlink(missing_ok=True)
            os.close(fd)

    def _same_file(lock: Path, fd: int) -> bool:
        """Whether the path ``lock`` still names the open file ``fd``."""
        try:
            linked = os.stat(lock)
        except FileNotFoundError:
            return False
        opened = os.fstat(fd)
        return (linked.st_dev, linked.st_ino) == (opened.st_dev, opened.st_ino)


@contextmanager
def _exclusive_lock(lock: Path, path: Path) -> Iterator[None]:
    """Where there is no flock (Windows): ``lock`` created exclusively, holding its owner; one
    older than _STALE_LOCK_S was left by a killed run and is taken over."""
    __tracebackhide__ = True
    deadline = time.monotonic() + _LOCK_TIMEOUT_S
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                if time.time() - lock.stat().st_mtime > _STALE_LOCK_S:
                    lock.unlink(missing_ok=True)
                    continue
            except FileNotFoundError:
                continue
            if time.monotonic() > deadline:
                raise BaselineError(_busy(lock, path)) from None
            time.sleep(0.05)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(_owner())
        break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _owner() -> str:
    """What a lock file holds: who is recording, for the message of a run that waits too long."""
    return f"pid {os.getpid()} on {socket.gethostname()}\n"


def _busy(lock: Path, path: Path) -> str:
    """The message of a run that waited _LOCK_TIMEOUT_S for the lock of ``path``."""
    try:
        holder = lock.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        holder = ""
    held = f" by {short(holder)}" if holder else ""
    return (
        f"Baseline {path} is locked{held} (lock file {lock}) and was not released within "
        f"{_LOCK_TIMEOUT_S:.0f} s. Another pytest run is recording it: let it finish, or stop it."
    )


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
    slices: bool = False,
) -> Comparison:
    """Check ``report`` against ``baseline`` (or record it when ``update``); the engine of both
    ``assert_no_regression`` and the fixture's ``check``. ``slices``: check (record) every slice
    of the report too (``Report.slices``).

    Raises BaselineRegression (an AssertionError with the table and the re-record command) on a
    regression and BaselineError when the baseline is missing or cannot be used; returns the
    Comparison otherwise. ``model``, ``command_options`` and ``nodeid`` go into the re-record
    command.
    """
    __tracebackhide__ = True
    check_tolerance(tolerance, "tolerance")
    check_tolerance(default_tolerance, "default_tolerance")
    model = model or _report_model(report)
    nodeid = nodeid or _current_nodeid()
    if update:
        source = f"recorded with: {record_command(model, nodeid, command_options)}"
        return write(report, baseline, baseline_dir, metrics=metrics, source=source, slices=slices)
    path, _ = resolve(baseline, baseline_dir)
    _refuse_non_file(path)
    if not path.is_file():
        raise BaselineError(
            f"Baseline {baseline!r} does not exist yet: no {path} and no shipped baseline of that "
            f"name (shipped: {', '.join(shipped_names())}). Baselines are never created silently; "
            f"record this one with: {record_command(model, nodeid, command_options)}"
        )
    loaded = load(baseline, baseline_dir)
    comparison = compare(
        report,
        loaded,
        tolerance=tolerance,
        metrics=metrics,
        default_tolerance=default_tolerance,
        slices=slices,
    )
    if comparison.verdict == "regressed":
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
    slices: bool = False,
) -> Comparison:
    """Fail (AssertionError with a readable table) if ``report`` regressed against ``baseline``.

    ``baseline`` is a name: ``<baseline_dir>/<name>.yaml`` (``baseline_dir`` defaults to
    ``./baselines``), else a shipped one such as ``paper/jina-embeddings-v4``. ``tolerance``
    overrides every tolerance in the file; ``metrics`` restricts the check to those names.
    ``update=True`` records ``report`` instead (never a shipped baseline). ``slices=True`` checks
    (records) each of the report's slices too; the failure names those that regressed, worst
    first. Usable without the ``modgap`` fixture, in or out of pytest. Returns the Comparison.
    """
    __tracebackhide__ = True
    return check(
        report,
        baseline,
        baseline_dir=Path("baselines") if baseline_dir is None else baseline_dir,
        tolerance=tolerance,
        metrics=metrics,
        update=update,
        slices=slices,
    )
