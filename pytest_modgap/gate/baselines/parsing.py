"""Validating a baseline file's data into ``Baseline``: every problem names the file and the fix."""

from __future__ import annotations

import math
import numbers
import re
from contextvars import ContextVar
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

from pytest_modgap.errors import BaselineError
from pytest_modgap.gate.baselines.quoting import _names, short
from pytest_modgap.gate.baselines.schema import (
    _DATASET_KEYS,
    _FIX,
    _IDENTITY_KEYS,
    _METRIC_KEYS,
    _SLICE_KEYS,
    _SNAPSHOT_KEYS,
    _TOP_KEYS,
    FORMAT,
    FORMAT_PREFIX,
    LEGACY_FORMAT,
    Baseline,
    DatasetBaseline,
    EntryIdentity,
    MetricBaseline,
    SnapshotRef,
)
from pytest_modgap.gate.baselines.yaml_loader import _load_yaml
from pytest_modgap.metrics.catalogue import METRICS

_TEXT: ContextVar[str] = ContextVar("baseline_text", default="")
"""The text being parsed, so an error can point at the line of a problem the data has lost."""


def _line_with(pattern: str) -> int | None:
    """The first line (1-based) of the text being parsed that matches ``pattern``."""
    for number, line in enumerate(_TEXT.get().splitlines(), start=1):
        if re.search(pattern, line):
            return number
    return None


def parse(text: str, path: Path, *, name: str, shipped: bool = False) -> Baseline:
    """Validate the text of a baseline file; every problem names ``path`` and what to fix."""
    __tracebackhide__ = True
    token = _TEXT.set(text)
    try:
        return _parse(text, path, name=name, shipped=shipped)
    finally:
        _TEXT.reset(token)


def _parse(text: str, path: Path, *, name: str, shipped: bool) -> Baseline:
    __tracebackhide__ = True
    raw = _load_yaml(text, path)
    if not isinstance(raw, dict):
        _fail(path, f"the file must be a mapping with keys {', '.join(_TOP_KEYS)}")
    unknown = sorted((key for key in raw if key not in _TOP_KEYS), key=short)
    if unknown:
        _fail(path, f"unknown top-level key(s) {_names(unknown)} (allowed: {', '.join(_TOP_KEYS)})")
    file_format = _check_format(path, raw.get("format"))
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
        format=file_format,
    )


def _check_format(path: Path, value: Any) -> str:
    """The file's format, one this version reads; a newer one asks for an upgrade (the file is
    fine: it must never be deleted for being newer than the reader)."""
    __tracebackhide__ = True
    if value in (FORMAT, LEGACY_FORMAT):
        return str(value)
    if isinstance(value, str) and value.startswith(FORMAT_PREFIX):
        version = value[len(FORMAT_PREFIX) :]
        if version.isdigit() and int(version) > int(FORMAT[len(FORMAT_PREFIX) :]):
            raise BaselineError(
                f"Baseline file {path} has format {value!r}: it was written by a newer "
                f"pytest-modgap, and this version reads up to {FORMAT!r}. Upgrade pytest-modgap "
                f"(pip install -U pytest-modgap) wherever this baseline is checked or recorded; "
                f"the file itself is fine, keep it as it is."
            )
    _fail(path, f"'format' is {short(value)}; this version reads {FORMAT!r} and {LEGACY_FORMAT!r}")


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
    allowed = _DATASET_KEYS if ".slices." not in where else _SLICE_KEYS
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
    identity = _parse_identity(path, where, entry.get("identity"))
    run = _parse_run(path, where, entry.get("run"))
    snapshot = _parse_snapshot(path, where, entry.get("snapshot"))
    slices = entry.get("slices")
    if slices is None:
        return DatasetBaseline(n, parsed, identity=identity, run=run, snapshot=snapshot)
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
    return DatasetBaseline(n, parsed, parsed_slices, identity=identity, run=run, snapshot=snapshot)


def _parse_identity(path: Path, where: str, entry: Any) -> EntryIdentity | None:
    """An entry's ``identity:`` block (None when absent)."""
    __tracebackhide__ = True
    if entry is None:
        return None
    where = f"{where}.identity"
    _mapping_of(path, where, entry, _IDENTITY_KEYS)
    dataset, pairs = entry.get("dataset"), entry.get("pairs")
    if not isinstance(dataset, str):
        _fail(path, f"'{where}.dataset' must be the data set spec as text, not {short(dataset)}")
    if pairs is not None and not isinstance(pairs, str):
        _fail(path, f"'{where}.pairs' must be a fingerprint as text, not {short(pairs)}")
    samples, seed = entry.get("samples"), entry.get("seed", 0)
    for name, value in (("samples", samples), ("seed", seed)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            _fail(path, f"'{where}.{name}' must be an integer, not {short(value)}")
    templates = entry.get("templates")
    if templates is not None and (
        not isinstance(templates, list) or not all(isinstance(t, str) for t in templates)
    ):
        _fail(path, f"'{where}.templates' must be a list of texts, not {short(templates)}")
    dim = entry.get("truncate_dim")
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
        _fail(path, f"'{where}.truncate_dim' must be a positive integer, not {short(dim)}")
    return EntryIdentity(
        dataset=dataset,
        pairs=pairs,
        samples=samples,
        seed=int(seed if seed is not None else 0),
        templates=None if templates is None else tuple(templates),
        truncate_dim=dim,
    )


def _parse_run(path: Path, where: str, entry: Any) -> dict[str, str]:
    """An entry's ``run:`` block: text values (device, dtype, versions, date)."""
    __tracebackhide__ = True
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        _fail(path, f"'{where}.run' must map names to text, not {short(entry)}")
    return {str(name): str(value) for name, value in entry.items() if value is not None}


def _parse_snapshot(path: Path, where: str, entry: Any) -> SnapshotRef | None:
    """An entry's ``snapshot:`` block: a relative file name without '..', and its SHA-256."""
    __tracebackhide__ = True
    if entry is None:
        return None
    where = f"{where}.snapshot"
    _mapping_of(path, where, entry, _SNAPSHOT_KEYS)
    file, digest = entry.get("file"), entry.get("sha256")
    if (
        not isinstance(file, str)
        or not file.endswith(".npz")
        or PurePosixPath(file).is_absolute()
        or ".." in PurePosixPath(file).parts
        or "\\" in file
    ):
        _fail(path, f"'{where}.file' must be a relative .npz path without '..', not {short(file)}")
    if not isinstance(digest, str) or len(digest) != 64:
        _fail(path, f"'{where}.sha256' must be the file's SHA-256 (64 hex digits)")
    return SnapshotRef(file=file, sha256=digest)


def _mapping_of(path: Path, where: str, entry: Any, allowed: tuple[str, ...]) -> None:
    __tracebackhide__ = True
    if not isinstance(entry, dict):
        _fail(path, f"'{where}' must be a mapping with keys {', '.join(allowed)}")
    unknown = sorted((name for name in entry if name not in allowed), key=short)
    if unknown:
        _fail(
            path, f"'{where}' has unknown key(s) {_names(unknown)} (allowed: {', '.join(allowed)})"
        )


def _parse_metric(path: Path, where: str, entry: Any) -> MetricBaseline:
    """A metric entry: a bare number or ``{value, ci?, tolerance?}``."""
    __tracebackhide__ = True
    if not isinstance(entry, dict):
        entry = {"value": entry}
    unknown = sorted((name for name in entry if name not in _METRIC_KEYS), key=short)
    if unknown:
        digits = [name for name in unknown if str(name).isdigit() and entry[name] is None]
        hint = ""
        if digits:
            line = _line_with(rf"[:,]\s*\d+\s*,\s*{re.escape(str(digits[0]))}\b")
            at = f" (line {line})" if line is not None else ""
            hint = (
                f"; a decimal comma{at}? Inside {{...}} YAML reads '0,{digits[0]}' as a value 0 "
                f"and a key {digits[0]}: write decimals with a point, e.g. value: 0.{digits[0]}"
            )
        _fail(
            path,
            f"'{where}' has unknown key(s) {_names(unknown)} (allowed: value, ci, tolerance){hint}",
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
        comma = isinstance(value, str) and re.fullmatch(r"\s*-?\d+,\d+\s*", value)
        hint = f" (a decimal comma? write {value.strip().replace(',', '.')})" if comma else ""
        _fail(path, f"'{where}' must be a finite number, not {short(value)}{hint}")
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


def _fail(path: Path, problem: str) -> NoReturn:
    """Raise the one-paragraph error for a malformed baseline file."""
    __tracebackhide__ = True
    raise BaselineError(f"Baseline file {path} is malformed: {problem}. {_FIX}")
