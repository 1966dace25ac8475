"""Images of every PIL mode reach the encoders as correct, upright 8-bit RGB, on every image path."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageOps

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.embedding import pipeline
from pytest_modgap.embedding.pipeline import embed_pairs
from pytest_modgap.embedding.rgb import to_rgb
from pytest_modgap.errors import DatasetError

GRAY_RAMP_16 = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)
"""Every 8-bit level k written as 16-bit data k * 257, as image tools widen 8-bit images."""


class RecordingEncoder:
    """A generic encoder that keeps the PIL images the pipeline hands it."""

    spec = "recording"

    def __init__(self) -> None:
        self.images: list[Image.Image] = []

    def fingerprint(self) -> str:
        return "recording"

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        self.images.extend(images)
        return torch.ones(len(images), 2)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        return torch.ones(len(texts), 2)


def pairs_of(*paths: Path) -> PairSet:
    """A PairSet of ``paths`` (padded to two pairs), with origins like a manifest's."""
    images = list(paths) if len(paths) > 1 else [paths[0], paths[0]]
    return PairSet(
        name="modes",
        images=images,
        texts=[f"caption {i}" for i in range(len(images))],
        origins=[f"modes.jsonl line {i + 1}" for i in range(len(images))],
    )


def rgb_seen_by_encoder(path: Path) -> np.ndarray:
    """The HxWx3 uint8 pixels an encoder gets for the image file at ``path``."""
    encoder = RecordingEncoder()
    embed_pairs(pairs_of(path), encoder, batch_size=2, num_workers=0)
    image = encoder.images[0]
    assert image.mode == "RGB"
    return np.asarray(image)


def saved(tmp_path: Path, image: Image.Image, name: str, **options: object) -> Path:
    path = tmp_path / name
    image.save(path, **options)
    return path


def gray(values: np.ndarray) -> np.ndarray:
    """The expected HxWx3 RGB image of 8-bit grey ``values``."""
    return np.repeat(values.astype(np.uint8)[..., None], 3, axis=2)


def test_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = saved(tmp_path, Image.fromarray(GRAY_RAMP_16), "ramp16.png")
    assert Image.open(path).mode in ("I;16", "I")  # "I" in older Pillow versions
    expected = gray(np.arange(256).reshape(16, 16))
    np.testing.assert_array_equal(rgb_seen_by_encoder(path), expected)


def test_16_bit_values_round_to_the_nearest_8_bit_level(tmp_path: Path) -> None:
    values = np.array([[0, 128, 129, 256, 32767, 32768, 65407, 65535]], dtype=np.uint16)
    path = saved(tmp_path, Image.fromarray(values), "levels16.png")
    expected = np.floor(values / 65535 * 255 + 0.5)
    np.testing.assert_array_equal(rgb_seen_by_encoder(path), gray(expected))


@pytest.mark.parametrize(
    ("mode", "dtype"), [("I;16", "<u2"), ("I;16L", "<u2"), ("I;16B", ">u2"), ("I;16N", "=u2")]
)
def test_every_16_bit_byte_order_is_scaled(mode: str, dtype: str) -> None:
    image = Image.frombytes(mode, (16, 16), GRAY_RAMP_16.astype(dtype).tobytes())
    np.testing.assert_array_equal(
        np.asarray(to_rgb(image, "in memory")), gray(np.arange(256).reshape(16, 16))
    )


def test_32_bit_integer_image_with_16_bit_values_is_scaled_as_16_bit(tmp_path: Path) -> None:
    """Mode I is how some Pillow versions open a 16-bit PNG: values 0..65535 are 16-bit data."""
    path = saved(tmp_path, Image.fromarray(GRAY_RAMP_16.astype(np.int32)), "ramp32.tiff")
    assert Image.open(path).mode == "I"
    np.testing.assert_array_equal(rgb_seen_by_encoder(path), gray(np.arange(256).reshape(16, 16)))


def test_float_image_in_unit_range_is_scaled_by_255(tmp_path: Path) -> None:
    values = np.linspace(0.0, 1.0, 64, dtype=np.float32).reshape(8, 8)
    path = saved(tmp_path, Image.fromarray(values), "ramp.tiff")
    assert Image.open(path).mode == "F"
    expected = np.floor(values.astype(np.float64) * 255 + 0.5)
    np.testing.assert_array_equal(rgb_seen_by_encoder(path), gray(expected))


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (np.full((4, 4), 0.5, np.float32) * np.array([1, 1, 1, 3], np.float32), "0.5 to 1.5"),
        (np.array([[0.2, np.nan], [0.1, 0.0]], np.float32), "NaN or inf"),
        (np.array([[0.2, np.inf], [0.1, 0.0]], np.float32), "NaN or inf"),
        (np.array([[-70000, 5], [0, 9]], np.int32), "-70000 to 9"),
        (np.array([[70000, 5], [0, 9]], np.int32), "0 to 70000"),
    ],
)
def test_images_without_a_known_white_level_are_refused_by_name(
    tmp_path: Path, values: np.ndarray, problem: str
) -> None:
    path = saved(tmp_path, Image.fromarray(values), "odd.tiff")
    mode = Image.open(path).mode
    with pytest.raises(DatasetError) as info:
        rgb_seen_by_encoder(path)
    message = str(info.value)
    assert f"Image {path} (modes.jsonl line 1) has PIL mode {mode}" in message
    assert problem in message or pytest.fail(message)
    assert "Convert it to an 8-bit RGB PNG or JPEG" in message


def rgba_image() -> Image.Image:
    """Opaque red, half-transparent red, fully transparent black and opaque blue pixels."""
    pixels = np.array(
        [[[255, 0, 0, 255], [255, 0, 0, 128]], [[0, 0, 0, 0], [0, 0, 255, 255]]], dtype=np.uint8
    )
    return Image.fromarray(pixels)


def on_white(rgba: Image.Image) -> np.ndarray:
    """The reference: alpha-composite on opaque white, as transformers' convert_to_rgb does."""
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba.convert("RGBA")).convert("RGB"))


def palette_with_transparent_index() -> Image.Image:
    image = Image.fromarray(np.array([[0, 1], [2, 1]], dtype=np.uint8), "P")
    image.putpalette([255, 0, 0, 0, 0, 0, 0, 255, 0] + [0] * (3 * 253))
    image.info["transparency"] = 1  # index 1, black, is transparent
    return image


MODES: dict[str, tuple[Callable[[], Image.Image], str, np.ndarray]] = {
    "RGBA": (
        rgba_image,
        "png",
        np.array([[[255, 0, 0], [255, 127, 127]], [[255] * 3, [0, 0, 255]]]),
    ),
    "LA": (
        lambda: rgba_image().convert("LA"),
        "png",
        on_white(rgba_image().convert("LA")),
    ),
    "P with transparency": (
        palette_with_transparent_index,
        "png",
        np.array([[[255, 0, 0], [255, 255, 255]], [[0, 255, 0], [255, 255, 255]]]),
    ),
    "RGB with a transparent colour": (
        lambda: rgba_image().convert("RGB"),
        "png",
        np.array([[[255, 0, 0], [255, 0, 0]], [[255, 255, 255], [0, 0, 255]]]),
    ),
    "RGBa (premultiplied)": (
        lambda: rgba_image().convert("RGBa"),
        "",
        on_white(rgba_image().convert("RGBa").convert("RGBA")),
    ),
}


@pytest.mark.parametrize("name", sorted(MODES))
def test_colour_and_alpha_modes_become_the_expected_rgb(tmp_path: Path, name: str) -> None:
    """Alpha is composited on white (transformers' convert_to_rgb does the same), not dropped."""
    build, extension, expected = MODES[name]
    image = build()
    if name == "RGB with a transparent colour":
        image.info["transparency"] = (0, 0, 0)
    if extension:
        rgb = rgb_seen_by_encoder(saved(tmp_path, image, f"image.{extension}"))
    else:  # modes no file format stores: straight through the converter
        rgb = np.asarray(to_rgb(image, "in memory"))
    np.testing.assert_allclose(rgb, expected, atol=2, err_msg=name)


def test_colour_modes_without_alpha_keep_their_colours() -> None:
    """A guard for modes PIL converts (1, CMYK, HSV) and LAB, converted with LittleCMS here
    (Pillow 10 has no LAB -> RGB): each gives back the colours it was made from."""
    colours = np.array([[[255, 255, 255], [200, 30, 30]], [[20, 160, 40], [128, 128, 128]]])
    rgb = Image.fromarray(colours.astype(np.uint8))
    to_lab = ImageCms.buildTransform(
        ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"
    )
    lab = ImageCms.applyTransform(rgb, to_lab)
    assert lab.mode == "LAB"
    np.testing.assert_allclose(np.asarray(to_rgb(lab, "in memory")), colours, atol=6)
    for mode in ("CMYK", "HSV"):
        converted = to_rgb(rgb.convert(mode), "in memory")
        np.testing.assert_allclose(np.asarray(converted), colours, atol=4, err_msg=mode)
    bits = Image.fromarray(np.array([[True, False], [False, True]]))
    expected = np.array([[[255] * 3, [0] * 3], [[0] * 3, [255] * 3]])
    np.testing.assert_array_equal(np.asarray(to_rgb(bits, "in memory")), expected)


def asymmetric_picture() -> Image.Image:
    """24 x 16 pixels whose four corners differ, so every flip and rotation tells apart."""
    pixels = np.zeros((16, 24, 3), dtype=np.uint8)
    pixels[:8, :12] = (250, 10, 10)
    pixels[:8, 12:] = (10, 250, 10)
    pixels[8:, :12] = (10, 10, 250)
    pixels[8:, 12:] = (250, 250, 10)
    return Image.fromarray(pixels)


def with_orientation(tmp_path: Path, orientation: int, extension: str) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"oriented{orientation}.{extension}"
    options = {"quality": 95} if extension == "jpg" else {}
    asymmetric_picture().save(path, exif=exif, **options)
    return path


def upright(path: Path) -> np.ndarray:
    """The reference: Pillow's own ImageOps.exif_transpose, as a browser shows the file."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


@pytest.mark.parametrize("extension", ["jpg", "png"])
def test_exif_orientation_is_applied(tmp_path: Path, extension: str) -> None:
    for orientation in range(1, 9):
        path = with_orientation(tmp_path, orientation, extension)
        expected = upright(path)
        if orientation >= 5:
            assert expected.shape == (24, 16, 3)  # the reference really turned it
        np.testing.assert_array_equal(rgb_seen_by_encoder(path), expected, str(orientation))


def exif_blind_decoder(seen: list[int]) -> pipeline.JpegDecoder:
    """Stands in for nvJPEG on CPU: decodes with PIL, ignores EXIF (as nvJPEG does), counts calls.

    JPEGs carrying the bytes REJECT are refused, as nvJPEG refuses some sampling layouts.
    """

    def decode(data: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for tensor in data:
            raw = tensor.numpy().tobytes()
            if b"REJECT" in raw:
                raise RuntimeError("nvjpeg: unsupported JPEG")
            with Image.open(io.BytesIO(raw)) as image:
                assert image.mode in ("L", "RGB"), f"the device decoder got a {image.mode} JPEG"
                out.append(torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1))
        seen.append(len(out))
        return out

    return decode


def device_path_pixels(pairs: PairSet, seen: list[int]) -> list[np.ndarray]:
    """What the GPU path's reading and decoding steps give, as HxWx3 arrays."""
    items = [pipeline._read_for_device(pairs, i) for i in range(len(pairs))]
    tensors = pipeline._decode_jpegs(pairs, items, exif_blind_decoder(seen))
    return [t.permute(1, 2, 0).numpy() for t in tensors]


def test_device_path_applies_exif_orientation_like_the_cpu_path(tmp_path: Path) -> None:
    paths = [with_orientation(tmp_path, o, "jpg") for o in range(1, 9)]
    pairs = pairs_of(*paths)
    seen: list[int] = []
    on_device = device_path_pixels(pairs, seen)
    assert sum(seen) == 8, "every JPEG went through the device decoder"
    for orientation, (path, pixels) in enumerate(zip(paths, on_device, strict=True), start=1):
        np.testing.assert_array_equal(pixels, upright(path), str(orientation))
        np.testing.assert_array_equal(pixels, rgb_seen_by_encoder(path), str(orientation))


def test_device_path_turns_a_jpeg_the_decoder_rejects_upright_once(tmp_path: Path) -> None:
    plain = with_orientation(tmp_path, 6, "jpg").read_bytes()
    rejected = tmp_path / "rejected.jpg"
    # A JPEG comment segment (FF FE) right after SOI: valid for PIL, 'unsupported' for the fake.
    rejected.write_bytes(plain[:2] + b"\xff\xfe\x00\x08REJECT" + plain[2:])
    seen: list[int] = []
    pixels = device_path_pixels(pairs_of(rejected), seen)
    assert seen == [], "the decoder refused it, PIL decoded it"
    np.testing.assert_array_equal(pixels[0], upright(rejected))


def test_device_path_leaves_cmyk_jpegs_to_pil(tmp_path: Path) -> None:
    cmyk = Image.fromarray(np.full((8, 8, 4), [0, 200, 200, 30], np.uint8), "CMYK")
    path = saved(tmp_path, cmyk, "cmyk.jpg", quality=95)
    seen: list[int] = []
    pixels = device_path_pixels(pairs_of(path), seen)
    assert seen == []
    np.testing.assert_array_equal(pixels[0], rgb_seen_by_encoder(path))
    np.testing.assert_array_equal(pixels[0], np.asarray(Image.open(path).convert("RGB")))


def test_device_path_scales_16_bit_pngs_too(tmp_path: Path) -> None:
    path = saved(tmp_path, Image.fromarray(GRAY_RAMP_16), "ramp16.png")
    pixels = device_path_pixels(pairs_of(path), [])
    np.testing.assert_array_equal(pixels[0], gray(np.arange(256).reshape(16, 16)))


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_a_broken_exif_block_leaves_the_image_as_stored(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    asymmetric_picture().save(buffer, format="JPEG", quality=95)
    data = buffer.getvalue()
    # An APP1 segment that claims to be EXIF but holds no valid TIFF header.
    app1 = b"\xff\xe1\x00\x10Exif\x00\x00MM\x00\x2a\xff\xff\xff\xff"
    path = tmp_path / "broken_exif.jpg"
    path.write_bytes(data[:2] + app1 + data[2:])
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(rgb_seen_by_encoder(path), expected)
    np.testing.assert_array_equal(device_path_pixels(pairs_of(path), [])[0], expected)
