"""Tests of the data set spec grammar: loader dispatch, aliases, built-ins and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.data.specs import DEFAULT_DATASET, describe_dataset_specs, load_dataset
from pytest_modgap.errors import DatasetError

from .layouts import (
    captions_for,
    cifar100_layout,
    coco_layout,
    flickr_captions_txt,
    write_image,
)

CAPTIONS = {name: captions_for(name) for name in ("a.jpg", "b.jpg")}


def manifest(root: Path) -> Path:
    for i in range(2):
        write_image(root / f"{i}.png", i)
    path = root / "pairs.jsonl"
    lines = [json.dumps({"image": f"{i}.png", "text": f"pair {i}"}) for i in range(2)]
    path.write_text("\n".join(lines))
    return path


@pytest.mark.parametrize("loader", ["flickr8k", "flickr30k", "FLICKR8K"])
def test_flickr_loaders_name_the_set(tmp_path: Path, loader: str) -> None:
    flickr_captions_txt(tmp_path, CAPTIONS)
    pairs = load_dataset(f"{loader}:{tmp_path}")
    assert pairs.name == loader.lower()
    assert len(pairs) == 2


@pytest.mark.parametrize("loader", ["coco", "mscoco"])
def test_coco_and_alias(tmp_path: Path, loader: str) -> None:
    coco_layout(tmp_path, "val2017", {1: "1.jpg", 2: "2.jpg"}, [(1, 1, "one"), (2, 2, "two")])
    assert list(load_dataset(f"{loader}:{tmp_path}").texts) == ["one", "two"]


def test_cifar100_default_and_split_suffix(tmp_path: Path) -> None:
    cifar100_layout(tmp_path, [0, 1, 1], ["x", "y"], split="test")
    cifar100_layout(tmp_path, [1, 0], ["x", "y"], split="train")
    assert list(load_dataset(f"cifar100:{tmp_path}").groups or []) == [0, 1, 1]
    assert list(load_dataset(f"cifar100:{tmp_path}#train").groups or []) == [1, 0]
    assert list(load_dataset(f"cifar100:{tmp_path}#test").groups or []) == [0, 1, 1]
    with pytest.raises(DatasetError, match="split 'val'"):
        load_dataset(f"cifar100:{tmp_path}#val")


def test_cifar100_folder_with_hash_in_its_name(tmp_path: Path) -> None:
    root = tmp_path / "cifar#1"
    cifar100_layout(root, [0, 1], ["x", "y"])
    assert len(load_dataset(f"cifar100:{root}")) == 2


@pytest.mark.parametrize("form", ["jsonl:{}", "manifest:{}", "{}", " jsonl: {} "])
def test_manifest_forms(tmp_path: Path, form: str) -> None:
    path = manifest(tmp_path)
    assert list(load_dataset(form.format(path)).texts) == ["pair 0", "pair 1"]


def test_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    manifest(tmp_path)
    assert len(load_dataset("jsonl:~/pairs.jsonl")) == 2
    assert len(load_dataset("~/pairs.jsonl")) == 2


def test_nonexistent_path_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match=f"{missing}, which does not exist"):
        load_dataset(f"flickr8k:{missing}")
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(f"{missing}.jsonl")


def test_builtin_name_dispatches_to_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    builtin = pytest.importorskip("pytest_modgap.data.builtin")
    assert DEFAULT_DATASET in builtin.BUILTIN_DATASETS
    tiny = PairSet(name="tiny", images=[Path("a.png"), Path("b.png")], texts=["a", "b"])
    monkeypatch.setitem(builtin.BUILTIN_DATASETS, "tiny", lambda: tiny)
    assert load_dataset("tiny") is tiny
    assert "tiny" in describe_dataset_specs()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("imagenet:/data", "unknown loader 'imagenet'"),
        ("not-a-set", "'not-a-set' is not a built-in data set"),
        ("", "spec is empty"),
        ("coco:", "no path after the colon; write coco:"),
        ("mscoco", "names a loader but no data; write coco:"),
    ],
)
def test_unknown_specs_list_the_loaders(spec: str, expected: str) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(spec)
    message = str(info.value)
    assert expected in message
    if "no path" not in expected and "no data" not in expected:
        for loader in ("flickr8k:", "flickr30k:", "coco:", "cifar100:", "jsonl:", "mscoco"):
            assert loader in message
        assert "Built-in data sets:" in message


def test_existing_folder_without_loader_gets_a_hint(tmp_path: Path) -> None:
    with pytest.raises(
        DatasetError, match=f"It is a path: name its loader, e.g. flickr8k:{tmp_path}"
    ):
        load_dataset(str(tmp_path))


def test_help_text_lists_every_loader() -> None:
    text = describe_dataset_specs()
    for form in (
        "flickr8k:<folder>",
        "flickr30k:<folder>",
        "coco:",
        "mscoco",
        "cifar100:",
        "jsonl:",
    ):
        assert form in text
