"""Turn a decoded image of any PIL mode into the 8-bit RGB the encoders see, upright.

One set of rules for every image path (PIL, processor, GPU), so a file embeds the same on any device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from pytest_modgap.errors import DatasetError

if TYPE_CHECKING:
    import torch

EXIF_ORIENTATION_TAG = 0x0112

_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""EXIF orientation -> the transpose that makes the image upright (as ``ImageOps.exif_transpose``)."""

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
_PREMULTIPLIED = {"La": "LA", "RGBa": "RGBA"}
_RULES = (
    "8-bit RGB, L, 1, P, CMYK, YCbCr and HSV images are converted by PIL, LAB by LittleCMS; "
    "16-bit images (I;16*, and mode I with values in 0..65535) are scaled by 255/65535; float "
    "images (mode F) must hold values in [0, 1] and are scaled by 255; transparency is "
    "composited on white"
)


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8) of ``image``; 1 (as stored) when absent, unknown or unreadable.

    A malformed EXIF block is ignored, as browsers ignore it: the pixels are still good.
    """
    try:
        value = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except Exception:  # PIL's EXIF parser raises many types (SyntaxError, struct.error, ...)
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSE_FOR_ORIENTATION else 1


def to_rgb(image: Image.Image, where: str) -> Image.Image:
    """``image`` as an upright 8-bit RGB image, or a DatasetError naming ``where`` and the mode.

    The rules (also in the README): EXIF orientation is applied, as browsers, phones and
    torchvision's ``decode_jpeg(apply_exif_orientation=True)`` do. Transparent pixels are composited
    on white, as transformers' ``convert_to_rgb`` does before CLIP-style processors, so an RGBA logo
    looks the same here and there. 16-bit data is scaled by its full range (value * 255 / 65535,
    rounded), not clipped. Mode I (32-bit int) is how PIL opens some 16-bit PNG and PGM files:
    values in 0..65535 are taken as 16-bit data; any other range has no known white level and is
    refused. Float data (mode F) must be in [0, 1], scaled by 255; NaN, inf or values outside
    are refused. Any other mode PIL cannot convert to RGB is refused.
    """
    orientation = exif_orientation(image)
    rgb = _rgb(image, where)
    method = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    return rgb if method is None else rgb.transpose(method)


def orient_tensor(pixels: torch.Tensor, orientation: int) -> torch.Tensor:
    """A (C, H, W) image tensor turned upright for EXIF ``orientation``, as ``to_rgb`` turns a PIL
    image (for images decoded on the GPU, where nvJPEG ignores EXIF)."""
    if orientation == 2:
        return pixels.flip(-1)
    if orientation == 3:
        return pixels.flip(-2, -1)
    if orientation == 4:
        return pixels.flip(-2)
    if orientation == 5:
        return pixels.transpose(-2, -1)
    if orientation == 6:
        return pixels.transpose(-2, -1).flip(-1)
    if orientation == 7:
        return pixels.transpose(-2, -1).flip(-2, -1)
    if orientation == 8:
        return pixels.transpose(-2, -1).flip(-2)
    return pixels


def _refuse(where: str, mode: str, problem: str) -> DatasetError:
    return DatasetError(
        f"Image {where} has PIL mode {mode} and {problem}, so it cannot become the 8-bit RGB "
        f"image the encoders take. Convert it to an 8-bit RGB PNG or JPEG, or remove the pair "
        f"from the data set. (The rules: {_RULES}.)"
    )


def _rgb(image: Image.Image, where: str) -> Image.Image:
    """``image`` in 8-bit RGB, not yet turned upright."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        return _gray_from_wide(image, where)
    if mode == "LAB":
        # PIL's own LAB -> RGB conversion is recent (Pillow 10 lacks it); LittleCMS is not.
        from PIL import ImageCms

        transform = ImageCms.buildTransform(
            ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
        )
        converted: Image.Image = transform.apply(image)
        return converted
    try:
        if _has_alpha(image):
            if mode in _PREMULTIPLIED:  # PIL converts La only to LA, not on to RGBA
                image = image.convert(_PREMULTIPLIED[mode])
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return image.convert("RGB")
    except ValueError as exc:  # "conversion from X to RGB not supported"
        raise _refuse(where, mode, f"PIL cannot convert it to RGB ({exc})") from exc


def _has_alpha(image: Image.Image) -> bool:
    """Whether ``image`` has an alpha band, a transparent colour or an RGBA palette."""
    if any(band in ("A", "a") for band in image.getbands()):
        return True
    if image.info.get("transparency") is not None:
        return True
    palette = image.palette if image.mode == "P" else None
    return palette is not None and "A" in palette.mode


def _gray_from_wide(image: Image.Image, where: str) -> Image.Image:
    """RGB from a one-band 16-bit, 32-bit int or float image, scaled by its data type's range."""
    mode = image.mode
    values = np.asarray(image)
    if mode == "F":
        if not np.all(np.isfinite(values)):
            raise _refuse(where, mode, "holds NaN or inf values")
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if low < 0.0 or high > 1.0:
            raise _refuse(
                where, mode, f"values from {low:g} to {high:g}; float images must lie in [0, 1]"
            )
        gray = np.floor(values.astype(np.float64) * 255.0 + 0.5).astype(np.uint8)
    else:
        wide = values.astype(np.int64)
        low, high = (int(wide.min()), int(wide.max())) if wide.size else (0, 0)
        if low < 0 or high > 65535:
            raise _refuse(
                where,
                mode,
                f"values from {low} to {high}; 32-bit integer images are read as 16-bit data "
                f"(0..65535) and any other range has no known white level",
            )
        # Rounded value * 255 / 65535: 16-bit data written from 8-bit (v * 257) maps back to v.
        gray = ((wide * 255 + 32767) // 65535).astype(np.uint8)
        transparent = image.info.get("transparency")
        if isinstance(transparent, int) and not isinstance(transparent, bool):
            gray[wide == transparent] = 255  # a transparent grey level, composited on white
    return Image.fromarray(np.repeat(gray[..., None], 3, axis=2))
