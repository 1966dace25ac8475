"""Load CIFAR-100 (python version) into a PairSet of 32x32 images, class prompts and fine labels.

The pickles are read by an unpickler that can only build dicts, lists, bytes and numpy arrays.
"""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.errors import DatasetError

_SPLITS = ("test", "train")
_ROW_BYTES = 3 * 32 * 32


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes, limited to latin1."""
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


def _numpy_attribute(submodule: str, name: str) -> Any:
    """``numpy._core.<submodule>.<name>``, or ``numpy.core``'s on numpy 1.x (no ``_core``)."""
    try:
        module = importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:
        module = importlib.import_module(f"numpy.core.{submodule}")
    return getattr(module, name)


def _allowed_globals() -> dict[tuple[str, str], Callable[..., Any]]:
    """The only globals a CIFAR-100 pickle needs: numpy arrays and scalars, and bytes decoding.

    The distributed files (Python 2, protocol 2) need ``_reconstruct``, ``ndarray`` and ``dtype``;
    ``scalar`` (numpy integer labels) and ``_frombuffer`` (protocol 5) cover files saved again from
    Python 3. Each name is accepted under numpy 2's ``numpy._core`` and numpy 1's ``numpy.core``.
    """
    multiarray = ("_reconstruct", "scalar")
    numeric = ("_frombuffer",)
    allowed: dict[tuple[str, str], Callable[..., Any]] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Python 3 writes bytes objects into protocol-2 pickles as _codecs.encode(str, "latin1").
        ("_codecs", "encode"): _latin1_encode,
    }
    for submodule, names in (("multiarray", multiarray), ("numeric", numeric)):
        for name in names:
            function = _numpy_attribute(submodule, name)
            for package in ("numpy._core", "numpy.core"):
                allowed[(f"{package}.{submodule}", name)] = function
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global outside ``_allowed_globals``.

    A pickle can name any importable callable and have it called (``os.system`` included); refusing
    at ``find_class`` means such a file fails before anything it names is ever imported or run.
    """

    def __init__(self, file: IO[bytes], path: Path) -> None:
        # encoding="bytes" reads the Python 2 strings of the distributed files as bytes, not text.
        super().__init__(file, encoding="bytes")
        self._path = path
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        """The allowed global ``module.name``; a DatasetError for anything else."""
        allowed = self._allowed.get((module, name))
        if allowed is None:
            raise DatasetError(
                f"{self._path} asks to load {module}.{name}, which a CIFAR-100 file never needs; "
                f"it was refused without running anything. Use the cifar-100-python files from "
                f"https://www.cs.toronto.edu/~kriz/cifar.html; do not load files you do not trust."
            )
        return allowed


def load_cifar100(root: Path, *, split: str = "test") -> PairSet:
    """Read the CIFAR-100 ``split`` ("test" or "train") from ``root``.

    ``root`` holds ``cifar-100-python/`` (as unpacked from cifar-100-python.tar.gz) or its files
    ``test``, ``train`` and ``meta`` directly. Images are 32x32x3 uint8 arrays; ``text`` is "a photo
    of a {class}.", ``text2`` "a blurry photo of a {class}." (underscores in class names become
    spaces) and ``groups`` the fine label, so images of the same class are not counted as negatives.
    ``class_names`` are the 100 fine label names, for zero-shot classification (and per-class
    slices); the captions are class prompts, so retrieval is left out.
    """
    root = Path(root)
    if split not in _SPLITS:
        raise DatasetError(
            f"CIFAR-100 split {split!r} does not exist; use 'test' (the default) or 'train'."
        )
    folder = _find_folder(root, split)
    batch = _load_pickle(folder / split)
    meta = _load_pickle(folder / "meta")

    data = _field(batch, "data", folder / split)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DatasetError(
            f"{folder / split}: 'data' is not a 2-D uint8 array of image rows. Use the unmodified "
            f"cifar-100-python files."
        )
    if data.shape[1] != _ROW_BYTES:
        raise DatasetError(
            f"{folder / split}: 'data' rows have {data.shape[1]} values, not {_ROW_BYTES} "
            f"(3 x 32 x 32). Use the CIFAR-100 python version, not another data set."
        )
    labels = np.asarray(_field(batch, "fine_labels", folder / split))
    names = [
        _decode(name, folder / "meta") for name in _field(meta, "fine_label_names", folder / "meta")
    ]
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
        raise DatasetError(
            f"{folder / split}: 'fine_labels' must be {len(data)} integers, one per image row. "
            f"Use the unmodified cifar-100-python files."
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
        raise DatasetError(
            f"{folder / split}: fine labels run from {labels.min()} to {labels.max()} but "
            f"{folder / 'meta'} names {len(names)} classes. Use meta and {split} from the same "
            f"download."
        )

    # Rows are channel-major (1024 red, 1024 green, 1024 blue values); the PairSet wants HxWx3.
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    classes = [names[label].replace("_", " ") for label in labels.tolist()]
    return PairSet(
        name="cifar100",
        images=list(images),
        texts=[f"a photo of a {name}." for name in classes],
        texts2=[f"a blurry photo of a {name}." for name in classes],
        groups=labels.astype(int).tolist(),
        origins=[f"CIFAR-100 {split} row {i}" for i in range(len(images))],
        description=f"CIFAR-100 {split} split from {folder}: {len(images)} images, "
        f"{len(set(classes))} classes",
        class_names=[name.replace("_", " ") for name in names],
        class_prompts=True,
    )


def _find_folder(root: Path, split: str) -> Path:
    """The folder holding ``split`` and ``meta``: ``root/cifar-100-python`` or ``root``."""
    if not root.is_dir():
        raise DatasetError(
            f"CIFAR-100 folder {root} does not exist. Point the data set spec at the folder that "
            f"holds cifar-100-python/."
        )
    candidates = (root / "cifar-100-python", root)
    for folder in candidates:
        if (folder / split).is_file() and (folder / "meta").is_file():
            return folder
    looked = ", ".join(str(folder / name) for folder in candidates for name in (split, "meta"))
    raise DatasetError(
        f"No CIFAR-100 {split} split in {root}: looked for {looked}. Unpack "
        f"cifar-100-python.tar.gz (the python version) into {root}."
    )


def _load_pickle(path: Path) -> dict[Any, Any]:
    """The dict pickled in ``path``, read with the restricted unpickler."""
    try:
        with path.open("rb") as handle:
            obj = _RestrictedUnpickler(handle, path).load()
    except DatasetError:
        raise
    except Exception as exc:
        # A truncated or foreign file can fail in many ways inside the unpickler (EOFError,
        # UnpicklingError, ValueError, ...); each means the same thing to the user.
        raise DatasetError(
            f"Cannot read {path} as a CIFAR-100 pickle ({type(exc).__name__}: {exc}). Download "
            f"cifar-100-python.tar.gz again and unpack it."
        ) from exc
    if not isinstance(obj, dict):
        raise DatasetError(
            f"{path} holds a {type(obj).__name__}, not the dict of a CIFAR-100 file. Use the "
            f"unmodified cifar-100-python files."
        )
    return obj


def _field(obj: dict[Any, Any], key: str, path: Path) -> Any:
    """``obj[key]``, under the bytes key of the distributed files or a str key of a re-saved one."""
    for candidate in (key.encode(), key):
        if candidate in obj:
            return obj[candidate]
    raise DatasetError(
        f"{path} has no {key!r} entry (it has {sorted(map(repr, obj))}). Use the unmodified "
        f"cifar-100-python files."
    )


def _decode(name: object, path: Path) -> str:
    """A class name from ``path``, stored as bytes in the distributed files."""
    if isinstance(name, bytes):
        return name.decode("utf-8")
    if isinstance(name, str):
        return name
    raise DatasetError(
        f"{path} has a class name {name!r} that is not text. Use the unmodified meta file."
    )
