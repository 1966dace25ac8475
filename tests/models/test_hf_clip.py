"""The transformers CLIP family: loading, encoding, preprocessing recipes and fingerprints."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from pytest_modgap.errors import EncoderError
from pytest_modgap.models.base import Encoder, ImagePreprocessing, PixelEncoder
from pytest_modgap.models.hf_clip import HFClipEncoder, read_preprocessing, resample_name
from pytest_modgap.models.loader import load_encoder
from tests.models.tiny_models import CLIP_DIM, SIGLIP_TEXT_LENGTH, sample_images

TEXTS = ["a cat", "a photo of a cab", "hello world!"]


def load_clip(directory: Path, **options: Any) -> HFClipEncoder:
    encoder = load_encoder(str(directory), device="cpu", **options)
    assert isinstance(encoder, HFClipEncoder)
    return encoder


def test_clip_loads_as_pixel_encoder_and_encodes_shapes(clip_dir: Path) -> None:
    encoder = load_clip(clip_dir)
    assert isinstance(encoder, Encoder) and isinstance(encoder, PixelEncoder)
    assert encoder.embedding_dim == CLIP_DIM
    assert encoder.device == torch.device("cpu") and encoder.dtype == torch.float32
    assert not encoder.model.training
    assert encoder.model_name == clip_dir.name
    assert encoder.encode_texts(TEXTS).shape == (3, CLIP_DIM)
    assert encoder.encode_images(sample_images(4)).shape == (4, CLIP_DIM)
    assert encoder.encode_texts([]).shape == (0, CLIP_DIM)


def test_encoding_is_deterministic_across_calls_loads_and_batch_sizes(clip_dir: Path) -> None:
    first = load_clip(clip_dir)
    second = load_clip(clip_dir, batch_size=2)
    images = sample_images(5)
    assert torch.equal(first.encode_texts(TEXTS), first.encode_texts(TEXTS))
    torch.testing.assert_close(first.encode_texts(TEXTS), second.encode_texts(TEXTS))
    torch.testing.assert_close(first.encode_images(images), second.encode_images(images))


def test_texts_longer_than_the_text_tower_are_truncated(clip_dir: Path) -> None:
    encoder = load_clip(clip_dir)
    long_text = "a cat " * 100
    vectors = encoder.encode_texts([long_text, "a cat"])
    assert vectors.shape == (2, CLIP_DIM) and torch.isfinite(vectors).all()


def test_preprocessing_is_read_off_the_clip_image_processor(clip_dir: Path) -> None:
    encoder = load_clip(clip_dir)
    assert isinstance(encoder, PixelEncoder)
    assert encoder.preprocessing == ImagePreprocessing(
        height=32,
        width=32,
        shortest_edge=32,
        center_crop=True,
        crop_height=32,
        crop_width=32,
        rescale_factor=1 / 255,
        mean=(0.48145466, 0.4578275, 0.40821073),
        std=(0.26862954, 0.26130258, 0.27577711),
        resample="bicubic",
    )


def test_forward_pixels_on_preprocessed_pixels_matches_encode_images(clip_dir: Path) -> None:
    encoder = load_clip(clip_dir)
    assert isinstance(encoder, PixelEncoder)
    images = sample_images(3)
    pixels = encoder.preprocess(images)
    assert pixels.dtype == torch.float32 and pixels.shape == (3, 3, 32, 32)
    assert pixels.device == torch.device("cpu")
    torch.testing.assert_close(encoder.forward_pixels(pixels), encoder.encode_images(images))


def test_both_get_features_return_shapes_give_the_same_vectors(
    clip_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = load_clip(clip_dir)
    images = sample_images(2)
    expected_images = encoder.encode_images(images)
    expected_texts = encoder.encode_texts(TEXTS)
    image_features = encoder.model.get_image_features
    text_features = encoder.model.get_text_features

    def as_tensor(method: Any) -> Any:
        # transformers 4.x: get_*_features returns the projected tensor itself.
        @functools.wraps(method)
        def call(**kwargs: Any) -> Any:
            output = method(**kwargs)
            return output if isinstance(output, torch.Tensor) else output.pooler_output

        return call

    def as_output(method: Any) -> Any:
        # transformers 5: an output object whose pooler_output holds the projection.
        @functools.wraps(method)
        def call(**kwargs: Any) -> Any:
            output = method(**kwargs)
            tensor = output if isinstance(output, torch.Tensor) else output.pooler_output
            return SimpleNamespace(last_hidden_state=None, pooler_output=tensor)

        return call

    for wrap in (as_tensor, as_output):
        monkeypatch.setattr(encoder.model, "get_image_features", wrap(image_features))
        monkeypatch.setattr(encoder.model, "get_text_features", wrap(text_features))
        torch.testing.assert_close(encoder.encode_images(images), expected_images)
        torch.testing.assert_close(encoder.encode_texts(TEXTS), expected_texts)


def test_unrecognised_get_features_output_is_a_clear_error(
    clip_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = load_clip(clip_dir)
    text_features = encoder.model.get_text_features
    monkeypatch.setattr(
        encoder.model,
        "get_text_features",
        functools.wraps(text_features)(lambda **kwargs: ("not", "tensor")),
    )
    with pytest.raises(EncoderError, match="get_text_features returned tuple"):
        encoder.encode_texts(["a cat"])


def test_fingerprint_is_stable_and_tracks_weights_and_dtype(clip_copy: Path) -> None:
    before = load_clip(clip_copy)
    assert before.fingerprint() == load_clip(clip_copy).fingerprint()
    assert "CLIPModel" in before.fingerprint() and "float32" in before.fingerprint()
    assert load_clip(clip_copy, dtype="bf16").fingerprint() != before.fingerprint()

    weights_path = clip_copy / "model.safetensors"
    weights = load_file(str(weights_path))
    name = next(key for key in weights if key.endswith("visual_projection.weight"))
    weights[name] = weights[name] + 0.5
    save_file(weights, str(weights_path), metadata={"format": "pt"})
    after = load_clip(clip_copy)
    assert after.fingerprint() != before.fingerprint()
    images = sample_images(2)
    assert not torch.allclose(after.encode_images(images), before.encode_images(images))


def test_bfloat16_loads_weights_in_that_dtype(clip_dir: Path) -> None:
    encoder = load_clip(clip_dir, dtype="bfloat16")
    assert encoder.dtype == torch.bfloat16
    assert next(encoder.model.parameters()).dtype == torch.bfloat16
    assert encoder.encode_images(sample_images(2)).dtype == torch.bfloat16


def test_siglip_pads_texts_to_the_fixed_training_length(
    siglip_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = load_clip(siglip_dir)
    assert isinstance(encoder, PixelEncoder)
    assert encoder.preprocessing.shortest_edge is None and not encoder.preprocessing.center_crop
    assert (encoder.preprocessing.height, encoder.preprocessing.width) == (32, 32)
    assert encoder.preprocessing.mean == (0.5, 0.5, 0.5)

    lengths: list[int] = []
    text_features = encoder.model.get_text_features

    @functools.wraps(text_features)
    def spy(**kwargs: Any) -> Any:
        lengths.append(kwargs["input_ids"].shape[1])
        return text_features(**kwargs)

    monkeypatch.setattr(encoder.model, "get_text_features", spy)
    alone = encoder.encode_texts(["abc"])
    in_batch = encoder.encode_texts(["abc", "a much longer caption here"])
    assert set(lengths) == {SIGLIP_TEXT_LENGTH}
    # Fixed-length padding makes a text's vector independent of its batch-mates.
    torch.testing.assert_close(alone[0], in_batch[0])
    assert encoder.encode_images(sample_images(3)).shape == (3, encoder.embedding_dim)


def test_processor_without_fixed_size_gives_no_pixel_recipe() -> None:
    naflex = SimpleNamespace(do_resize=True, size={"max_num_patches": 256}, do_pad=None)
    assert read_preprocessing(naflex) is None
    assert read_preprocessing(SimpleNamespace(do_resize=False)) is None


def test_preprocessing_respects_disabled_rescale_and_normalise() -> None:
    processor = SimpleNamespace(
        do_resize=True,
        size={"height": 20, "width": 30},
        do_center_crop=False,
        do_rescale=False,
        rescale_factor=1 / 255,
        do_normalize=False,
        image_mean=0.5,
        image_std=0.5,
        resample=2,
    )
    recipe = read_preprocessing(processor)
    assert recipe is not None
    assert (recipe.height, recipe.width, recipe.crop_height, recipe.crop_width) == (20, 30, 20, 30)
    assert recipe.rescale_factor == 1.0
    assert recipe.mean == (0.0, 0.0, 0.0) and recipe.std == (1.0, 1.0, 1.0)
    assert recipe.resample == "bilinear"


@pytest.mark.parametrize(
    ("setting", "name"),
    [
        (3, "bicubic"),
        (0, "nearest"),
        (SimpleNamespace(value="bilinear"), "bilinear"),
        (None, "bilinear"),
    ],
)
def test_resample_names(setting: object, name: str) -> None:
    assert resample_name(setting) == name


def test_efficientnet_offset_and_second_division_fold_into_mean_and_std() -> None:
    """ALIGN's processor: x / 127.5 - 1 (rescale_offset), then / std again (include_top)."""
    processor = SimpleNamespace(
        do_resize=True,
        size={"height": 32, "width": 32},
        do_center_crop=False,
        do_rescale=True,
        rescale_factor=1 / 127.5,
        rescale_offset=True,
        do_normalize=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.25, 0.5],
        include_top=True,
        resample=3,
    )
    recipe = read_preprocessing(processor)
    assert recipe is not None
    assert recipe.mean == (1.5, 1.5, 1.5)
    assert recipe.std == (0.25, 0.0625, 0.25)
    pixel = 200.0
    expected = ((pixel / 127.5 - 1 - 0.5) / 0.25) / 0.25
    assert (pixel * recipe.rescale_factor - recipe.mean[1]) / recipe.std[1] == pytest.approx(
        expected
    )


def test_processor_with_an_unknown_step_gives_no_pixel_recipe() -> None:
    processor = SimpleNamespace(
        do_resize=True,
        size={"height": 32, "width": 32},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=0.5,
        image_std=0.5,
        do_image_splitting=True,
    )
    assert read_preprocessing(processor) is None
    assert read_preprocessing(SimpleNamespace(**{**vars(processor), "do_image_splitting": False}))
    longest = SimpleNamespace(
        **{**vars(processor), "size": {"shortest_edge": 32, "longest_edge": 64}}
    )
    assert read_preprocessing(longest) is None


def test_checkpoint_missing_weights_of_its_class_is_refused(tmp_path: Path) -> None:
    """A BLIP retrieval checkpoint labelled BlipModel: AutoModel would build BlipModel and fill its
    projection heads with random numbers; every vector would be noise."""
    import json

    from tests.models.tiny_families import build_blip_retrieval_dir

    directory = build_blip_retrieval_dir(tmp_path / "mislabelled")
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "architectures": ["BlipModel"]}))
    with pytest.raises(EncoderError, match=r"has no weights for text_model\..* and \d+ more"):
        load_encoder(str(directory), device="cpu")


def test_broken_torchvision_is_named_in_load_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open_clip installs torchvision; one built for another torch fails to import with a
    RuntimeError, and transformers then cannot build any image processor."""
    from pytest_modgap.models.hf_clip import _broken_torchvision

    assert _broken_torchvision() == ""
    package = tmp_path / "site" / "torchvision"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "torchvision", raising=False)
    hint = _broken_torchvision()
    assert "torchvision is installed but does not import" in hint
    assert "operator torchvision::nms does not exist" in hint
