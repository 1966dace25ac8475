"""Recording a report as its data set's entry: the YAML written atomically under the file's lock."""

from __future__ import annotations

import datetime
import importlib.metadata
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pytest_modgap.atomic import write_text_atomic
from pytest_modgap.errors import BaselineError
from pytest_modgap.gate.baselines.comparison import Comparison, _report_dataset_key, _report_model
from pytest_modgap.gate.baselines.location import _check_name, _refuse_non_file, load
from pytest_modgap.gate.baselines.locking import _locked
from pytest_modgap.gate.baselines.schema import _TOP_KEYS, FORMAT, SHIPPED_PREFIX

if TYPE_CHECKING:
    from pytest_modgap.metrics.report import Report


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
