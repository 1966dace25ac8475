"""datasets save_to_disk folders: splits, the missing extra, and every bad-input error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_modgap.data.hf_disk import HfDiskPairs
from pytest_modgap.data.specs import load_dataset
from pytest_modgap.errors import DatasetError

from .formats import make_pairs, write_hf

datasets = pytest.importorskip("datasets")


def test_splits_of_a_dataset_dict(tmp_path: Path) -> None:
    datasets.disable_progress_bars()
    pairs = make_pairs(6)
    test = datasets.Dataset.from_dict({"image": [p.image for p in pairs], "text": ["t"] * 6})
    train = datasets.Dataset.from_dict({"image": [p.image for p in pairs[:3]], "text": ["r"] * 3})
    folder = tmp_path / "dict"
    datasets.DatasetDict({"test": test, "train": train}).save_to_disk(str(folder))

    assert len(load_dataset(f"hf:{folder}#train")) == 3
    assert list(load_dataset(f"hf:{folder}#test").sample(None).texts) == ["t"] * 6
    # Both orders of split and options.
    assert len(load_dataset(f"hf:{folder}#train?text=text")) == 3
    assert len(load_dataset(f"hf:{folder}?text=text#train")) == 3
    with pytest.raises(
        DatasetError,
        match=r"does not say which split .* the splits test, train\. "
        r"Name one after a #, e\.g\. hf:.*#test",
    ):
        load_dataset(f"hf:{folder}")
    with pytest.raises(DatasetError, match=r"asks for 'val'; .* the splits test, train"):
        load_dataset(f"hf:{folder}#val")


def test_a_single_dataset_and_a_one_split_dict_need_no_split(tmp_path: Path) -> None:
    pairs = make_pairs(5)
    plain = write_hf(tmp_path / "plain", pairs, split=None)
    one = write_hf(tmp_path / "one", pairs, split="validation")
    assert isinstance(load_dataset(f"hf:{plain}"), HfDiskPairs)
    assert list(load_dataset(f"hf:{one}").sample(None).groups or []) == [0, 1, 2, 3, 0]
    with pytest.raises(
        DatasetError, match=r"holds a single Dataset, not a DatasetDict.*Leave out #test"
    ):
        load_dataset(f"hf:{plain}#test")


def test_a_folder_that_is_not_a_saved_dataset_is_named(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match=r"is not a folder written by datasets' save_to_disk"):
        load_dataset(f"hf:{tmp_path}")
    with pytest.raises(DatasetError, match=r"hf:.*nowhere.*does not exist"):
        load_dataset(f"hf:{tmp_path}/nowhere")


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    folder = write_hf(tmp_path / "ds", make_pairs(4))
    with pytest.raises(
        DatasetError,
        match=r"datasets folder .*ds#test has no image column 'jpg' "
        r"\(named by \?image=jpg.*its columns are: image, captions, label",
    ):
        load_dataset(f"hf:{folder}#test?image=jpg")


def test_without_datasets_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_hf(tmp_path / "ds", make_pairs(4))
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(
        DatasetError, match=r"needs the datasets package.*pytest-modgap\[datasets\]"
    ):
        load_dataset(f"hf:{folder}")
