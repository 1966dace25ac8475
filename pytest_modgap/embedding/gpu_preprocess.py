"""Batched image preprocessing on tensors: what CLIPImageProcessor does with PIL, redone in torch.

Used by the GPU path of the embedding pipeline, where images are decoded on the GPU and must not go
back to the CPU for resizing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pytest_modgap.models.base import ImagePreprocessing

SUPPORTED_RESAMPLE = {"bicubic": "bicubic", "bilinear": "bilinear"}
"""PIL resample names this module reproduces, mapped to the matching ``interpolate`` mode."""

# PIL rounds half up; a tiny nudge keeps true ties (x.5 exactly, computed as x.4999999999)
# on PIL's side without moving any value that float64 resolves.
_HALF_UP = 0.5 + 1e-9


def supports(prep: ImagePreprocessing) -> bool:
    """Whether ``preprocess_batch`` can reproduce the processor described by ``prep``."""
    return prep.resample in SUPPORTED_RESAMPLE


def resized_size(height: int, width: int, prep: ImagePreprocessing) -> tuple[int, int]:
    """The (height, width) the processor resizes an image of this size to.

    Shortest-edge resizing keeps the aspect ratio and truncates the long edge, exactly as
    ``transformers.image_transforms.get_resize_output_image_size(default_to_square=False)`` does.
    """
    if prep.shortest_edge is None:
        return prep.height, prep.width
    short, long = (width, height) if width <= height else (height, width)
    new_short = prep.shortest_edge
    new_long = int(new_short * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def _resize_group(batch: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize a (G, 3, H, W) float64 batch of 0..255 values the way PIL resizes an 8-bit image.

    PIL resamples horizontally, stores the result as 8-bit (clipped, rounded half up), then
    resamples vertically and rounds again. Doing the same two passes (rather than one 2-D
    interpolation) is what makes the output agree with the processor to the 8-bit level; float64
    keeps ties exact enough to round like PIL.
    """
    height, width = batch.shape[-2:]
    out_height, out_width = size
    if out_width != width:
        batch = F.interpolate(batch, size=(height, out_width), mode=mode, antialias=True)
        batch = torch.floor(batch + _HALF_UP).clamp_(0.0, 255.0)
    if out_height != height:
        batch = F.interpolate(batch, size=(out_height, out_width), mode=mode, antialias=True)
        batch = torch.floor(batch + _HALF_UP).clamp_(0.0, 255.0)
    return batch


def _center_crop(batch: torch.Tensor, crop_height: int, crop_width: int) -> torch.Tensor:
    """Center crop a (G, C, H, W) batch; an image smaller than the crop is zero-padded.

    Offsets follow ``transformers.image_transforms.center_crop``: floor for the crop, ceil for the
    padding, so odd margins land on the same side as in the processor.
    """
    height, width = batch.shape[-2:]
    if height >= crop_height and width >= crop_width:
        top = (height - crop_height) // 2
        left = (width - crop_width) // 2
        return batch[..., top : top + crop_height, left : left + crop_width]
    new_height, new_width = max(crop_height, height), max(crop_width, width)
    pad_top = -(-(new_height - height) // 2)
    pad_left = -(-(new_width - width) // 2)
    padded = batch.new_zeros((*batch.shape[:-2], new_height, new_width))
    padded[..., pad_top : pad_top + height, pad_left : pad_left + width] = batch
    top = (new_height - crop_height) // 2
    left = (new_width - crop_width) // 2
    return padded[..., top : top + crop_height, left : left + crop_width]


def preprocess_batch(
    images: Sequence[torch.Tensor], prep: ImagePreprocessing, device: torch.device | str
) -> torch.Tensor:
    """Resize, crop, rescale and normalise uint8 RGB images into one (B, 3, H, W) float32 batch.

    ``images`` are (3, H, W) uint8 tensors on any device and of any sizes; they are moved to
    ``device``. Images of the same size are resized together in one ``interpolate`` call. The result
    equals the PIL-based processor's output except where PIL's fixed-point arithmetic rounds a tie
    the other way: then one 8-bit level, i.e. ``1 / 255 / std`` (about 0.015 for CLIP).
    """
    if not supports(prep):
        raise ValueError(
            f"Cannot reproduce resample={prep.resample!r} on tensors; supported: "
            f"{sorted(SUPPORTED_RESAMPLE)}. Use the encoder's own preprocess() instead."
        )
    mode = SUPPORTED_RESAMPLE[prep.resample]
    target = torch.device(device)
    out_height, out_width = (
        (prep.crop_height, prep.crop_width) if prep.center_crop else resized_size(1, 1, prep)
    )
    groups: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
    for index, image in enumerate(images):
        if image.dim() != 3 or image.shape[0] != 3 or image.dtype != torch.uint8:
            raise ValueError(
                f"Image {index} is a {image.dtype} tensor of shape {tuple(image.shape)}; "
                f"expected (3, H, W) uint8 RGB."
            )
        groups[(int(image.shape[1]), int(image.shape[2]))].append(index)
    if not prep.center_crop and prep.shortest_edge is not None and len(groups) > 1:
        raise ValueError(
            "Shortest-edge resizing without a center crop gives images of different sizes, which "
            "cannot be stacked into one batch."
        )

    mean = torch.tensor(prep.mean, dtype=torch.float64, device=target).view(1, 3, 1, 1)
    std = torch.tensor(prep.std, dtype=torch.float64, device=target).view(1, 3, 1, 1)
    result: torch.Tensor | None = None
    for (height, width), indices in groups.items():
        batch = torch.stack([images[i].to(target, non_blocking=True) for i in indices])
        size = resized_size(height, width, prep)
        pixels = _resize_group(batch.to(torch.float64), size, mode)
        if prep.center_crop:
            pixels = _center_crop(pixels, prep.crop_height, prep.crop_width)
        pixels = (pixels * prep.rescale_factor - mean) / std
        if result is None:
            out_height, out_width = pixels.shape[-2:]
            result = torch.empty(
                (len(images), 3, out_height, out_width), dtype=torch.float32, device=target
            )
        result[torch.tensor(indices, device=target)] = pixels.to(torch.float32)
    if result is None:
        return torch.empty((0, 3, out_height, out_width), dtype=torch.float32, device=target)
    return result
