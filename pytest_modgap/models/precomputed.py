"""Precomputed embeddings (``embeddings:path.npz`` or ``embeddings:DIR``): vectors made elsewhere,
measured as they are.

The .npz holds ``image`` and ``text`` (N, d), optional ``text2`` (N, d) and ``groups`` (N,). A folder
holds the shards and manifest that ``modgap embed --out DIR`` writes (``models.sharded``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pytest_modgap.errors import EncoderError
from pytest_modgap.models.content_hash import file_digest
from pytest_modgap.models.sharded import is_sharded, manifest_digest, read_sharded

_REQUIRED = ("image", "text")
_OPTIONAL = ("text2", "groups")
_SAVE_HINT = "np.savez(path, image=image_vectors, text=text_vectors[, text2=..., groups=...])"
_SHOWN_CHARS = 120
_NAMES_SHOWN = 8


class PrecomputedEmbeddings:
    """Embeddings read from an .npz file instead of computed by a model.

    Loading never unpickles (``allow_pickle=False``): an .npz from an untrusted source cannot run
    code. Device, dtype and batch size do not apply.
    """

    def __init__(self, spec: str, path: Path) -> None:
        self.spec = spec
        self.path = path
        if not path.is_file() and not is_sharded(path):
            state = "is a folder without a manifest.json" if path.is_dir() else "does not exist"
            raise EncoderError(
                f"Model spec {spec!r}: the embeddings file {str(path)!r} {state}. Write one with "
                f"{_SAVE_HINT}, or a folder of shards with 'modgap embed --out DIR', and give its "
                f"path after 'embeddings:'."
            )

    def fingerprint(self) -> str:
        """A hash of every byte of the file (``content_hash.file_digest``, read once per process):
        any change to any array changes it. A folder of shards: a hash of its manifest, which holds
        every shard's SHA-256 (checked when the shards are read)."""
        try:
            if self.path.is_dir():
                return f"sharded-sha256:{manifest_digest(self.path)}"
            return f"npz-sha256:{file_digest(self.path)}"
        except OSError as exc:
            raise EncoderError(
                f"Embeddings file {str(self.path)!r} (spec {self.spec!r}) cannot be read to "
                f"fingerprint it for the embedding cache ({exc.strerror or exc}). Make it readable."
            ) from exc

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(image, text, text2, groups)``, checked: 2-D floats of one shape and at least two
        rows, integer groups. Anything else is an EncoderError naming the file."""
        if self.path.is_dir():
            return read_sharded(self.path, self.spec)
        arrays = self._read()
        image = self._floats("image", arrays["image"])
        text = self._floats("text", arrays["text"])
        if image.shape != text.shape:
            raise self._error(
                f"'image' has shape {image.shape} and 'text' {text.shape}; row i of each must be a "
                f"matched pair in one d-dimensional space, so the shapes must be equal"
            )
        if image.shape[0] < 2:
            raise self._error(
                f"it holds {image.shape[0]} pair(s); the metrics compare pairs with each other "
                f"and need at least 2 rows in 'image' and 'text'"
            )
        text2 = arrays.get("text2")
        if text2 is not None:
            text2 = self._floats("text2", text2)
            if text2.shape != text.shape:
                raise self._error(
                    f"'text2' has shape {text2.shape} but 'text' has {text.shape}; text2 holds a "
                    f"second caption per pair, so the shapes must be equal"
                )
        groups = arrays.get("groups")
        if groups is not None:
            if groups.shape != (text.shape[0],) or not np.issubdtype(groups.dtype, np.integer):
                raise self._error(
                    f"'groups' is {groups.dtype} with shape {groups.shape}; it must be one integer "
                    f"label per pair, shape ({text.shape[0]},)"
                )
        return image, text, text2, groups

    def _read(self) -> dict[str, np.ndarray]:
        """Every array in the file, refusing pickles, non-npz files and unknown or missing names.

        Names are checked before any array is read, so a file with the wrong arrays costs nothing.
        """
        try:
            empty = self.path.stat().st_size == 0
        except OSError as exc:
            raise self._error(f"it cannot be read ({exc.strerror or exc})") from exc
        if empty:
            raise self._error(
                "it is empty (0 bytes): it was never written, or its writer was stopped before "
                "it finished; write it again"
            )
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                self._check_names(list(npz.files))
                arrays = {name: npz[name] for name in npz.files}
        except EncoderError:
            raise
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise self._error(
                    "it holds object arrays (pickled Python objects), which are refused because "
                    "unpickling can run code; store numeric arrays only"
                ) from exc
            raise self._error(f"it cannot be read as .npz ({_cut(str(exc))})") from exc
        except Exception as exc:
            # A damaged or foreign file makes np.load / zipfile raise a dozen types: BadZipFile,
            # zlib.error, EOFError, NotImplementedError and RuntimeError (zip features numpy
            # cannot read, such as encryption), UnicodeDecodeError, MemoryError (a forged array
            # shape), AttributeError / TypeError (a plain .npy loads as an array, without .files).
            # Each means the same thing to the user: this is not a readable .npz archive.
            raise self._error(
                f"it is not an .npz archive ({type(exc).__name__}: {_cut(str(exc))})"
            ) from exc
        for name, array in arrays.items():
            if not isinstance(array, np.ndarray):
                # np.load hands back the raw bytes of a zip member that is not a .npy file.
                raise self._error(f"its member {name!r} is not a .npy array")
        return arrays

    def _check_names(self, names: list[str]) -> None:
        """An EncoderError unless ``names`` are image and text, optionally text2 and groups."""
        missing = [name for name in _REQUIRED if name not in names]
        unknown = sorted(set(names) - set(_REQUIRED) - set(_OPTIONAL))
        if missing or unknown:
            shown = sorted(set(names))
            found = ", ".join(_cut(repr(name)) for name in shown[:_NAMES_SHOWN]) or "none"
            if len(shown) > _NAMES_SHOWN:
                found += f" and {len(shown) - _NAMES_SHOWN} more"
            problem = (
                f"missing {missing}" if missing else f"unknown arrays {unknown[:_NAMES_SHOWN]}"
            )
            raise self._error(
                f"{_cut(problem)} (it holds: {found}); expected image and text, optionally text2 "
                f"and groups"
            )

    def _floats(self, name: str, array: np.ndarray) -> np.ndarray:
        """Check that an embedding array is a 2-D floating matrix with at least one column."""
        if array.ndim != 2 or array.shape[1] == 0 or not np.issubdtype(array.dtype, np.floating):
            raise self._error(
                f"array {name!r} is {_cut(str(array.dtype))} with shape {array.shape}; it must be a "
                f"floating (N, d) matrix with one row per pair"
            )
        return array

    def _error(self, problem: str) -> EncoderError:
        """An EncoderError naming this file, the problem and how to write a valid one."""
        return EncoderError(
            f"Embeddings file {str(self.path)!r} (spec {self.spec!r}): {problem}. Write it with "
            f"{_SAVE_HINT}."
        )


def _cut(text: str) -> str:
    """A short prefix of ``text``: a forged file must not flood the error message."""
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."
