"""Recording a report as its data set's entry: the YAML written atomically under the file's lock."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pytest_modgap.atomic import write_text_atomic
from pytest_modgap.errors import BaselineError
from pytest_modgap.gate.baselines.comparison import Comparison, _report_model
from pytest_modgap.gate.baselines.identity import entry_key, report_identity, report_run
from pytest_modgap.gate.baselines.location import _check_name, _refuse_non_file, load
from pytest_modgap.gate.baselines.locking import _locked
from pytest_modgap.gate.baselines.schema import (
    _TOP_KEYS,
    FORMAT,
    SHIPPED_PREFIX,
    DatasetBaseline,
    EntryIdentity,
)
from pytest_modgap.gate.baselines.snapshot import encode_snapshot, snapshot_file, write_snapshot

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
    entry: str | None = None,
    snapshots: bool = True,
) -> Comparison:
    """Record ``report`` as the entry of its data set in ``<baseline_dir>/<name>.yaml`` (with
    ``slices``, each of its slices under ``slices:`` too), with what it measured (``identity``)
    and how (``run``), and, with ``snapshots`` and a report from ``measure``, its vectors in
    ``<name>.snapshots/``.

    Other entries of an existing file are kept, and so are this entry's recorded slices when the
    update records none and measured the same pairs. A different data set (another spec and other
    pairs) whose key meets an existing entry is refused, never overwritten. The file and its
    snapshot are replaced atomically under a lock, so xdist workers never lose or tear an update;
    a symlinked file is updated where it points. Shipped (``paper/...``) baselines are never
    written.
    """
    __tracebackhide__ = True
    bare = _check_name(name)
    if bare.startswith(SHIPPED_PREFIX):
        raise BaselineError(
            f"Baseline {name!r} is a published baseline shipped with pytest-modgap and is never "
            f"rewritten; names under {SHIPPED_PREFIX!r} are reserved. Record your own under "
            f"another name, e.g. baseline={bare[len(SHIPPED_PREFIX) :]!r}."
        )
    key = entry_key(report, entry)
    identity = report_identity(report)
    names = list(report) if metrics is None else list(metrics)
    unknown = [metric for metric in names if metric not in report]
    if unknown:
        raise BaselineError(
            f"Cannot record {', '.join(unknown)} in baseline {name!r}: not in this report "
            f"(it has {', '.join(report)})."
        )
    path = Path(baseline_dir) / f"{bare}.yaml"
    _refuse_non_file(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _locked(target):
            existing = load(bare, baseline_dir) if path.is_file() else None
            raw: dict[str, Any] = {} if existing is None else dict(existing.raw)
            old = None if existing is None else existing.datasets.get(key)
            if old is not None:
                _refuse_another_data_set(path, key, old, identity, entry)
            recorded: dict[str, Any] = {
                "n": report.n,
                "identity": identity.to_yaml(),
                "run": report_run(report),
            }
            if snapshots and report.measured is not None:
                relative = snapshot_file(target, key)
                data = encode_snapshot(report.measured, key=key, pairs=identity.pairs)
                ref = write_snapshot(target.parent, relative, data)
                recorded["snapshot"] = {"file": ref.file, "sha256": ref.sha256}
            if old is not None and old.snapshot is not None and "snapshot" not in recorded:
                # Recorded without one now: the old vectors would describe nothing in the file.
                (target.parent / old.snapshot.file).unlink(missing_ok=True)
            recorded["metrics"] = {m: _metric_entry(report, m) for m in names}
            kept = _kept_slices(raw, key, old, identity) if not slices else None
            if slices and report.slices:
                recorded["slices"] = {
                    label: {
                        "n": part.n,
                        "metrics": {m: _metric_entry(part, m) for m in names if m in part},
                    }
                    for label, part in report.slices.items()
                }
            elif kept:
                recorded["slices"] = kept
            raw["format"] = FORMAT
            raw["model"] = _report_model(report) or raw.get("model")
            raw["source"] = source or raw.get("source") or "recorded with pytest --modgap-update"
            raw.pop("protocol", None)  # format 1's one protocol per file: now in each identity
            raw.pop("recorded", None)  # and each entry's run
            datasets = dict(raw.get("datasets") or {})
            datasets[key] = recorded
            raw["datasets"] = datasets
            ordered = {field: raw[field] for field in _TOP_KEYS if raw.get(field) is not None}
            text = yaml.dump(
                ordered,
                Dumper=_Dumper,
                sort_keys=False,
                default_flow_style=None,
                allow_unicode=True,
                width=100,
            )
            write_text_atomic(target, text)
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


def _refuse_another_data_set(
    path: Path, key: str, old: DatasetBaseline, identity: EntryIdentity, entry: str | None
) -> None:
    """Recording onto an entry of another data set (another spec and other pairs) would lose it."""
    __tracebackhide__ = True
    recorded = old.identity
    if recorded is None or recorded.dataset == identity.dataset:
        return
    if recorded.pairs is not None and recorded.pairs == identity.pairs:
        return  # the same pairs, read from another place
    how = "another entry name" if entry is not None else "an entry name of its own"
    raise BaselineError(
        f"Baseline file {path}: entry {key!r} records data set {recorded.dataset!r}, and this "
        f"run measured another data set, {identity.dataset!r} (other pairs), under the same key; "
        f"recording it would overwrite the other's values. Give this data set {how} "
        f"(check(..., entry='NAME'), assert_no_regression(..., entry='NAME')), or, if "
        f"{identity.dataset!r} replaces {recorded.dataset!r}, delete entry {key!r} from the file "
        f"first."
    )


def _kept_slices(
    raw: dict[str, Any], key: str, old: DatasetBaseline | None, identity: EntryIdentity
) -> Any:
    """The entry's recorded slices, kept by an update that records none when it measured the same
    pairs (other pairs would leave slices that describe pairs no longer measured)."""
    if old is None or not old.slices or old.identity is None:
        return None
    if old.identity.pairs is None or old.identity.pairs != identity.pairs:
        return None
    return (raw.get("datasets") or {}).get(key, {}).get("slices")


class _FlowMapping(dict[str, Any]):
    """A mapping written on one line, ``{value: 0.73, ci: [0.72, 0.74]}``, as people write them."""


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes metric entries in flow style, and never an anchor or alias (which
    the loader refuses): a value used twice is written out twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_Dumper.add_representer(
    _FlowMapping,
    lambda dumper, data: dumper.represent_mapping(
        "tag:yaml.org,2002:map", data.items(), flow_style=True
    ),
)


def _metric_entry(report: Report, name: str) -> _FlowMapping:
    """``{value, ci?}`` as recorded: floats are written as their shortest exact text, so the value
    reads back as the same float (``tolerance=0`` passes the report just recorded)."""
    entry = _FlowMapping(value=float(report[name]))
    if name in report.ci:
        entry["ci"] = [float(bound) for bound in report.ci[name]]
    return entry
