"""Sharded embeddings: a folder of ``.npz`` shards and a manifest (``modgap embed --out DIR``),
read back by ``embeddings:DIR``.

The writer never holds more than one shard: rows arrive in any order (a Ray job's actors finish
their batches when they do), each with its row number. Layout::

    DIR/manifest.json      format, model, data set, counts, dimension, and every shard's SHA-256
    DIR/pairs.npz          text_index (N,): the text row of each pair's caption; optional
                           text2_index (N,) and groups (N,)
    DIR/image-00000.npz    rows (k,) int64 pair numbers, vectors (k, d) float32
    DIR/text-00000.npz     rows (k,) int64 text numbers (distinct captions), vectors (k, d)

The folder appears whole or not at all: shards are written into a hidden sibling folder
(``.DIR.<random>.tmp``, locked while its writer lives) that is renamed into place once every image
and every text has exactly one row; the next writer of DIR removes one that a killed run left.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pytest_modgap.atomic import locked_temp_folder, remove_orphaned_temp_files
from pytest_modgap.errors import EncoderError

FORMAT = "pytest-modgap-embeddings/1"
MANIFEST = "manifest.json"
PAIRS = "pairs.npz"
DEFAULT_SHARD_ROWS = 65536
"""Rows per shard file: 256 MiB of float32 vectors at d = 1,024."""

ORPHAN_AGE_S = 60.0
"""A hidden temp folder older than this whose writer holds no lock on it was left by a killed
``modgap embed``: the next writer of the same output removes it."""

Kind = Literal["image", "text"]
_KINDS: tuple[Kind, ...] = ("image", "text")


class ShardedEmbeddingsWriter:
    """Writes the embeddings of ``n_pairs`` images and ``n_texts`` distinct captions to ``folder``.

    ``add(kind, rows, vectors)`` takes rows in any order; ``close()`` checks that every row came
    exactly once and moves the folder into place. Used as a context manager, an error leaves
    nothing behind. ``folder`` must not exist yet, or be an empty folder.
    """

    def __init__(
        self,
        folder: Path,
        *,
        text_index: np.ndarray,
        text2_index: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        n_texts: int,
        metadata: Mapping[str, Any] | None = None,
        shard_rows: int = DEFAULT_SHARD_ROWS,
    ) -> None:
        self.folder = folder
        check_output_folder(folder)
        if shard_rows < 1:
            raise ValueError(f"shard_rows must be at least 1, got {shard_rows}.")
        self._shard_rows = shard_rows
        self._n_pairs = len(text_index)
        self._n_texts = n_texts
        self._pairs = {"text_index": np.asarray(text_index, np.int64)}
        if text2_index is not None:
            self._pairs["text2_index"] = np.asarray(text2_index, np.int64)
        if groups is not None:
            self._pairs["groups"] = np.asarray(groups, np.int64)
        self.metadata = dict(metadata or {})
        """Written to the manifest at ``close()``: what made the vectors (model, data set, ...)."""
        self._seen = {"image": np.zeros(self._n_pairs, bool), "text": np.zeros(n_texts, bool)}
        self._pending: dict[Kind, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in _KINDS}
        self._pending_rows = dict.fromkeys(_KINDS, 0)
        self._shards: list[dict[str, Any]] = []
        self._dim: int | None = None
        folder.parent.mkdir(parents=True, exist_ok=True)
        remove_orphaned_temp_files(
            folder.parent, re.escape(folder.name), ORPHAN_AGE_S, folders=True
        )
        self._temp, self._lock = locked_temp_folder(folder)
        os.chmod(self._temp, 0o755)  # mkdtemp's private 0700 would hide the folder from a team

    def __enter__(self) -> ShardedEmbeddingsWriter:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        if error is None:
            self.close()
        else:
            self.abort()

    def add(self, kind: Kind, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Take the vectors of image or text ``rows``; a row given twice is an error."""
        rows = np.asarray(rows, np.int64)
        vectors = np.asarray(vectors, np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(rows):
            raise EncoderError(
                f"{len(rows)} {kind} rows came with vectors of shape {vectors.shape}; each row "
                f"needs one vector."
            )
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise EncoderError(
                f"{kind} vectors of width {vectors.shape[1]} after width {self._dim}: every "
                f"batch must have the same embedding dimension."
            )
        seen = self._seen[kind]
        if len(rows) and (rows.min() < 0 or rows.max() >= len(seen)):
            raise EncoderError(f"{kind} row numbers outside 0..{len(seen) - 1}: {rows[:5]}.")
        distinct, counts = np.unique(rows, return_counts=True)
        if seen[rows].any() or len(distinct) != len(rows):
            # Rows seen in an earlier add, and rows repeated within this one.
            twice = set(rows[seen[rows]].tolist()) | set(distinct[counts > 1].tolist())
            raise EncoderError(
                f"{kind} rows {sorted(twice)[:5]} arrived twice; the embeddings would not be one "
                f"vector per row."
            )
        seen[rows] = True
        self._dim = int(vectors.shape[1])  # set only by a batch that was taken
        self._pending[kind].append((rows, vectors))
        self._pending_rows[kind] += len(rows)
        if self._pending_rows[kind] >= self._shard_rows:
            self._flush(kind, whole_shards_only=True)

    def close(self) -> Path:
        """Write the last shards, ``pairs.npz`` and the manifest, then move the folder into place."""
        try:
            for kind in _KINDS:
                self._flush(kind)
            for name, seen in self._seen.items():
                if not seen.all():
                    missing = np.flatnonzero(~seen)
                    raise EncoderError(
                        f"{len(missing)} {name} rows never arrived (first: {missing[:5].tolist()}); "
                        f"the embeddings are incomplete and were not written to {self.folder}."
                    )
            pairs_bytes = _npz_bytes(self._pairs)
            (self._temp / PAIRS).write_bytes(pairs_bytes)
            manifest = {
                "format": FORMAT,
                **self.metadata,
                "pairs": self._n_pairs,
                "texts": self._n_texts,
                "dim": self._dim,
                "pairs_file": {"file": PAIRS, "sha256": hashlib.sha256(pairs_bytes).hexdigest()},
                "shards": self._shards,
            }
            (self._temp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
            _fsync_folder(self._temp)
            if self.folder.is_dir():
                self.folder.rmdir()  # empty (checked at the start); a non-empty one stops here
            os.replace(self._temp, self.folder)
        except BaseException:
            self.abort()
            raise
        self._release()
        return self.folder

    def abort(self) -> None:
        """Remove the unfinished folder."""
        shutil.rmtree(self._temp, ignore_errors=True)
        self._release()

    def _release(self) -> None:
        """Let go of the temp folder's lock (``locked_temp_folder``), once."""
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1

    def _flush(self, kind: Kind, *, whole_shards_only: bool = False) -> None:
        """Write the pending rows of ``kind`` as shards of ``shard_rows``; with
        ``whole_shards_only``, keep a last partial shard pending (every shard but each kind's last
        is full)."""
        parts = self._pending[kind]
        if not parts:
            return
        rows = np.concatenate([part[0] for part in parts])
        vectors = np.concatenate([part[1] for part in parts])
        end = len(rows) - len(rows) % self._shard_rows if whole_shards_only else len(rows)
        for start in range(0, end, self._shard_rows):
            stop = min(end, start + self._shard_rows)
            self._write_shard(kind, rows[start:stop], vectors[start:stop])
        self._pending[kind] = [(rows[end:], vectors[end:])] if end < len(rows) else []
        self._pending_rows[kind] = len(rows) - end

    def _write_shard(self, kind: Kind, rows: np.ndarray, vectors: np.ndarray) -> None:
        name = f"{kind}-{sum(shard['kind'] == kind for shard in self._shards):05d}.npz"
        data = _npz_bytes({"rows": rows, "vectors": vectors})
        with open(self._temp / name, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        self._shards.append(
            {
                "file": name,
                "kind": kind,
                "rows": len(rows),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )


def check_output_folder(folder: Path) -> None:
    """An EncoderError unless ``folder`` can receive sharded embeddings: absent, or an empty
    folder (nothing is overwritten)."""
    if folder.is_dir() and any(folder.iterdir()):
        raise EncoderError(
            f"Output folder {str(folder)!r} already holds files; sharded embeddings are never "
            f"written over anything. Remove it or give another --out."
        )
    if folder.exists() and not folder.is_dir():
        raise EncoderError(
            f"Output {str(folder)!r} is a file; --out takes a folder that does not exist yet."
        )


def is_sharded(path: Path) -> bool:
    """Whether ``path`` is a folder of sharded embeddings (it holds a manifest)."""
    return path.is_dir() and (path / MANIFEST).is_file()


def manifest_digest(folder: Path) -> str:
    """A SHA-256 of the manifest, which holds every shard's SHA-256: the folder's fingerprint."""
    return hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest()


def read_sharded(
    folder: Path, spec: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(image, text, text2, groups)`` of a sharded folder, each shard checked against its SHA-256
    in the manifest, and every row present exactly once; anything else is an EncoderError naming
    the file and the fix."""
    manifest = _read_manifest(folder, spec)
    _check_counts_fit_shards(folder, spec, manifest)
    n_pairs, n_texts, dim = manifest["pairs"], manifest["texts"], manifest["dim"]
    arrays = {
        "image": np.empty((n_pairs, dim), np.float32),
        "text": np.empty((n_texts, dim), np.float32),
    }
    seen = {"image": np.zeros(n_pairs, bool), "text": np.zeros(n_texts, bool)}
    for shard in manifest["shards"]:
        kind = shard["kind"]
        content = _read_npz(folder, shard, spec, ("rows", "vectors"))
        rows, vectors = content["rows"], content["vectors"]
        if (
            rows.ndim != 1
            or not np.issubdtype(rows.dtype, np.integer)
            or vectors.shape != (len(rows), dim)
            or len(rows) != shard["rows"]
        ):
            raise _error(folder, spec, f"shard {shard['file']} does not match the manifest")
        if len(rows) and (rows.min() < 0 or rows.max() >= len(seen[kind])):
            raise _error(folder, spec, f"shard {shard['file']} has rows outside the data set")
        if seen[kind][rows].any():
            raise _error(folder, spec, f"shard {shard['file']} repeats rows of another shard")
        seen[kind][rows] = True
        arrays[kind][rows] = vectors
    for kind, present in seen.items():
        if not present.all():
            raise _error(folder, spec, f"{int((~present).sum())} {kind} rows are in no shard")
    pairs = _read_npz(folder, manifest["pairs_file"], spec, ("text_index",))
    text_index = pairs["text_index"]
    indices = [text_index] + ([pairs["text2_index"]] if "text2_index" in pairs else [])
    for index in indices:
        if index.shape != (n_pairs,) or len(index) and (index.min() < 0 or index.max() >= n_texts):
            raise _error(folder, spec, f"{PAIRS} does not match the manifest's counts")
    groups = pairs.get("groups")
    if groups is not None and groups.shape != (n_pairs,):
        raise _error(folder, spec, f"{PAIRS} has {groups.shape} groups for {n_pairs} pairs")
    texts = arrays["text"]
    text2 = texts[pairs["text2_index"]] if "text2_index" in pairs else None
    return arrays["image"], texts[text_index], text2, groups


def _read_manifest(folder: Path, spec: str) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _error(folder, spec, f"{MANIFEST} cannot be read as JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _error(folder, spec, f"{MANIFEST} is not a {FORMAT} manifest")
    counts_ok = all(
        isinstance(manifest.get(name), int) and manifest[name] >= 0
        for name in ("pairs", "texts", "dim")
    )
    shards = manifest.get("shards")
    shards_ok = isinstance(shards, list) and all(
        isinstance(shard, dict)
        and shard.get("kind") in _KINDS
        and isinstance(shard.get("rows"), int)
        and shard["rows"] >= 0
        and _safe_name(shard.get("file"))
        and isinstance(shard.get("sha256"), str)
        for shard in shards
    )
    pairs_file = manifest.get("pairs_file")
    pairs_ok = (
        isinstance(pairs_file, dict)
        and _safe_name(pairs_file.get("file"))
        and isinstance(pairs_file.get("sha256"), str)
    )
    if not (counts_ok and shards_ok and pairs_ok):
        raise _error(folder, spec, f"{MANIFEST} lacks counts, shards or the pairs file")
    if manifest["pairs"] < 2:
        raise _error(folder, spec, "it holds fewer than 2 pairs; the metrics need at least 2")
    return manifest


def _check_counts_fit_shards(folder: Path, spec: str, manifest: Mapping[str, Any]) -> None:
    """The manifest's counts agree with its shards, and every shard's file is large enough for
    the rows it claims, before the vectors are allocated from those counts: a hand-edited
    manifest ("pairs": 100000000000) must be an error, not a terabyte allocation.

    A shard of ``rows`` vectors of ``dim`` values takes at least one byte per value on disk
    (the writer stores float32, four), so the file sizes bound what reading can allocate.
    """
    dim = manifest["dim"]
    for kind, count in (("image", "pairs"), ("text", "texts")):
        held = sum(shard["rows"] for shard in manifest["shards"] if shard["kind"] == kind)
        claimed = manifest[count]
        if held != claimed:
            missing = f"{claimed - held} {kind} rows are in no shard: " if held < claimed else ""
            extra = "" if held < claimed else " (a shard that repeats rows of another shard?)"
            raise _error(
                folder,
                spec,
                f"{missing}{MANIFEST} says {claimed} {count}, but its {kind} shards hold "
                f"{held}{extra}",
            )
    for shard in manifest["shards"]:
        try:
            size = (folder / shard["file"]).stat().st_size
        except OSError as exc:
            raise _error(
                folder, spec, f"{shard['file']} cannot be read ({exc.strerror or exc})"
            ) from exc
        if shard["rows"] * dim > size:
            raise _error(
                folder,
                spec,
                f"shard {shard['file']} is {size} bytes, too small for {shard['rows']} rows of "
                f"{dim} values (the manifest's counts were changed after it was written)",
            )


def _safe_name(name: object) -> bool:
    """A plain file name inside the folder (a forged manifest cannot point outside it)."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and ("\\" not in name)
    )


def _read_npz(
    folder: Path, entry: Mapping[str, Any], spec: str, required: tuple[str, ...]
) -> dict[str, np.ndarray]:
    path = folder / entry["file"]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _error(
            folder, spec, f"{entry['file']} cannot be read ({exc.strerror or exc})"
        ) from exc
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise _error(
            folder,
            spec,
            f"{entry['file']} is not the file the manifest names (its SHA-256 differs: changed or "
            f"damaged after it was written)",
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except Exception as exc:  # a hash-matching file that np.load refuses: written by another tool
        raise _error(folder, spec, f"{entry['file']} is not a readable .npz ({exc})") from exc
    missing = [name for name in required if name not in arrays]
    if missing:
        raise _error(folder, spec, f"{entry['file']} lacks {missing}")
    return arrays


def _error(folder: Path, spec: str, problem: str) -> EncoderError:
    return EncoderError(
        f"Sharded embeddings {str(folder)!r} (spec {spec!r}): {problem}. Write the folder again "
        f"with 'modgap embed --out {folder}' (into an empty or new folder)."
    )


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _fsync_folder(folder: Path) -> None:
    """Flush the folder's entries to disk before it is renamed into place."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
