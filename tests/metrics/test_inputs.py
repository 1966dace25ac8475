"""Bad input gets a ValueError that names the argument, the rows and what is expected."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pytest_modgap import ModgapInputError, measure_embeddings

GOOD = np.random.default_rng(0).normal(size=(6, 4))


def expect_error(match: str, *args: object, **kwargs: object) -> str:
    with pytest.raises(ValueError, match=match) as info:
        measure_embeddings(*args, **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ModgapInputError)
    return str(info.value)


def test_mismatched_row_counts() -> None:
    message = expect_error(r"image and text: have 6 and 5 rows", GOOD, GOOD[:5])
    assert "same number of rows" in message


def test_mismatched_dimensions() -> None:
    expect_error(r"dimensions 4 and 3", GOOD, GOOD[:, :3])


def test_fewer_than_two_pairs() -> None:
    expect_error(r"have 1 pair\(s\).*at least 2", GOOD[:1], GOOD[:1])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_the_rows(bad: float) -> None:
    text = GOOD.copy()
    text[2, 1] = bad
    text[4, 0] = bad
    expect_error(r"text: rows 2, 4 contain NaN or inf", GOOD, text)


def test_zero_row_is_named() -> None:
    image = GOOD.copy()
    image[3] = 0
    expect_error(r"image: row 3 are all zeros", image, GOOD)


def test_many_bad_rows_are_summarised() -> None:
    image = np.zeros((20, 4))
    image[0] = 1
    message = expect_error(r"rows 1, 2, 3, 4, 5 and 14 more", image, np.ones((20, 4)))
    assert len(message) < 400


def test_one_dimensional_array() -> None:
    expect_error(r"image: has shape \(4,\); expected a 2-D array", GOOD[0], GOOD[0])


def test_text2_of_the_wrong_length() -> None:
    expect_error(r"text2: has shape \(5, 4\); expected \(6, 4\)", GOOD, GOOD, text2=GOOD[:5])


def test_groups_of_the_wrong_length() -> None:
    expect_error(
        r"groups: has shape \(5,\); expected one integer label per pair, shape \(6,\)",
        GOOD,
        GOOD,
        groups=[0, 1, 0, 1, 0],
    )


def test_groups_that_are_not_integers() -> None:
    expect_error(r"groups: has dtype <U1", GOOD, GOOD, groups=list("abcabc"))


def test_a_single_group_leaves_no_negatives() -> None:
    expect_error(
        r"share one group, so no image-text pair is a\s+negative",
        GOOD,
        GOOD,
        groups=[1] * 6,
        ci=None,
    )


def test_non_numeric_input() -> None:
    expect_error(r"image: has dtype", np.array([["a", "b"], ["c", "d"]]), GOOD[:2, :2])


def test_bad_ci_level() -> None:
    expect_error(r"ci: is 95", GOOD, GOOD, ci=95)


def test_float_labels_that_are_whole_numbers_are_accepted() -> None:
    report = measure_embeddings(GOOD, GOOD, groups=np.array([0.0, 1, 0, 1, 2, 2]), ci=None)
    assert np.isfinite(report["negative_similarity"])


def test_nan_in_a_tensor_is_caught_too() -> None:
    image = torch.from_numpy(GOOD).clone()
    image[5, 0] = float("nan")
    expect_error(r"image: row 5 contain NaN", image, GOOD)


def _pairs(dtype: type[np.floating]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """30 correlated image / text pairs and a second caption, in ``dtype``."""
    rng = np.random.default_rng(5)
    image = rng.normal(size=(30, 16))
    text = image + rng.normal(size=(30, 16))
    text2 = text + 0.5 * rng.normal(size=(30, 16))
    return image.astype(dtype), text.astype(dtype), text2.astype(dtype)


@pytest.mark.parametrize(
    ("dtype", "scale"),
    [
        (np.float32, 1e19),  # squares overflow float32
        (np.float32, 1e30),
        (np.float32, 1e-30),  # squares underflow float32
        (np.float32, 1e-40),  # subnormal float32
        (np.float64, 1e300),
        (np.float64, 1e-310),  # subnormal float64
    ],
)
def test_scaled_rows_give_the_metrics_of_unscaled_rows(
    dtype: type[np.floating], scale: float
) -> None:
    """The metrics only see directions: scaling every row by a finite factor changes nothing."""
    image, text, text2 = _pairs(dtype)
    groups = np.arange(30) % 7
    expected = measure_embeddings(image, text, text2=text2, groups=groups, ci=None)
    factor = dtype(scale)
    scaled = measure_embeddings(
        image * factor, text * factor, text2=text2 * factor, groups=groups, ci=None
    )
    assert set(scaled) == set(expected)
    for name, value in expected.items():
        assert scaled[name] == pytest.approx(value, abs=1e-5), name


def test_rows_of_very_different_magnitudes_keep_their_directions() -> None:
    image, text, _ = _pairs(np.float32)
    magnitudes = np.logspace(-35, 35, 30, dtype=np.float64)[:, None]
    mixed = (image.astype(np.float64) * magnitudes).astype(np.float32)
    expected = measure_embeddings(image, text, ci=None)
    report = measure_embeddings(mixed, text, ci=None)
    for name, value in expected.items():
        assert report[name] == pytest.approx(value, abs=1e-5), name


def test_a_row_of_zeros_among_tiny_rows_is_still_refused() -> None:
    image, text, _ = _pairs(np.float32)
    tiny = image * np.float32(1e-40)
    tiny[7] = 0
    expect_error(r"image: row 7 are all zeros", tiny, text)


@pytest.mark.parametrize("dtype", [np.longdouble, ">f8", ">f4", ">i4"])
def test_dtypes_torch_cannot_wrap_are_measured(dtype: str | type[np.floating]) -> None:
    """Long double (no torch dtype) and big-endian arrays (torch.from_numpy refuses them)."""
    image, text, _ = _pairs(np.float64)
    image, text = np.round(image * 1000), np.round(text * 1000)
    expected = measure_embeddings(image, text, ci=None)
    report = measure_embeddings(image.astype(dtype), text.astype(dtype), ci=None)
    assert report["alignment"] == pytest.approx(expected["alignment"], abs=1e-6)
