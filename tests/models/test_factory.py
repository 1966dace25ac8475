"""``module:factory`` encoders: calling the factory, converting results, and every error."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from pytest_modgap.errors import EncoderError
from pytest_modgap.models.base import Encoder
from pytest_modgap.models.factory import FactoryEncoder, to_embedding_matrix
from pytest_modgap.models.loader import load_encoder
from tests.models.tiny_models import sample_images


class MeanColourEncoder:
    """Embeds an image as its mean colour and a text as (length, vowels, spaces); numpy out."""

    def __init__(self, device: str = "none") -> None:
        self.device = device

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return np.stack([np.asarray(image, dtype=np.float32).mean((0, 1)) for image in images])

    def encode_texts(self, texts: Sequence[str]) -> list[torch.Tensor]:
        return [
            torch.tensor([len(t), sum(c in "aeiou" for c in t), t.count(" ")], dtype=torch.float32)
            for t in texts
        ]


def build_plain() -> MeanColourEncoder:
    """A factory without a device parameter."""
    return MeanColourEncoder()


def build_on_device(device: str) -> MeanColourEncoder:
    """A factory that wants the device."""
    return MeanColourEncoder(device)


class Fingerprinted(MeanColourEncoder):
    def fingerprint(self) -> str:
        return "weights-v7"


def build_fingerprinted() -> Fingerprinted:
    return Fingerprinted()


class WrongShape:
    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return np.zeros((len(images), 3), dtype=np.float32)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.zeros((len(texts) + 1, 3), dtype=np.float32)


def build_wrong_shape() -> WrongShape:
    return WrongShape()


class TextOnly:
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.zeros((len(texts), 3), dtype=np.float32)


def build_text_only() -> TextOnly:
    return TextOnly()


def build_failing() -> Any:
    raise RuntimeError("weights missing")


NOT_CALLABLE = 42
HERE = "tests.models.test_factory"


def test_factory_encoder_converts_numpy_and_row_lists_to_tensors() -> None:
    encoder = load_encoder(f"{HERE}:build_plain", batch_size=2)
    assert isinstance(encoder, FactoryEncoder) and isinstance(encoder, Encoder)
    images = sample_images(5)
    vectors = encoder.encode_images(images)
    assert isinstance(vectors, torch.Tensor) and vectors.shape == (5, 3)
    expected = np.stack([np.asarray(image, dtype=np.float32).mean((0, 1)) for image in images])
    np.testing.assert_allclose(vectors.numpy(), expected)
    texts = encoder.encode_texts(["a cat", "dog", "an owl here"])
    assert texts.tolist() == [[5, 2, 1], [3, 1, 0], [11, 4, 2]]


def test_device_is_passed_only_to_factories_that_take_it() -> None:
    plain = load_encoder(f"{HERE}:build_plain", device="cpu")
    assert isinstance(plain, FactoryEncoder) and plain.wrapped.device == "none"
    on_device = load_encoder(f"{HERE}:build_on_device", device="cpu")
    assert isinstance(on_device, FactoryEncoder) and on_device.wrapped.device == "cpu"


def test_fingerprint_is_the_spec_plus_the_objects_own_and_none_without_one() -> None:
    """The spec names code, not weights: without the object's own fingerprint nothing is cached."""
    assert load_encoder(f"{HERE}:build_plain").fingerprint() is None
    fingerprinted = load_encoder(f"{HERE}:build_fingerprinted").fingerprint()
    assert fingerprinted == f"factory:{HERE}:build_fingerprinted|weights-v7"
    assert FactoryEncoder("m:f", Unsure()).fingerprint() is None


class Unsure(MeanColourEncoder):
    def fingerprint(self) -> str | None:
        return None


class BadFingerprint(MeanColourEncoder):
    def __init__(self, value: object) -> None:
        super().__init__()
        self.value = value

    def fingerprint(self) -> object:
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        (7, "returned an object of type int, not a str"),
        (OSError("no checkpoint"), "raised OSError: no ch"),
    ],
)
def test_unusable_own_fingerprint_is_a_clear_error(value: object, pattern: str) -> None:
    with pytest.raises(EncoderError, match=pattern) as error:
        FactoryEncoder("pkg.mod:build", BadFingerprint(value)).fingerprint()
    assert "'pkg.mod:build'" in str(error.value) and "BadFingerprint.fingerprint()" in str(
        error.value
    )


def test_factory_in_a_user_module_on_sys_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_model_pkg.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            class Model:
                def encode_images(self, images):
                    return np.ones((len(images), 4))

                def encode_texts(self, texts):
                    return np.ones((len(texts), 4))

            def make(**options):
                return Model()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_model_pkg", raising=False)
    encoder = load_encoder("my_model_pkg:make")
    assert isinstance(encoder, FactoryEncoder)
    assert encoder.encode_texts(["x", "y"]).shape == (2, 4)
    assert encoder.encode_images(sample_images(1)).dtype == torch.float64


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("no_such_module_xyz:make", "cannot be imported"),
        (f"{HERE}:no_such_factory", "has no attribute 'no_such_factory'"),
        (f"{HERE}:NOT_CALLABLE", "not a callable"),
        (f"{HERE}:build_text_only", "has no encode_images"),
        (f"{HERE}:build_failing", "raised RuntimeError: weights missing"),
    ],
)
def test_bad_factories_are_clear_errors(spec: str, pattern: str) -> None:
    with pytest.raises(EncoderError, match=pattern) as error:
        load_encoder(spec)
    assert spec in str(error.value)


def test_module_that_raises_on_import_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_model_pkg.py").write_text("raise KeyError('config')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EncoderError, match="importing module 'broken_model_pkg' raised KeyError"):
        load_encoder("broken_model_pkg:make")


def test_wrong_number_of_rows_is_a_clear_error() -> None:
    encoder = load_encoder(f"{HERE}:build_wrong_shape")
    assert isinstance(encoder, FactoryEncoder)
    with pytest.raises(EncoderError, match=r"encode_texts returned shape \(3, 3\) for 2 inputs"):
        encoder.encode_texts(["a", "b"])


@pytest.mark.parametrize(
    ("output", "pattern"),
    [
        ("text", "returned str"),
        (np.array([[1, 2]], dtype=np.int64), "torch.int64 values"),
        (np.array([np.zeros(2), np.zeros(3)], dtype=object), "object array"),
        ([np.zeros(2), np.zeros(3)], "different lengths"),
        (np.zeros(3, dtype=np.float32), r"shape \(3,\)"),
    ],
)
def test_to_embedding_matrix_rejects_unusable_outputs(output: object, pattern: str) -> None:
    with pytest.raises(EncoderError, match=pattern):
        to_embedding_matrix(output, 1 if not isinstance(output, list) else 2, "encode", "spec")
