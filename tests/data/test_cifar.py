"""Tests of the CIFAR-100 loader: pixel layout, prompts, labels, and refusal of unsafe pickles."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from pytest_modgap.data.cifar import load_cifar100
from pytest_modgap.errors import DatasetError

from .layouts import cifar100_layout

CLASSES = ["apple", "aquarium_fish", "maple_tree"]
LABELS = [2, 0, 1, 1]


def test_images_prompts_and_groups(tmp_path: Path) -> None:
    _, rows = cifar100_layout(tmp_path, LABELS, CLASSES)
    pairs = load_cifar100(tmp_path)
    assert len(pairs) == 4 and pairs.name == "cifar100"
    image = pairs.images[0]
    assert isinstance(image, np.ndarray)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    # Rows are channel-major: 1024 red, then 1024 green, then 1024 blue values, row by row.
    for channel in range(3):
        for y, x in ((0, 0), (5, 17), (31, 31)):
            assert image[y, x, channel] == rows[0, channel * 1024 + y * 32 + x]
    assert list(pairs.texts) == [
        "a photo of a maple tree.",
        "a photo of a apple.",
        "a photo of a aquarium fish.",
        "a photo of a aquarium fish.",
    ]
    assert pairs.texts2 is not None and pairs.texts2[0] == "a blurry photo of a maple tree."
    assert list(pairs.groups or []) == LABELS
    assert (pairs.origins or [])[3] == "CIFAR-100 test row 3"


def test_flat_layout_and_train_split(tmp_path: Path) -> None:
    cifar100_layout(tmp_path, [0, 1], CLASSES, split="train", nested=False)
    assert list(load_cifar100(tmp_path, split="train").groups or []) == [0, 1]
    with pytest.raises(DatasetError, match="No CIFAR-100 test split"):
        load_cifar100(tmp_path)


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_files_saved_again_from_python3_load(tmp_path: Path, protocol: int) -> None:
    folder, rows = cifar100_layout(tmp_path, LABELS, CLASSES, protocol=protocol)
    # Re-saved files may hold numpy integer labels and str keys.
    batch = {"data": rows, "fine_labels": [np.int64(label) for label in LABELS]}
    with (folder / "test").open("wb") as handle:
        pickle.dump(batch, handle, protocol=protocol)
    pairs = load_cifar100(tmp_path)
    assert list(pairs.groups or []) == LABELS
    image = pairs.images[1]
    assert isinstance(image, np.ndarray)
    assert np.array_equal(image, rows[1].reshape(3, 32, 32).transpose(1, 2, 0))


def test_unknown_split(tmp_path: Path) -> None:
    cifar100_layout(tmp_path, LABELS, CLASSES)
    with pytest.raises(DatasetError, match="split 'val'"):
        load_cifar100(tmp_path, split="val")


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_cifar100(tmp_path / "nope")


class _RunsShell:
    """Unpickling this calls os.system: what a malicious data set file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_malicious_pickle_is_refused_without_running(tmp_path: Path, protocol: int) -> None:
    folder, _ = cifar100_layout(tmp_path, LABELS, CLASSES)
    marker = tmp_path / "pwned"
    with (folder / "test").open("wb") as handle:
        pickle.dump({b"data": _RunsShell(marker)}, handle, protocol=protocol)
    with pytest.raises(DatasetError, match=r"system, which a CIFAR-100 file never needs"):
        load_cifar100(tmp_path)
    assert not marker.exists(), "the pickle's payload ran"


def test_codecs_encode_only_for_latin1(tmp_path: Path) -> None:
    folder, _ = cifar100_layout(tmp_path, LABELS, CLASSES)
    # A hand-made protocol-2 pickle: _codecs.encode("x", "rot13").
    payload = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R."
    (folder / "meta").write_bytes(payload)
    with pytest.raises(DatasetError, match="rot13"):
        load_cifar100(tmp_path)


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        ({b"fine_labels": LABELS}, "no 'data' entry"),
        ({b"data": np.zeros((4, 3072), np.float32), b"fine_labels": LABELS}, "2-D uint8"),
        ({b"data": np.zeros((4, 100), np.uint8), b"fine_labels": LABELS}, "100 values, not 3072"),
        ({b"data": np.zeros((4, 3072), np.uint8), b"fine_labels": [0, 1]}, "must be 4 integers"),
        ({b"data": np.zeros((4, 3072), np.uint8), b"fine_labels": [0, 1, 2, 3]}, "names 3 classes"),
        ([1, 2, 3], "holds a list"),
    ],
)
def test_malformed_batch(tmp_path: Path, batch: object, expected: str) -> None:
    folder, _ = cifar100_layout(tmp_path, LABELS, CLASSES)
    with (folder / "test").open("wb") as handle:
        pickle.dump(batch, handle, protocol=2)
    with pytest.raises(DatasetError, match=expected):
        load_cifar100(tmp_path)


def test_truncated_file(tmp_path: Path) -> None:
    folder, _ = cifar100_layout(tmp_path, LABELS, CLASSES)
    content = (folder / "test").read_bytes()
    (folder / "test").write_bytes(content[: len(content) // 2])
    with pytest.raises(DatasetError, match="Cannot read .* as a CIFAR-100 pickle"):
        load_cifar100(tmp_path)
