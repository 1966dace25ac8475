"""Baseline snapshots: the vectors of an entry's sampled pairs, kept beside the YAML
(``<name>.snapshots/<entry>.npz``), so a check compares the same pairs paired and can name the
pairs that got worse.

Vectors are stored unit-normalised in float16 (the metrics normalise rows anyway; a unit row's
components lie in [-1, 1], where float16 keeps about 3.3 significant digits). What that rounding
does to each metric is measured by ``benchmarks/bench_gate.py`` and stated in the README. The file
is plain ``.npz`` (read with ``allow_pickle=False``); its SHA-256 is recorded in the YAML, so a
damaged or swapped snapshot is refused by name.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from pytest_modgap.atomic import write_bytes_atomic
from pytest_modgap.errors import BaselineError
from pytest_modgap.gate.baselines.schema import SnapshotRef
from pytest_modgap.metrics.measured import MeasuredPairs

SNAPSHOT_FORMAT = "pytest-modgap-snapshot/1"
_VECTORS = ("image", "text", "text2", "extra_text", "class_embeddings")
_INTEGERS = ("groups", "extra_text_image")
_TEXTS = ("pair_names", "captions", "class_names", "slices")


def snapshot_file(baseline_path: Path, key: str) -> str:
    """The snapshot of entry ``key``, relative to the baseline's folder:
    ``<name>.snapshots/<key, made file-safe>-<8 hex of its hash>.npz`` (the hash keeps two keys
    that only differ in unsafe characters apart)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", key).strip("-.") or "entry"
    tag = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{baseline_path.stem}.snapshots/{safe[:80]}-{tag}.npz"


def encode_snapshot(measured: MeasuredPairs, *, key: str, pairs: str | None) -> bytes:
    """The ``.npz`` bytes of ``measured`` for entry ``key`` (``pairs``: the pairs' fingerprint)."""
    arrays: dict[str, np.ndarray] = {
        "format": np.array(SNAPSHOT_FORMAT),
        "key": np.array(key),
        "pairs": np.array(pairs or ""),
        "pair_ids": np.ascontiguousarray(measured.pair_ids, dtype=np.uint8),
        "retrieval": np.array(measured.retrieval),
    }
    for name in _VECTORS:
        value = getattr(measured, name)
        if value is not None:
            arrays[name] = _unit_float16(np.asarray(value))
    for name in _INTEGERS:
        value = getattr(measured, name)
        if value is not None:
            arrays[name] = np.asarray(value, dtype=np.int64)
    for name in _TEXTS:
        value = getattr(measured, name)
        if value is not None:
            arrays[name] = np.array([str(item) for item in value], dtype=np.str_)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def write_snapshot(folder: Path, relative: str, data: bytes) -> SnapshotRef:
    """Write the snapshot bytes atomically under ``folder``; the YAML's reference to them."""
    write_bytes_atomic(folder / relative, data)
    return SnapshotRef(file=relative, sha256=hashlib.sha256(data).hexdigest())


def read_snapshot(folder: Path, ref: SnapshotRef, *, key: str) -> MeasuredPairs:
    """The snapshot of entry ``key``; a BaselineError naming the file when it is missing, damaged
    (its SHA-256 is not the recorded one) or another entry's."""
    __tracebackhide__ = True
    path = folder / ref.file
    fix = (
        "Re-record the baseline with --modgap-update to write it again, or check without the "
        "snapshot (ini modgap_snapshots = false) to compare the recorded numbers only."
    )
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BaselineError(
            f"Baseline snapshot {path} of entry {key!r} cannot be read "
            f"({error.strerror or error}). {fix}"
        ) from None
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise BaselineError(
            f"Baseline snapshot {path} of entry {key!r} is damaged or was replaced: its SHA-256 "
            f"is not the one the baseline file records. {fix}"
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise BaselineError(
            f"Baseline snapshot {path} cannot be read as .npz ({error}). {fix}"
        ) from None
    if str(arrays.get("format", "")) != SNAPSHOT_FORMAT or str(arrays.get("key", "")) != key:
        raise BaselineError(
            f"Baseline snapshot {path} is not the snapshot of entry {key!r} (it names "
            f"{str(arrays.get('key', ''))!r}, format {str(arrays.get('format', ''))!r}). {fix}"
        )
    return _measured(arrays)


def _measured(arrays: dict[str, np.ndarray]) -> MeasuredPairs:
    fields: dict[str, Any] = {
        name: arrays[name].astype(np.float32) for name in _VECTORS if name in arrays
    }
    fields.update({name: arrays[name] for name in _INTEGERS if name in arrays})
    fields.update({name: [str(item) for item in arrays[name]] for name in _TEXTS if name in arrays})
    return MeasuredPairs(
        identities=arrays["pair_ids"], retrieval=bool(arrays["retrieval"]), **fields
    )


def _unit_float16(vectors: np.ndarray) -> np.ndarray:
    """Rows (the last axis) scaled to unit length in float64, then stored as float16."""
    work = vectors.astype(np.float64)
    scale = np.abs(work).max(axis=-1, keepdims=True)
    scale[scale == 0] = 1.0
    work = work / scale
    norms = np.linalg.norm(work, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    stored: np.ndarray = (work / norms).astype(np.float16)
    return stored
