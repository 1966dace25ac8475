"""Tensor preprocessing agrees with the model's own PIL-based CLIP image processor."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from pytest_modgap.embedding.gpu_preprocess import preprocess_batch, resized_size, supports
from pytest_modgap.models.base import ImagePreprocessing

transformers = pytest.importorskip("transformers")
# transformers 5 names the PIL backend CLIPImageProcessorPil; before that CLIPImageProcessor was it.
PilProcessor = (
    transformers.CLIPImageProcessorPil
    if hasattr(transformers, "CLIPImageProcessorPil")
    else transformers.CLIPImageProcessor
)

SIZES = [
    (480, 640),
    (333, 500),
    (1000, 700),
    (100, 150),
    (150, 90),
    (64, 300),
    (224, 224),
    (64, 64),
]
"""(height, width): landscape, portrait, down- and upsampling, extreme aspect, already at size."""


def photo_like(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth colour gradients plus sensor-like noise: the statistics of a natural photo."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    phase = rng.uniform(0, 6, 3)
    base = np.stack([128 + 100 * np.sin(xx / 37 + p) * np.cos(yy / 23 - p) for p in phase], axis=-1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def recipe(processor: Any, resample: str = "bicubic") -> ImagePreprocessing:
    size = processor.size
    crop = processor.crop_size
    return ImagePreprocessing(
        height=size.get("height") or crop["height"],
        width=size.get("width") or crop["width"],
        shortest_edge=size.get("shortest_edge"),
        center_crop=bool(processor.do_center_crop),
        crop_height=crop["height"],
        crop_width=crop["width"],
        rescale_factor=float(processor.rescale_factor),
        mean=tuple(processor.image_mean),
        std=tuple(processor.image_std),
        resample=resample,
    )


def to_chw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).permute(2, 0, 1)


def reference(processor: Any, arrays: list[np.ndarray]) -> torch.Tensor:
    out = processor(images=[Image.fromarray(a) for a in arrays], return_tensors="pt")
    pixels: torch.Tensor = out["pixel_values"]
    return pixels


def assert_matches(ours: torch.Tensor, ref: torch.Tensor, std: tuple[float, ...]) -> None:
    """Equal except for rare one-8-bit-level rounding ties (PIL's fixed point vs float64)."""
    assert ours.shape == ref.shape and ours.dtype == torch.float32
    diff = (ours - ref).abs().flatten()
    one_level = 1 / 255 / min(std)
    off = (diff > 1e-3).float().mean().item()
    assert diff.max().item() <= one_level + 1e-4, f"max diff {diff.max().item():.4f}"
    assert torch.quantile(diff, 0.999).item() <= 1e-3
    assert off < 1e-3, f"{off:.2%} of values differ from the processor"
    assert diff.mean().item() < 1e-4


@pytest.mark.parametrize(("height", "width"), SIZES)
def test_matches_clip_processor_per_image(height: int, width: int) -> None:
    processor = PilProcessor()
    prep = recipe(processor)
    array = photo_like(height, width, seed=height * 7 + width)
    ours = preprocess_batch([to_chw(array)], prep, "cpu")
    assert_matches(ours, reference(processor, [array]), prep.std)


def test_mixed_sizes_in_one_batch_keep_their_order() -> None:
    processor = PilProcessor()
    prep = recipe(processor)
    arrays = [photo_like(h, w, seed=i) for i, (h, w) in enumerate(SIZES + SIZES[:3])]
    ours = preprocess_batch([to_chw(a) for a in arrays], prep, "cpu")
    assert_matches(ours, reference(processor, arrays), prep.std)


def test_fixed_size_resize_bilinear_and_small_crop() -> None:
    processor = PilProcessor(
        size={"height": 40, "width": 56},
        crop_size={"height": 32, "width": 48},
        resample=Image.Resampling.BILINEAR,
    )
    prep = recipe(processor, resample="bilinear")
    assert prep.shortest_edge is None
    arrays = [photo_like(h, w, seed=i) for i, (h, w) in enumerate(SIZES[:4])]
    ours = preprocess_batch([to_chw(a) for a in arrays], prep, "cpu")
    assert ours.shape == (4, 3, 32, 48)
    assert_matches(ours, reference(processor, arrays), prep.std)


def test_crop_larger_than_image_is_zero_padded_like_the_processor() -> None:
    processor = PilProcessor(
        size={"height": 20, "width": 30}, crop_size={"height": 25, "width": 33}
    )
    prep = recipe(processor)
    array = photo_like(50, 60, seed=3)
    assert_matches(
        preprocess_batch([to_chw(array)], prep, "cpu"), reference(processor, [array]), prep.std
    )


def test_resized_size_truncates_the_long_edge_like_transformers() -> None:
    prep = recipe(PilProcessor())
    assert resized_size(333, 500, prep) == (224, 336)
    assert resized_size(500, 333, prep) == (336, 224)
    assert resized_size(64, 300, prep) == (224, 1050)


def test_rejects_non_rgb_uint8_and_unknown_resample() -> None:
    prep = recipe(PilProcessor())
    with pytest.raises(ValueError, match="uint8"):
        preprocess_batch([torch.zeros(3, 8, 8)], prep, "cpu")
    lanczos = recipe(PilProcessor(), resample="lanczos")
    assert not supports(lanczos)
    with pytest.raises(ValueError, match="lanczos"):
        preprocess_batch([torch.zeros(3, 8, 8, dtype=torch.uint8)], lanczos, "cpu")


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_cuda_matches_cpu() -> None:
    prep = recipe(PilProcessor())
    images = [to_chw(photo_like(h, w, seed=i)) for i, (h, w) in enumerate(SIZES)]
    on_gpu = preprocess_batch(images, prep, "cuda").cpu()
    on_cpu = preprocess_batch(images, prep, "cpu")
    assert (on_gpu - on_cpu).abs().max().item() <= 1 / 255 / min(prep.std) + 1e-4
    assert (on_gpu - on_cpu).abs().mean().item() < 1e-4


@cuda
def test_cuda_decode_and_preprocess_matches_processor() -> None:
    torchvision_io = pytest.importorskip("torchvision.io")
    processor = PilProcessor()
    prep = recipe(processor)
    data, decoded_by_pil = [], []
    for i, (h, w) in enumerate(SIZES[:4]):
        buffer = io.BytesIO()
        Image.fromarray(photo_like(h, w, seed=i)).save(buffer, format="JPEG", quality=95)
        data.append(torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8))
        decoded_by_pil.append(np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")))
    decoded = torchvision_io.decode_jpeg(data, mode=torchvision_io.ImageReadMode.RGB, device="cuda")
    ours = preprocess_batch(list(decoded), prep, "cuda").cpu()
    # nvJPEG and libjpeg use different IDCTs, so compare loosely: same image, not same bits.
    assert (ours - reference(processor, decoded_by_pil)).abs().mean().item() < 0.02
