"""The on-disk embedding cache: one .npz per (model, recipe, data) key, written atomically.

A second run with the same model and data reads its embeddings here instead of encoding again.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pytest_modgap.atomic import atomic_writer, remove_orphaned_temp_files
from pytest_modgap.embedding.embeddings import Embeddings

FORMAT_VERSION = "3"
"""Bumped whenever entries written by older versions must no longer be read (part of every key).
2: images are decoded by every PIL mode's own rules and turned upright by EXIF orientation.
3: entries hold every caption (``extra_text`` with ``extra_text_image``) and the zero-shot prompts
(``class_text``); equal texts are encoded once, so they share one row."""

_ARRAYS = ("image", "text", "text2", "extra_text", "extra_text_image", "class_text")

ORPHAN_AGE_S = 3600.0
"""An entry's temp file last written longer ago than this was left by a killed writer: removed
by ``EmbeddingCache.sweep``."""

_ENTRY_NAME = r"[0-9a-f]{64}\.npz"
_swept: set[Path] = set()


class CacheWarning(UserWarning):
    """The cache cannot serve a model or an entry (unreadable or unwritable entry, a model with no
    fingerprint); the run goes on and embeds without it."""


def default_cache_dir() -> Path:
    """The cache folder: ``$MODGAP_CACHE_DIR``, else ``$XDG_CACHE_HOME/pytest-modgap``, else
    ``~/.cache/pytest-modgap``."""
    explicit = os.environ.get("MODGAP_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pytest-modgap"


class EmbeddingCache:
    """Embeddings stored under ``root`` as ``<key>.npz``, read without pickle.

    Writers never leave a partial entry: each writes a temporary file in the same folder, syncs it
    and renames it over the entry, so concurrent writers of one key (xdist workers) each replace
    the entry with a complete file. An unreadable entry is a miss with a ``CacheWarning``; the next
    ``put`` replaces it. The first ``get`` or ``put`` of a process on a root removes the temp files
    that killed writers left there (``sweep``).
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = default_cache_dir() if root is None else Path(root)

    def sweep(self) -> list[Path]:
        """Remove the entries' temp files last written over ``ORPHAN_AGE_S`` ago: a writer killed
        between creating and renaming its temp file leaves it behind, and nothing else would.

        Only names of this cache's own temp files (``.<key>.npz.<random>.tmp``) are touched, never
        a younger one that a live writer (another xdist worker) may still be writing. Returns the
        files removed.
        """
        _swept.add(self.root)
        return remove_orphaned_temp_files(self.root, _ENTRY_NAME, ORPHAN_AGE_S)

    @staticmethod
    def key(**parts: str) -> str:
        """SHA-256 of the named parts (order-free) and the cache format version.

        Pass everything that can change the vectors: encoder fingerprint, preprocessing key, dtype,
        data set fingerprint, sample indices or seed.
        """
        named = dict(parts, cache_format=FORMAT_VERSION)
        blob = json.dumps(sorted(named.items()), ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()

    def path(self, key: str) -> Path:
        """The file that holds the entry for ``key``."""
        if not key or not all(ch in "0123456789abcdef" for ch in key):
            raise ValueError(f"Cache key {key!r} is not a key from EmbeddingCache.key().")
        return self.root / f"{key}.npz"

    def get(self, key: str) -> Embeddings | None:
        """The entry for ``key``, or ``None`` when there is none or it cannot be read."""
        path = self.path(key)
        if self.root not in _swept:
            self.sweep()
        try:
            with np.load(path, allow_pickle=False) as entry:
                if str(entry["format"]) != FORMAT_VERSION:
                    raise ValueError(f"format {entry['format']} is not {FORMAT_VERSION}")
                arrays = {name: entry[name] for name in _ARRAYS if name in entry.files}
            return Embeddings(
                image=_float32(arrays, "image"),
                text=_float32(arrays, "text"),
                text2=_float32(arrays, "text2") if "text2" in arrays else None,
                extra_text=_float32(arrays, "extra_text") if "extra_text" in arrays else None,
                extra_text_image=_int64(arrays, "extra_text_image")
                if "extra_text_image" in arrays
                else None,
                class_text=_float32(arrays, "class_text") if "class_text" in arrays else None,
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            warnings.warn(
                f"Ignoring unreadable embedding cache entry {path} ({exc}); the embeddings are "
                f"computed again and the entry is replaced.",
                CacheWarning,
                stacklevel=2,
            )
            return None

    def put(self, key: str, embeddings: Embeddings) -> None:
        """Store ``embeddings`` under ``key``; failing to write warns instead of failing the run."""
        path = self.path(key)
        if self.root not in _swept:
            self.sweep()
        try:
            with atomic_writer(path) as handle:
                _write_npz(handle, embeddings)
        except OSError as exc:
            warnings.warn(
                f"Could not write embedding cache entry {path} ({exc}); the run goes on, but the "
                f"next one will embed again. Set MODGAP_CACHE_DIR to a writable folder.",
                CacheWarning,
                stacklevel=2,
            )


def _float32(arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    array = arrays[name]
    if array.dtype != np.float32:
        raise ValueError(f"array {name!r} is {array.dtype}, expected float32")
    return array


def _int64(arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    array = arrays[name]
    if array.dtype != np.int64:
        raise ValueError(f"array {name!r} is {array.dtype}, expected int64")
    return array


def _write_npz(handle: BinaryIO, embeddings: Embeddings) -> None:
    arrays = {name: getattr(embeddings, name) for name in _ARRAYS}
    present = {name: array for name, array in arrays.items() if array is not None}
    np.savez(handle, format=np.array(FORMAT_VERSION), **present)
