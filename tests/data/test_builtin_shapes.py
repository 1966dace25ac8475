"""The built-in shapes data set: deterministic, well-formed, two captions per image, held out."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pytest_modgap.data.builtin import (
    BUILTIN_DATASETS,
    COLORS,
    NUM_SHAPE_GROUPS,
    POSITIONS,
    SHAPES,
    SHAPES_EVAL_SEED,
    SIZES,
    generate_shapes,
    load_shapes,
)
from pytest_modgap.data.pairset import PairSet
from pytest_modgap.errors import DatasetError


def test_same_seed_gives_identical_pairs() -> None:
    first = generate_shapes(50, seed=7)
    second = generate_shapes(50, seed=7)
    assert first.fingerprint() == second.fingerprint()
    assert list(first.texts) == list(second.texts)


def test_different_seeds_give_different_pairs() -> None:
    assert generate_shapes(50, seed=1).fingerprint() != generate_shapes(50, seed=2).fingerprint()


def test_images_are_rgb_uint8_of_the_requested_size() -> None:
    pairs = generate_shapes(20, seed=0, image_size=48)
    assert len(pairs) == 20
    for image in pairs.images:
        assert isinstance(image, np.ndarray)
        assert image.shape == (48, 48, 3)
        assert image.dtype == np.uint8


def test_images_are_not_trivially_identical() -> None:
    pairs = generate_shapes(30, seed=3)
    flat = {np.asarray(image).tobytes() for image in pairs.images}
    assert len(flat) == 30, "two generated images are byte-identical"


def test_each_pair_has_two_different_captions_in_the_closed_vocabulary() -> None:
    pairs = generate_shapes(200, seed=5)
    assert pairs.texts2 is not None
    vocabulary = set(SHAPES) | set(COLORS) | set(SIZES) | set(POSITIONS)
    for text, text2 in zip(pairs.texts, pairs.texts2, strict=True):
        assert text != text2
        assert text2.startswith("a photo showing ")
        words = text.split()
        # Every caption names a size, a colour, a shape and a position from the vocabulary.
        assert {"small", "large"} & set(words), text
        assert set(COLORS) & set(words), text
        assert set(SHAPES) & set(words), text
        assert set(words) - vocabulary <= {"a", "on", "the", "at", "in", "and"}, text


def test_some_images_hold_two_shapes() -> None:
    pairs = generate_shapes(300, seed=11)
    two = sum(" and " in text for text in pairs.texts)
    assert 50 < two < 150, f"{two} of 300 images have two shapes; expected about a third"


def test_groups_are_the_shape_colour_class_of_the_first_shape() -> None:
    pairs = generate_shapes(400, seed=9)
    assert pairs.groups is not None
    assert all(0 <= g < NUM_SHAPE_GROUPS for g in pairs.groups)
    for text, group in zip(pairs.texts, pairs.groups, strict=True):
        _, _, color, shape, *_ = text.split()
        assert group == SHAPES.index(shape) * len(COLORS) + list(COLORS).index(color), text
    # Many classes occur, each with several members, so group-aware negatives matter.
    assert len(set(pairs.groups)) > 40


def test_caption_describes_the_drawn_colour() -> None:
    pairs = generate_shapes(40, seed=13)
    for image, text in zip(pairs.images, pairs.texts, strict=True):
        color = text.split()[2]
        rgb = np.asarray(COLORS[color])
        distance = np.abs(np.asarray(image, dtype=np.int16) - rgb).sum(axis=2)
        assert (distance == 0).sum() >= 10, f"no {color} pixels drawn for {text!r}"


def test_load_shapes_is_the_fixed_evaluation_set() -> None:
    started = time.perf_counter()
    pairs = load_shapes()
    elapsed = time.perf_counter() - started
    assert isinstance(pairs, PairSet)
    assert pairs.name == "shapes"
    assert len(pairs) == 2000
    assert pairs.fingerprint() == load_shapes().fingerprint()
    # The target is well under 2 s; the bound is loose for a busy CI machine.
    assert elapsed < 10, f"load_shapes() took {elapsed:.1f} s"


def test_training_split_is_disjoint_from_the_evaluation_set() -> None:
    evaluation = {np.asarray(image).tobytes() for image in load_shapes().images}
    training = generate_shapes(500, seed=0)
    assert SHAPES_EVAL_SEED != 0
    assert not evaluation & {np.asarray(image).tobytes() for image in training.images}


def test_builtin_registry_names_the_shapes_loader() -> None:
    assert BUILTIN_DATASETS["shapes"] is load_shapes


@pytest.mark.parametrize(("n", "size"), [(1, 64), (10, 8)])
def test_bad_arguments_raise_dataset_error(n: int, size: int) -> None:
    with pytest.raises(DatasetError):
        generate_shapes(n, seed=0, image_size=size)
