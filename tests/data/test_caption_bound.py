"""Captions are cut to a bound no tokenizer's maximum length reaches first, before any encoder
sees them: a 20 MB caption must not be tokenized whole."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from pytest_modgap.data.caption_bound import CAPTION_CHARS, bounded_caption
from pytest_modgap.data.pairset import PairSet
from pytest_modgap.embedding.pipeline import embed_pairs


def test_a_short_caption_is_kept_as_it_is() -> None:
    caption = "a photo of a dog " * 1000
    assert bounded_caption(caption) is caption
    exactly = "x" * CAPTION_CHARS
    assert bounded_caption(exactly) is exactly


@pytest.mark.parametrize(
    ("caption", "kept"),
    [
        ("x" * (CAPTION_CHARS + 5), "x" * CAPTION_CHARS),
        ("a b" * CAPTION_CHARS, "a b" * (CAPTION_CHARS // 2)),
        ("猫" * 3 * CAPTION_CHARS, "猫" * CAPTION_CHARS),
        ("e\u0301" * 2 * CAPTION_CHARS, ("e\u0301" * CAPTION_CHARS)[:-1]),
    ],
    ids=["ascii", "words", "cjk", "combining-marks"],
)
def test_a_long_caption_keeps_exactly_the_bound_of_counted_characters(
    caption: str, kept: str
) -> None:
    assert bounded_caption(caption) == kept


@pytest.mark.parametrize("spaces", [3 * CAPTION_CHARS, 5 * CAPTION_CHARS + 7])
def test_whitespace_and_control_characters_do_not_count(spaces: int) -> None:
    # A tokenizer collapses the spaces and drops the controls: "dog" is within its window.
    padded = "a" + " " * spaces + "\x00\u200b\t" * 1000 + "dog"
    assert bounded_caption(padded) is padded
    near = "a" * (CAPTION_CHARS - 1) + " " * spaces + "dog"
    assert bounded_caption(near) == "a" * (CAPTION_CHARS - 1) + " " * spaces + "d"


class RecordingEncoder:
    """Remembers every text it is asked to encode."""

    spec = "recording"

    def __init__(self) -> None:
        self.texts: list[str] = []

    def fingerprint(self) -> str:
        return "recording-v1"

    def encode_images(self, images: Sequence[Any]) -> Any:
        import torch

        return torch.ones(len(images), 4)

    def encode_texts(self, texts: Sequence[str]) -> Any:
        import torch

        self.texts.extend(texts)
        return torch.tensor([[float(len(text)), 1.0, 0.0, 2.0] for text in texts])


def test_the_encoder_receives_every_caption_bounded() -> None:
    huge = "a photo of a dog " * (CAPTION_CHARS // 4)
    pairs = PairSet(
        "huge",
        [np.zeros((4, 4, 3), np.uint8)] * 2,
        ["a cat", huge],
        texts2=[huge + "!", "a cow"],
        extra_texts=[[huge + "?"], []],
    )
    encoder = RecordingEncoder()
    embeddings = embed_pairs(pairs, encoder, batch_size=2, num_workers=0, progress=False)
    longest = max(len(text) for text in encoder.texts)
    assert longest == len(bounded_caption(huge)) < len(huge), (
        f"the encoder was handed a caption of {longest:,} characters"
    )
    assert embeddings.text[1, 0] == embeddings.text2[0, 0] == longest  # type: ignore[index]
