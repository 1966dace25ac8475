"""Zero-shot classification: the OpenAI prompt-ensemble classifier, equal to a float64 brute force.

Checked against LAION-AI/CLIP_benchmark, clip_benchmark/metrics/zeroshot_classification.py:
``zero_shot_classifier`` normalises each template embedding of a class, averages them and
renormalises the mean; acc1 / acc5 count the true class among the top 1 / 5 logits (acc5 only with
at least 5 classes) and mean_per_class_recall is sklearn's ``balanced_accuracy_score``, the mean over
the classes present of their recall. ``tests.reference_metrics`` transcribes it with ties (which
argmax / topk break by index) counted against the true class.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pytest_modgap import measure_embeddings
from pytest_modgap.errors import ModgapInputError
from pytest_modgap.metrics.definitions import metric_values, pair_statistics
from pytest_modgap.metrics.inputs import prepare_embeddings
from tests.reference_metrics import reference_metrics

ZEROSHOT = ("zeroshot_top1", "zeroshot_top5", "zeroshot_mean_per_class_recall")


def classified(
    n: int, d: int, classes: int, templates: int, seed: int, noise: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Images near their class's mean template embedding, one prompt text per class, labels."""
    rng = np.random.default_rng(seed)
    class_embeddings = rng.normal(size=(classes, templates, d))
    labels = np.concatenate([np.arange(classes), rng.integers(0, classes, n - classes)])
    image = class_embeddings.mean(1)[labels] + noise * rng.normal(size=(n, d))
    return image, class_embeddings[labels, 0], class_embeddings, labels


@pytest.mark.parametrize(
    ("n", "d", "classes", "templates"),
    [(40, 8, 3, 1), (200, 16, 10, 18), (300, 8, 50, 4), (120, 32, 100, 2)],
)
def test_zeroshot_metrics_equal_the_brute_force(
    n: int, d: int, classes: int, templates: int
) -> None:
    image, text, class_embeddings, labels = classified(n, d, classes, templates, seed=n, noise=2.0)
    report = measure_embeddings(
        image, text, groups=labels, class_embeddings=class_embeddings, retrieval=False, ci=None
    )
    expected = reference_metrics(
        image, text, groups=labels, class_embeddings=class_embeddings, retrieval=False
    )
    names = [name for name in ZEROSHOT if name in expected]
    assert ("zeroshot_top5" in report) == (classes >= 5)
    for name in names:
        assert report[name] == pytest.approx(expected[name], abs=1e-9), name


def test_tied_classes_count_against_the_true_one() -> None:
    # Classes 1 and 2 have the same prompts: their images tie between them and miss at top 1.
    image, text, class_embeddings, labels = classified(60, 8, 6, 3, seed=1, noise=0.1)
    class_embeddings[2] = class_embeddings[1]
    report = measure_embeddings(
        image, text, groups=labels, class_embeddings=class_embeddings, retrieval=False, ci=None
    )
    expected = reference_metrics(
        image, text, groups=labels, class_embeddings=class_embeddings, retrieval=False
    )
    tied = np.isin(labels, [1, 2])
    assert report["zeroshot_top1"] == pytest.approx(1 - tied.mean())
    assert report["zeroshot_mean_per_class_recall"] == pytest.approx(4 / 6)
    assert report["zeroshot_top5"] == 1.0
    for name in ZEROSHOT:
        assert report[name] == pytest.approx(expected[name], abs=1e-9), name


def test_the_classifier_is_the_renormalised_mean_of_normalised_templates() -> None:
    image, text, class_embeddings, labels = classified(80, 8, 7, 5, seed=2, noise=3.0)
    # Rescaling one template changes nothing (each is normalised first); the hand-built
    # classifier given as (C, d) gives the same metrics.
    scaled = class_embeddings.copy()
    scaled[:, 0] *= 100.0
    unit = class_embeddings / np.linalg.norm(class_embeddings, axis=-1, keepdims=True)
    classifier = unit.mean(1)
    reports = [
        measure_embeddings(
            image, text, groups=labels, class_embeddings=given, retrieval=False, ci=None
        )
        for given in (class_embeddings, scaled, classifier)
    ]
    for name in ZEROSHOT:
        assert reports[0][name] == reports[1][name] == reports[2][name], name
    # A plain (unnormalised) template mean is another classifier: the protocol matters.
    plain = measure_embeddings(
        image,
        text,
        groups=labels,
        class_embeddings=scaled.mean(1),
        retrieval=False,
        ci=None,
    )
    assert plain["zeroshot_top1"] != reports[0]["zeroshot_top1"]


def test_mean_per_class_recall_resamples_over_the_classes_present() -> None:
    image, text, class_embeddings, labels = classified(50, 6, 5, 2, seed=3, noise=2.0)
    embeddings = prepare_embeddings(image, text, groups=labels, class_embeddings=class_embeddings)
    stats = pair_statistics(embeddings)
    weights = np.random.default_rng(1).integers(0, 3, size=50).astype(np.float64)
    weights[labels == 4] = 0.0  # class 4 is not in this resample
    found = metric_values(stats, torch.from_numpy(weights[None]))
    assert stats.zeroshot is not None
    correct = stats.zeroshot.correct[:, 0].numpy()
    present = [c for c in range(5) if weights[labels == c].sum() > 0]
    expected = np.mean(
        [(weights * correct)[labels == c].sum() / weights[labels == c].sum() for c in present]
    )
    assert float(found["zeroshot_mean_per_class_recall"][0]) == pytest.approx(expected)
    assert float(found["zeroshot_top1"][0]) == pytest.approx(
        (weights * correct).sum() / weights.sum()
    )


def test_zeroshot_intervals_hold_their_estimates() -> None:
    image, text, class_embeddings, labels = classified(200, 8, 10, 3, seed=4, noise=2.5)
    report = measure_embeddings(
        image, text, groups=labels, class_embeddings=class_embeddings, retrieval=False, n_boot=200
    )
    for name in ZEROSHOT:
        low, high = report.ci[name]
        assert 0.0 <= low <= report[name] <= high <= 1.0, name


def test_without_class_embeddings_there_is_no_zeroshot_metric() -> None:
    image, text, _, labels = classified(40, 8, 4, 1, seed=5)
    report = measure_embeddings(image, text, groups=labels, ci=None)
    assert not set(ZEROSHOT) & set(report)
    with pytest.raises(KeyError, match="needs class names"):
        report["zeroshot_top1"]


def test_bad_class_inputs_are_refused_with_the_fix() -> None:
    image, text, class_embeddings, labels = classified(40, 8, 4, 2, seed=6)
    with pytest.raises(ModgapInputError, match="pass groups"):
        measure_embeddings(image, text, class_embeddings=class_embeddings, ci=None)
    with pytest.raises(ModgapInputError, match="each group is a class index, 0..3"):
        measure_embeddings(
            image, text, groups=labels + 1, class_embeddings=class_embeddings, ci=None
        )
    with pytest.raises(ModgapInputError, match=r"expected \(C, d\) or \(C, T, d\)"):
        measure_embeddings(
            image, text, groups=labels, class_embeddings=class_embeddings[..., :3], ci=None
        )
