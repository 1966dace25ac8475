"""The GPU image path with the real nvJPEG decoder on CUDA: every EXIF orientation, and every image
mode the CPU path accepts (16-bit, float, alpha, CMYK), gives the pixels the CPU path gives.

Skipped without CUDA; ``benchmarks/gpu_check.sh`` runs it on the GPU machine. The CPU tests in
``test_rgb.py`` pin the same behaviour with a stand-in decoder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pytest_modgap.embedding import pipeline
from tests.embedding.test_rgb import (
    GRAY_RAMP_16,
    gray,
    pairs_of,
    rgb_seen_by_encoder,
    saved,
    upright,
    with_orientation,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

JPEG_LEVELS = 6
"""nvJPEG's IDCT and upsampling differ from libjpeg's by a few levels at most (8-bit)."""


def on_cuda(*paths: Path) -> list[np.ndarray]:
    """The device path's reading and decoding steps with the real nvJPEG decoder on CUDA."""
    pairs = pairs_of(*paths)
    items = [pipeline._read_for_device(pairs, i) for i in range(len(pairs))]
    decoded = pipeline._decode_jpegs(pairs, items, pipeline._nvjpeg_decoder(torch.device("cuda")))
    return [tensor.permute(1, 2, 0).cpu().numpy() for tensor in decoded]


def test_every_exif_orientation_comes_out_upright_on_cuda(tmp_path: Path) -> None:
    paths = [with_orientation(tmp_path, orientation, "jpg") for orientation in range(1, 9)]
    for orientation, (path, pixels) in enumerate(zip(paths, on_cuda(*paths), strict=True), 1):
        expected = upright(path)
        assert pixels.shape == expected.shape, orientation
        difference = np.abs(pixels.astype(int) - expected.astype(int))
        assert difference.max() <= JPEG_LEVELS, (orientation, difference.max())


def test_16_bit_float_alpha_and_cmyk_images_match_the_cpu_path_on_cuda(tmp_path: Path) -> None:
    ramp = saved(tmp_path, Image.fromarray(GRAY_RAMP_16), "ramp16.png")
    floats = saved(
        tmp_path,
        Image.fromarray(np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)),
        "f.tiff",
    )
    alpha = saved(
        tmp_path, Image.fromarray(np.full((8, 8, 4), [200, 10, 10, 128], np.uint8), "RGBA"), "a.png"
    )
    cmyk = saved(
        tmp_path,
        Image.fromarray(np.full((8, 8, 4), [0, 200, 200, 30], np.uint8), "CMYK"),
        "cmyk.jpg",
        quality=95,
    )
    pixels = on_cuda(ramp, floats, alpha, cmyk)
    np.testing.assert_array_equal(pixels[0], gray(np.arange(256).reshape(16, 16)))
    for path, found in zip((floats, alpha, cmyk), pixels[1:], strict=True):
        np.testing.assert_array_equal(found, rgb_seen_by_encoder(path), str(path.name))
