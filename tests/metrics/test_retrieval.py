"""Retrieval recall over all captions: equal to a float64 brute force, ties against the hit.

Checked against LAION-AI/CLIP_benchmark, clip_benchmark/metrics/zeroshot_retrieval.py: ``evaluate``
scores every text against every image (scores = texts_emb @ images_emb.T, positive_pairs[text,
texts_image_index[text]]), ``recall_at_k`` counts the positives in ``torch.topk(scores, k)`` per row,
and the reported recall@k is ``(recall_at_k > 0).float().mean()``: over the texts for
"image_retrieval_recall@k" (our t2i: is the caption's image in its top k images) and over
``scores.T``, the images, for "text_retrieval_recall@k" (our i2t: is any of the image's captions in
its top k captions). ``tests.reference_metrics.retrieval_ranks`` transcribes that with the full
float64 score matrix; where torch.topk breaks a tie arbitrarily, the contract counts it against the
hit, and so does the transcription.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_modgap import measure_embeddings
from pytest_modgap.errors import ModgapInputError
from pytest_modgap.metrics.allpairs import RANK_SLACK, _check_rounding
from pytest_modgap.metrics.catalogue import RETRIEVAL_METRICS
from pytest_modgap.metrics.definitions import metric_values, pair_statistics
from pytest_modgap.metrics.inputs import PairedEmbeddings, prepare_embeddings
from tests.reference_metrics import reference_metrics, retrieval_ranks

KS = (1, 5, 10)


def captioned(
    n: int, d: int, captions_per_image: int, seed: int, noise: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Images, their first captions, and ``captions_per_image - 1`` further captions each."""
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(n, d))
    text = image + noise * rng.normal(size=(n, d))
    extra_image = np.repeat(np.arange(n), captions_per_image - 1)
    extra = image[extra_image] + noise * rng.normal(size=(len(extra_image), d))
    return image, text, extra, extra_image


def brute_force(embeddings: PairedEmbeddings) -> dict[str, float]:
    """The recalls of the float64 transcription on the engine's own float32 unit rows."""
    captions = embeddings.text
    caption_image = np.arange(embeddings.n)
    if embeddings.extra_captions is not None and embeddings.extra_caption_image is not None:
        captions = torch.cat([captions, embeddings.extra_captions])
        caption_image = np.concatenate([caption_image, embeddings.extra_caption_image.numpy()])
    image_rank, caption_rank = retrieval_ranks(
        embeddings.image.double().numpy(), captions.double().numpy(), caption_image
    )
    recalls = {f"i2t_recall@{k}": float((image_rank < k).mean()) for k in KS}
    recalls.update({f"t2i_recall@{k}": float((caption_rank < k).mean()) for k in KS})
    return recalls


def engine_recalls(embeddings: PairedEmbeddings, block_elements: int | None = None) -> dict:
    stats = pair_statistics(embeddings, block_elements=block_elements)
    values = metric_values(stats, torch.ones(1, embeddings.n, dtype=torch.float64))
    return {name: float(values[name][0]) for name in RETRIEVAL_METRICS}


def assert_equal_to_brute_force(embeddings: PairedEmbeddings, block_elements: int | None) -> None:
    expected = brute_force(embeddings)
    found = engine_recalls(embeddings, block_elements)
    for name in RETRIEVAL_METRICS:
        assert found[name] == pytest.approx(expected[name], abs=1e-9), name


@pytest.mark.parametrize(
    ("n", "d", "per_image", "noise"),
    [(2, 3, 1, 1.0), (40, 8, 1, 1.5), (120, 16, 5, 2.0), (300, 32, 3, 3.0), (257, 6, 2, 1.0)],
)
def test_recalls_equal_the_brute_force_over_all_captions(
    n: int, d: int, per_image: int, noise: float
) -> None:
    image, text, extra, extra_image = captioned(n, d, per_image, seed=n, noise=noise)
    embeddings = prepare_embeddings(
        image,
        text,
        extra_captions=extra if per_image > 1 else None,
        extra_caption_image=extra_image if per_image > 1 else None,
    )
    for block_elements in (None, 7 * n):
        assert_equal_to_brute_force(embeddings, block_elements)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 30),
    st.integers(1, 4),
    st.integers(0, 60),
    st.integers(0, 2**31),
    st.booleans(),
)
def test_ties_and_duplicates_count_against_the_hit(
    n: int, d: int, extras: int, seed: int, coarse: bool
) -> None:
    # Duplicated images and captions, and (coarse) vectors on a small integer grid, so that many
    # similarities tie exactly; every rank must still equal the brute force's.
    rng = np.random.default_rng(seed)
    scale = 1 if coarse else 100
    image = rng.integers(-2, 3, size=(n, d)) * scale + rng.normal(size=(n, d)) * (not coarse)
    text = rng.integers(-2, 3, size=(n, d)) * scale + rng.normal(size=(n, d)) * (not coarse)
    extra_image = rng.integers(0, n, extras)
    extra = rng.integers(-2, 3, size=(extras, d)).astype(np.float64)
    image[rng.integers(0, n, n // 2)] = image[0]
    text[rng.integers(0, n, n // 2)] = text[-1]
    if extras:
        extra[rng.integers(0, extras, extras // 2)] = text[0]
    for rows in (image, text, extra):
        rows[np.abs(rows).sum(1) == 0, 0] = 1.0
    embeddings = prepare_embeddings(
        image,
        text,
        extra_captions=extra if extras else None,
        extra_caption_image=extra_image if extras else None,
    )
    assert_equal_to_brute_force(embeddings, block_elements=3 * (n + extras))


def test_a_tie_with_another_image_misses_at_one() -> None:
    # Two identical images with identical captions: each caption ties between its image and the
    # other, and each image between its caption and the other's. A third pair stands apart.
    image = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    text = np.array([[1.0, 0.2, 0.0], [1.0, 0.2, 0.0], [0.0, 0.1, 1.0]])
    report = measure_embeddings(image, text, ci=None)
    assert report["i2t_recall@1"] == pytest.approx(1 / 3)
    assert report["t2i_recall@1"] == pytest.approx(1 / 3)
    assert report["i2t_recall@5"] == report["t2i_recall@5"] == 1.0


def test_an_image_is_a_hit_when_any_of_its_captions_ranks_and_each_caption_counts() -> None:
    # Image 0's first caption points at image 1, its second at itself; image 1 has one caption.
    image = np.array([[1.0, 0.0], [0.0, 1.0]])
    text = np.array([[0.1, 1.0], [0.0, 1.0]])
    extra, extra_image = np.array([[1.0, 0.0]]), np.array([0])
    report = measure_embeddings(
        image, text, extra_captions=extra, extra_caption_image=extra_image, ci=None
    )
    assert report["i2t_recall@1"] == 1.0  # image 0 finds its second caption first
    # Captions: image 0's first ranks image 1 above it (miss), its second and image 1's hit.
    assert report["t2i_recall@1"] == pytest.approx(2 / 3)


def test_extra_captions_leave_the_pair_metrics_alone() -> None:
    image, text, extra, extra_image = captioned(80, 12, 5, seed=3)
    text2 = extra[::4]
    first_only = measure_embeddings(image, text, text2=text2, ci=None)
    every = measure_embeddings(
        image, text, text2=text2, extra_captions=extra, extra_caption_image=extra_image, ci=None
    )
    for name in first_only:
        if name not in RETRIEVAL_METRICS:
            assert every[name] == first_only[name], name
    assert every["t2i_recall@1"] != first_only["t2i_recall@1"]
    expected = reference_metrics(
        image, text, text2, extra_captions=extra, extra_caption_image=extra_image
    )
    for name in RETRIEVAL_METRICS:
        assert every[name] == pytest.approx(expected[name], abs=1e-9), name


def test_resampling_weights_a_caption_with_its_image() -> None:
    image, text, extra, extra_image = captioned(30, 6, 3, seed=4, noise=2.5)
    embeddings = prepare_embeddings(
        image, text, extra_captions=extra, extra_caption_image=extra_image
    )
    stats = pair_statistics(embeddings)
    weights = np.random.default_rng(0).integers(0, 3, size=30)
    weights[0] = 1
    found = metric_values(stats, torch.from_numpy(weights[None].astype(np.float64)))
    # The resample as data: image i and its captions c_i times each (ranks from the full gallery).
    assert embeddings.extra_captions is not None
    expected_image, expected_caption = retrieval_ranks(
        embeddings.image.double().numpy(),
        torch.cat([embeddings.text, embeddings.extra_captions]).double().numpy(),
        np.concatenate([np.arange(30), extra_image]),
    )
    caption_weight = np.concatenate([weights, weights[extra_image]])
    for k in KS:
        i2t = (weights * (expected_image < k)).sum() / weights.sum()
        t2i = (caption_weight * (expected_caption < k)).sum() / caption_weight.sum()
        assert float(found[f"i2t_recall@{k}"][0]) == pytest.approx(i2t, abs=1e-12)
        assert float(found[f"t2i_recall@{k}"][0]) == pytest.approx(t2i, abs=1e-12)


def test_recall_intervals_hold_their_estimates() -> None:
    image, text, extra, extra_image = captioned(150, 8, 2, seed=5, noise=2.0)
    report = measure_embeddings(
        image, text, extra_captions=extra, extra_caption_image=extra_image, n_boot=200
    )
    for name in RETRIEVAL_METRICS:
        low, high = report.ci[name]
        assert 0.0 <= low <= report[name] <= high <= 1.0, name
        assert high - low > 0.0, name
    assert set(RETRIEVAL_METRICS) <= set(report.approximated)


def test_retrieval_can_be_left_out_for_class_prompts() -> None:
    image, text, _, _ = captioned(40, 8, 1, seed=6)
    report = measure_embeddings(image, text, retrieval=False, ci=None)
    assert not set(RETRIEVAL_METRICS) & set(report)
    with pytest.raises(KeyError, match="Retrieval was not asked for"):
        report["i2t_recall@1"]


def test_bad_extra_captions_are_refused_with_the_argument_named() -> None:
    image, text, extra, extra_image = captioned(10, 4, 2, seed=7)
    with pytest.raises(ModgapInputError, match="pass both"):
        measure_embeddings(image, text, extra_captions=extra, ci=None)
    with pytest.raises(ModgapInputError, match="extra_caption_image: holds"):
        measure_embeddings(
            image, text, extra_captions=extra, extra_caption_image=extra_image + 5, ci=None
        )
    with pytest.raises(ModgapInputError, match="extra_captions: have dimension"):
        measure_embeddings(
            image, text, extra_captions=extra[:, :3], extra_caption_image=extra_image, ci=None
        )


def test_a_rounded_matrix_product_is_refused_not_miscounted() -> None:
    _check_rounding(torch.tensor(RANK_SLACK / 4))
    with pytest.raises(ModgapInputError, match="set_float32_matmul_precision"):
        _check_rounding(torch.tensor(RANK_SLACK))
