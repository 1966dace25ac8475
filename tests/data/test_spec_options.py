"""The spec grammar of the large-set loaders: wds / parquet / hf / csv prefixes, ``?key=value``
field options, globs with ``?`` in them, and the hints for a bare path."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_modgap.data.specs import describe_dataset_specs, load_dataset
from pytest_modgap.errors import DatasetError

from .formats import make_pairs, write_csv, write_parquet, write_shards


def test_every_large_set_loader_is_described() -> None:
    text = describe_dataset_specs()
    for form in ("wds:<shards>", "parquet:<files>", "hf:<folder>[#split]", "csv:<file>"):
        assert form in text
    assert "pytest-modgap[datasets]" in text


def test_webdataset_alias_and_a_glob_with_a_question_mark(tmp_path: Path) -> None:
    write_shards(tmp_path, make_pairs(6), shards=2)
    assert len(load_dataset(f"webdataset:{tmp_path}/shard-?.tar")) == 6
    assert len(load_dataset(f"WDS:{tmp_path}/shard-?.tar?label=")) == 6
    write_parquet(tmp_path / "p", make_pairs(6), files=2)
    assert len(load_dataset(f"parquet:{tmp_path}/p/part-?.parquet?text=captions")) == 6


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("?images=jpg", r"unknown option 'images'; the options are image, text, label"),
        ("?image=&text=txt", r"leaves \?image= empty"),
        ("?text=a&text=b", r"gives the option 'text' twice"),
    ],
)
def test_bad_options_are_named(tmp_path: Path, tail: str, message: str) -> None:
    write_shards(tmp_path, make_pairs(4), shards=1)
    with pytest.raises(DatasetError, match=message):
        load_dataset(f"wds:{tmp_path}{tail}")


def test_a_bare_path_suggests_its_loader(tmp_path: Path) -> None:
    csv = write_csv(tmp_path, make_pairs(2, second=False, labels=False))
    with pytest.raises(DatasetError, match=rf"name its loader, e\.g\. csv:{csv}"):
        load_dataset(str(csv))
    write_parquet(tmp_path / "p", make_pairs(2), files=1)
    with pytest.raises(DatasetError, match=r"e\.g\. parquet:"):
        load_dataset(str(tmp_path / "p" / "part-0.parquet"))


def test_a_spec_without_a_path_names_the_form() -> None:
    with pytest.raises(DatasetError, match=r"write hf:<folder>\[#split\]"):
        load_dataset("hf:")
