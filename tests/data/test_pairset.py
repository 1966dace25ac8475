"""The PairSet every loader returns: its caption check and its sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_modgap.data.coco import load_coco
from pytest_modgap.data.pairset import PairSet
from pytest_modgap.errors import DatasetError

from .layouts import coco_layout


def pairs(n: int, **columns: object) -> PairSet:
    texts = columns.pop("texts", [f"caption {i}" for i in range(n)])
    return PairSet(
        name="toy",
        images=[np.zeros((2, 2, 3), np.uint8)] * n,
        texts=texts,  # type: ignore[arg-type]
        origins=[f"toy.jsonl line {i + 1}" for i in range(n)],
        **columns,  # type: ignore[arg-type]
    )


def test_lone_surrogate_in_a_coco_caption_names_the_file_and_annotation(tmp_path: Path) -> None:
    images = {1: "000000000001.jpg", 2: "000000000002.jpg"}
    notes = [(11, 1, "a cat"), (12, 2, "a \ud83d dog")]
    captions = coco_layout(tmp_path, "val2017", images, notes)
    with pytest.raises(DatasetError) as info:
        load_coco(tmp_path)
    message = str(info.value)
    assert "captions_val2017.json annotation id 12" in message
    assert str(captions) in message and "lone UTF-16 surrogate" in message


def test_captions_must_be_strings_that_utf8_can_encode() -> None:
    texts = ["un chien 🐕", "日本語のキャプション", "emoji \U0001f600 and accents é", "plain"]
    assert list(pairs(4, texts=texts).texts) == texts
    with pytest.raises(DatasetError, match=r"caption of toy.jsonl line 3 is int 7, not a string"):
        pairs(4, texts=["a", "b", 7, "d"])
    with pytest.raises(DatasetError, match=r"second caption of toy.jsonl line 2 holds a lone"):
        pairs(4, texts2=["a", "b\udfff", "c", "d"])


def test_more_samples_than_pairs_is_refused_with_both_numbers() -> None:
    toy = pairs(30)
    assert toy.sample(30, seed=3) is toy, "exactly the size keeps every pair, in order"
    assert len(toy.sample(29, seed=3)) == 29
    with pytest.raises(DatasetError) as info:
        toy.sample(1000, seed=0)
    message = str(info.value)
    assert "samples=1000 asks for more pairs than data set 'toy' holds (30)" in message
    assert "--modgap-samples" in message and "at most 30" in message
