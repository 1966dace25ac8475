"""Every metric agrees with the float64 brute-force transcription of DESIGN.md's table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pytest_modgap import METRICS, measure_embeddings
from pytest_modgap.metrics.definitions import metric_values, pair_statistics
from pytest_modgap.metrics.inputs import prepare_embeddings
from tests.reference_metrics import reference_metrics

HISTOGRAM_METRICS = {"pos_neg_overlap", "matched_overlap"}


def tolerance(name: str) -> float:
    return 2e-3 if name in HISTOGRAM_METRICS else 1e-4


def paired_data(n: int, d: int, seed: int, shift: float = 0.3) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(n, d))
    text = 0.6 * image + rng.normal(size=(n, d)) + shift
    text2 = text + 0.5 * rng.normal(size=(n, d))
    return image, text, text2


def assert_matches(report: dict[str, float], expected: dict[str, float]) -> None:
    assert set(report) == set(expected)
    for name, value in expected.items():
        assert report[name] == pytest.approx(value, abs=tolerance(name)), name


@pytest.mark.parametrize(
    ("n", "d", "n_groups"),
    [(2, 3, None), (37, 5, None), (300, 64, None), (300, 64, 7), (500, 16, 60)],
)
def test_every_metric_matches_brute_force(n: int, d: int, n_groups: int | None) -> None:
    image, text, text2 = paired_data(n, d, seed=n)
    groups = None if n_groups is None else np.random.default_rng(1).integers(0, n_groups, n)
    if groups is not None and len(set(groups.tolist())) < 2:
        groups[0] = groups[1] + 1
    report = measure_embeddings(image, text, text2=text2, groups=groups, ci=None)
    assert_matches(dict(report), reference_metrics(image, text, text2, groups))


def test_report_has_every_catalogue_metric_with_text2_and_only_pair_metrics_without() -> None:
    image, text, text2 = paired_data(50, 8, seed=3)
    with_text2 = measure_embeddings(image, text, text2=text2, ci=None)
    without = measure_embeddings(image, text, ci=None)
    assert list(with_text2) == [
        name for name, info in METRICS.items() if "classes" not in info.needs
    ]
    assert list(without) == [
        name for name, info in METRICS.items() if info.needs in ("", "negatives", "captions")
    ]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_any_float_dtype(dtype: type) -> None:
    image, text, text2 = paired_data(120, 32, seed=4)
    report = measure_embeddings(image.astype(dtype), text.astype(dtype), ci=None)
    expected = reference_metrics(image.astype(dtype), text.astype(dtype))
    assert_matches(dict(report), expected)


def test_torch_tensors_and_numpy_give_the_same_report() -> None:
    image, text, text2 = paired_data(80, 16, seed=5)
    from_numpy = measure_embeddings(image, text, text2=text2, ci=None)
    text_bf16 = torch.from_numpy(text).bfloat16()
    from_torch = measure_embeddings(
        torch.from_numpy(image), text_bf16, text2=torch.from_numpy(text2), ci=None
    )
    rounded_text = text_bf16.double().numpy()
    assert_matches(dict(from_torch), reference_metrics(image, rounded_text, text2))
    assert from_numpy["alignment"] == pytest.approx(from_torch["alignment"], abs=1e-2)


def test_block_size_does_not_change_any_value() -> None:
    image, text, text2 = paired_data(257, 12, seed=6)
    groups = np.arange(257) % 9
    embeddings = prepare_embeddings(image, text, text2=text2, groups=groups)
    ones = torch.ones(1, 257, dtype=torch.float64)
    whole = metric_values(pair_statistics(embeddings, block_elements=10**9), ones)
    tiny_blocks = metric_values(pair_statistics(embeddings, block_elements=257 * 3), ones)
    for name in whole:
        assert float(whole[name][0]) == pytest.approx(float(tiny_blocks[name][0]), abs=1e-6), name


def test_histogram_auc_above_the_exact_limit_stays_within_1e_4() -> None:
    image, text, _ = paired_data(600, 24, seed=7, shift=0.0)
    embeddings = prepare_embeddings(image, text)
    stats = pair_statistics(embeddings, exact_auc=False)
    assert not stats.cross.auc_exact
    approx = float(metric_values(stats, torch.ones(1, 600))["auc"][0])
    assert approx == pytest.approx(reference_metrics(image, text)["auc"], abs=1e-4)


def test_ties_count_half_in_the_auc() -> None:
    # Duplicated one-hot pairs: positives are exactly 1, the duplicate's cross pair ties with them
    # (cos = 1) and every other negative is exactly 0.
    image = np.concatenate([np.eye(30), np.eye(30)])
    report = measure_embeddings(image, image, ci=None)
    assert_matches(dict(report), reference_metrics(image, image))
    # 60 positives at 1.0 against 60 tied negatives among 3,540: those count half.
    negatives = 60 * 59
    assert report["auc"] == pytest.approx((negatives - 60 + 0.5 * 60) / negatives, abs=1e-6)
