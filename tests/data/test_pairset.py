"""The PairSet every loader returns: its caption check and its sampling."""

from __future__ import annotations

import hashlib
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


def scheme_1_fingerprint(pairs: PairSet) -> str:
    """The fingerprint before issue 20: fields joined by one tag byte, without their lengths."""
    digest = hashlib.sha256()
    for i, image in enumerate(pairs.images):
        assert isinstance(image, np.ndarray)
        digest.update(b"A" + str(image.shape).encode() + image.tobytes())
        digest.update(b"\x00" + pairs.texts[i].encode())
        if pairs.texts2 is not None:
            digest.update(b"\x01" + pairs.texts2[i].encode())
        if pairs.groups is not None:
            digest.update(b"\x02" + str(int(pairs.groups[i])).encode())
        for text in pairs.extra_texts[i] if pairs.extra_texts is not None else ():
            digest.update(b"\x03" + text.encode())
    for text in pairs.class_texts or ():
        digest.update(b"\x04" + text.encode())
    return digest.hexdigest()


@pytest.mark.parametrize(
    ("columns", "other"),
    [
        ({"texts": ["a\x021", "b\x022"]}, {"texts": ["a", "b"], "groups": [1, 2]}),
        ({"texts": ["a\x01x", "b\x01y"]}, {"texts": ["a", "b"], "texts2": ["x", "y"]}),
        ({"texts": ["a\x03x", "b"]}, {"texts": ["a", "b"], "extra_texts": [["x"], []]}),
        ({"extra_texts": [["x\x03y"], []]}, {"extra_texts": [["x", "y"], []]}),
        ({"texts": ["a", "b\x04p"]}, {"texts": ["a", "b"], "class_texts": ["p"]}),
    ],
)
def test_captions_holding_a_separator_do_not_fingerprint_as_another_column(
    columns: dict[str, object], other: dict[str, object]
) -> None:
    one, two = pairs(2, **columns), pairs(2, **other)
    assert scheme_1_fingerprint(one) == scheme_1_fingerprint(two), "the collision of issue 20"
    assert one.fingerprint() != two.fingerprint(), "two sets' vectors would share a cache entry"


def test_no_fingerprint_equals_an_old_scheme_one() -> None:
    """A cache entry keyed by a scheme-1 fingerprint is never served under the new scheme (whose
    hashed bytes start with a tag that scheme 1's never did): not for the same pairs, not for
    pairs that collided under scheme 1."""
    collided = pairs(2, texts=["a\x021", "b\x022"]), pairs(2, texts=["a", "b"], groups=[1, 2])
    new = {one.fingerprint() for one in collided}
    assert new.isdisjoint(scheme_1_fingerprint(one) for one in collided)


def test_image_bytes_do_not_run_on_into_the_caption() -> None:
    """Six zero bytes of a uint16 image then caption "a" were the bytes of three zero bytes of a
    uint8 image then a caption of three NULs and "a"."""
    wide = PairSet("toy", [np.zeros((1, 1, 3), np.uint16)] * 2, ["a", "b"])
    narrow = PairSet("toy", [np.zeros((1, 1, 3), np.uint8)] * 2, ["\0\0\0a", "\0\0\0b"])
    assert scheme_1_fingerprint(wide) == scheme_1_fingerprint(narrow), "the collision"
    assert wide.fingerprint() != narrow.fingerprint()
