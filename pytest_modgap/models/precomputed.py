"""Precomputed embeddings (``embeddings:path.npz``): vectors made elsewhere, measured as they are.

The .npz holds ``image`` and ``text`` (N, d), optional ``text2`` (N, d) and ``groups`` (N,).
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from pytest_modgap.errors import EncoderError

_REQUIRED = ("image", "text")
_OPTIONAL = ("text2", "groups")
_SAVE_HINT = "np.savez(path, image=image_vectors, text=text_vectors[, text2=..., groups=...])"


class PrecomputedEmbeddings:
    """Embeddings read from an .npz file instead of computed by a model.

    Loading never unpickles (``allow_pickle=False``): an .npz from an untrusted source cannot run
    code. Device, dtype and batch size do not apply.
    """

    def __init__(self, spec: str, path: Path) -> None:
        self.spec = spec
        self.path = path
        if not path.is_file():
            state = "is a directory" if path.is_dir() else "does not exist"
            raise EncoderError(
                f"Model spec {spec!r}: the embeddings file {str(path)!r} {state}. Write one with "
                f"{_SAVE_HINT} and give its path after 'embeddings:'."
            )

    def fingerprint(self) -> str:
        """sha256 of the file's bytes: any change to any array changes it."""
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            for block in iter(lambda: handle.read(1024 * 1024), b""):
                digest.update(block)
        return f"npz-sha256:{digest.hexdigest()}"

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(image, text, text2, groups)``, checked: 2-D floats of one shape, integer groups."""
        arrays = self._read()
        image = _floats(self.spec, "image", arrays["image"])
        text = _floats(self.spec, "text", arrays["text"])
        if image.shape != text.shape:
            raise self._error(
                f"'image' has shape {image.shape} and 'text' {text.shape}; row i of each must be a "
                f"matched pair in one d-dimensional space, so the shapes must be equal"
            )
        text2 = arrays.get("text2")
        if text2 is not None:
            text2 = _floats(self.spec, "text2", text2)
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
        """Every array in the file, refusing pickles, non-npz files and unknown or missing names."""
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise self._error(
                    "it holds object arrays (pickled Python objects), which are refused because "
                    "unpickling can run code; store numeric arrays only"
                ) from exc
            raise self._error(f"it cannot be read as .npz ({exc})") from exc
        except (OSError, zipfile.BadZipFile, AttributeError, TypeError) as exc:
            # A plain .npy file loads as an ndarray, which has no .files.
            raise self._error(f"it is not an .npz archive ({type(exc).__name__}: {exc})") from exc
        missing = [name for name in _REQUIRED if name not in arrays]
        unknown = sorted(set(arrays) - set(_REQUIRED) - set(_OPTIONAL))
        if missing or unknown:
            found = ", ".join(sorted(arrays)) or "none"
            problem = f"missing {missing}" if missing else f"unknown arrays {unknown}"
            raise self._error(
                f"{problem} (it holds: {found}); expected image and text, optionally text2 and "
                f"groups"
            )
        return arrays

    def _error(self, problem: str) -> EncoderError:
        """An EncoderError naming this file, the problem and how to write a valid one."""
        return EncoderError(
            f"Embeddings file {str(self.path)!r} (spec {self.spec!r}): {problem}. Write it with "
            f"{_SAVE_HINT}."
        )


def _floats(spec: str, name: str, array: np.ndarray) -> np.ndarray:
    """Check that an embedding array is a 2-D floating matrix with at least one column."""
    if array.ndim != 2 or array.shape[1] == 0 or not np.issubdtype(array.dtype, np.floating):
        raise EncoderError(
            f"Embeddings spec {spec!r}: array {name!r} is {array.dtype} with shape {array.shape}; "
            f"it must be a floating (N, d) matrix with one row per pair. Write it with "
            f"{_SAVE_HINT}."
        )
    return array
