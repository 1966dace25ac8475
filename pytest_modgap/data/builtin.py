"""The built-in "shapes" data set: procedurally drawn coloured shapes with two captions each.

It ships as code, not files, so the default ``modgap`` run and the reference models need no download.

Vocabulary (closed; the reference tokenizer is trained on exactly these words):

- shapes: circle, square, triangle, star, cross, diamond
- colours: red, green, blue, yellow, purple, orange, white, black
- sizes: small, large (paraphrased as tiny, big)
- positions: left, right, top, bottom, center

Each image holds one shape, or (one time in three) two shapes at opposite positions (left/right or
top/bottom), on a noisy grey background whose tint varies per image. ``texts`` uses one template
("a large red circle on the left and a small blue star on the right"), ``texts2`` a paraphrase with
other words ("a photo showing a big red round disc at the left side next to a tiny blue five pointed
star at the right side"). ``groups`` is the shape-colour class of the first (or only) shape, 48 classes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.errors import DatasetError

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "diamond")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 220, 40),
    "purple": (140, 50, 180),
    "orange": (245, 140, 30),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
SIZES: tuple[str, ...] = ("small", "large")
POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom", "center")

_COLOR_NAMES = tuple(COLORS)
_SHAPE_PARAPHRASE = {
    "circle": "round disc",
    "square": "box shape",
    "triangle": "three sided shape",
    "star": "five pointed star",
    "cross": "plus sign",
    "diamond": "rhombus",
}
_SIZE_PARAPHRASE = {"small": "tiny", "large": "big"}
_POSITION_PHRASE = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "center": "in the center",
}
_POSITION_PARAPHRASE = {
    "left": "at the left side",
    "right": "at the right side",
    "top": "near the top",
    "bottom": "near the bottom",
    "center": "in the middle",
}
# Shape centres as fractions of the image side (x, y).
_POSITION_XY = {
    "left": (0.25, 0.5),
    "right": (0.75, 0.5),
    "top": (0.5, 0.25),
    "bottom": (0.5, 0.75),
    "center": (0.5, 0.5),
}
# Two shapes only go to opposite positions, so that even two large shapes never overlap.
_OPPOSITE_PAIRS = (("left", "right"), ("right", "left"), ("top", "bottom"), ("bottom", "top"))
# Radius as a fraction of the image side; large shapes stay inside their half of the image.
_RADIUS = {"small": 0.09, "large": 0.18}

SHAPES_EVAL_SEED = 20250601
"""Seed of the built-in evaluation set; the reference models train on other seeds."""
SHAPES_EVAL_SIZE = 2000

NUM_SHAPE_GROUPS = len(SHAPES) * len(COLORS)


Polygon = list[tuple[float, float]]


def _polygons(shape: str, cx: float, cy: float, r: float) -> list[Polygon]:
    """The filled polygons that draw ``shape`` (every shape but the circle) at (cx, cy), radius r."""
    if shape == "square":
        h = 0.85 * r
        return [[(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]]
    if shape == "triangle":
        return [[(cx, cy - r), (cx + 0.95 * r, cy + 0.8 * r), (cx - 0.95 * r, cy + 0.8 * r)]]
    if shape == "diamond":
        return [[(cx, cy - r), (cx + 0.75 * r, cy), (cx, cy + r), (cx - 0.75 * r, cy)]]
    if shape == "star":
        # Five outer points alternating with five inner ones, the first pointing up.
        angles = -np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
        return [
            [
                (cx + float(rad * np.cos(a)), cy + float(rad * np.sin(a)))
                for a, rad in zip(angles, radii, strict=True)
            ]
        ]
    if shape == "cross":
        t = 0.32 * r
        return [
            [(cx - r, cy - t), (cx + r, cy - t), (cx + r, cy + t), (cx - r, cy + t)],
            [(cx - t, cy - r), (cx + t, cy - r), (cx + t, cy + r), (cx - t, cy + r)],
        ]
    raise ValueError(f"unknown shape {shape!r}")


def _draw(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill: str) -> None:
    """Draw one filled ``fill``-coloured shape centred at (cx, cy) with radius r."""
    rgb = COLORS[fill]
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=rgb)
        return
    for polygon in _polygons(shape, cx, cy, r):
        draw.polygon(polygon, fill=rgb)


def generate_shapes(n: int, *, seed: int, image_size: int = 64) -> PairSet:
    """``n`` random shape images with two captions each, fully determined by ``seed``.

    Images are ``image_size`` x ``image_size`` x 3 uint8 arrays. Different seeds give independent
    sets, which is how the reference models' training split is kept apart from ``load_shapes()``.
    """
    if n < 2:
        raise DatasetError(f"generate_shapes(n={n}): the metrics need at least 2 pairs.")
    if image_size < 16:
        raise DatasetError(
            f"generate_shapes(image_size={image_size}): shapes are unrecognisable below 16 pixels; "
            f"use image_size >= 16."
        )
    rng = np.random.default_rng(seed)
    side = image_size

    # Background: a per-image grey level and tint plus per-pixel noise, drawn in one go for speed.
    # Values stay within 63..192, so no clipping; int16 keeps the big block small and exact.
    grey = rng.integers(90, 166, size=(n, 1, 1, 1), dtype=np.int16)
    tint = rng.integers(-15, 16, size=(n, 1, 1, 3), dtype=np.int16)
    noise = rng.integers(-12, 13, size=(n, side, side, 3), dtype=np.int16)
    noise += grey + tint
    pixels = noise.astype(np.uint8)

    two = rng.random(n) < 1 / 3
    shape_idx = rng.integers(0, len(SHAPES), size=(n, 2))
    color_idx = rng.integers(0, len(COLORS), size=(n, 2))
    size_idx = rng.integers(0, len(SIZES), size=(n, 2))
    single_pos = rng.integers(0, len(POSITIONS), size=n)
    pair_pos = rng.integers(0, len(_OPPOSITE_PAIRS), size=n)
    jitter = rng.uniform(-0.04, 0.04, size=(n, 2, 2))
    scale = rng.uniform(0.9, 1.1, size=(n, 2))

    images: list[np.ndarray] = []
    texts: list[str] = []
    texts2: list[str] = []
    groups: list[int] = []
    for i in range(n):
        positions = _OPPOSITE_PAIRS[pair_pos[i]] if two[i] else (POSITIONS[single_pos[i]],)
        canvas = Image.fromarray(pixels[i])
        draw = ImageDraw.Draw(canvas)
        phrases: list[str] = []
        paraphrases: list[str] = []
        for k, position in enumerate(positions):
            shape = SHAPES[shape_idx[i, k]]
            color = _COLOR_NAMES[color_idx[i, k]]
            size = SIZES[size_idx[i, k]]
            fx, fy = _POSITION_XY[position]
            cx = (fx + jitter[i, k, 0]) * side
            cy = (fy + jitter[i, k, 1]) * side
            _draw(draw, shape, cx, cy, _RADIUS[size] * scale[i, k] * side, color)
            phrases.append(f"a {size} {color} {shape} {_POSITION_PHRASE[position]}")
            paraphrases.append(
                f"a {_SIZE_PARAPHRASE[size]} {color} {_SHAPE_PARAPHRASE[shape]} "
                f"{_POSITION_PARAPHRASE[position]}"
            )
        images.append(np.asarray(canvas))
        texts.append(" and ".join(phrases))
        texts2.append("a photo showing " + " next to ".join(paraphrases))
        groups.append(int(shape_idx[i, 0]) * len(COLORS) + int(color_idx[i, 0]))

    return PairSet(
        name="shapes",
        images=images,
        texts=texts,
        texts2=texts2,
        groups=groups,
        description=(
            f"Built-in procedurally drawn shapes ({n} pairs, seed {seed}, {image_size}x{image_size})."
        ),
    )


def load_shapes() -> PairSet:
    """The built-in evaluation set: 2,000 shape pairs at 64x64 from a fixed seed, held out from
    the reference models' training split (which uses other seeds)."""
    return generate_shapes(SHAPES_EVAL_SIZE, seed=SHAPES_EVAL_SEED)


BUILTIN_DATASETS: dict[str, Callable[[], PairSet]] = {"shapes": load_shapes}
"""Built-in data set names (the ``dataset=`` of a ``modgap`` marker) and their loaders."""
