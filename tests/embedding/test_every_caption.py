"""Every caption, the zero-shot prompts and the slices, from data set files to the Report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_modgap import load_model, measure
from pytest_modgap.data.pairset import PairSet
from pytest_modgap.data.templates import CIFAR100_TEMPLATES
from pytest_modgap.embedding.cache import EmbeddingCache
from pytest_modgap.embedding.embeddings import Embeddings
from pytest_modgap.embedding.measurement import sample_embeddings
from pytest_modgap.embedding.pipeline import embed_pairs, embed_pairs_cached
from pytest_modgap.metrics.catalogue import RETRIEVAL_METRICS
from tests.data.layouts import cifar100_layout, write_image
from tests.reference_metrics import reference_metrics

CLASSES = ["apple", "aquarium_fish", "baby", "bear", "beaver"]
ZEROSHOT = ("zeroshot_top1", "zeroshot_top5", "zeroshot_mean_per_class_recall")

pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    cifar100_layout(root, labels=[i % 5 for i in range(110)], class_names=CLASSES)
    return root


def test_cifar_layout_zero_shot_end_to_end(
    clip_dir: Path, cifar_root: Path, tmp_path: Path
) -> None:
    model = load_model(str(clip_dir), device="cpu")
    spec = f"cifar100:{cifar_root}"
    report = measure(model, spec, cache_dir=tmp_path, n_boot=50)
    assert set(ZEROSHOT) <= set(report)
    assert not set(RETRIEVAL_METRICS) & set(report), "class prompts are not retrieval captions"
    # The classifier: CIFAR-100's 18 templates per class, embedded by the model itself.
    sample, _ = sample_embeddings(model, spec, samples=None, seed=0, cache_dir=tmp_path)
    assert sample.class_embeddings is not None and sample.groups is not None
    assert sample.class_embeddings.shape[:2] == (5, len(CIFAR100_TEMPLATES))
    encoder = model.encoder
    direct = encoder.encode_texts(  # type: ignore[union-attr]
        [template.format(c="aquarium fish") for template in CIFAR100_TEMPLATES]
    )
    np.testing.assert_allclose(sample.class_embeddings[1], direct.float().numpy(), atol=1e-5)
    expected = reference_metrics(
        sample.image,
        sample.text,
        sample.text2,
        sample.groups,
        retrieval=False,
        class_embeddings=sample.class_embeddings,
    )
    for name in ZEROSHOT:
        assert report[name] == pytest.approx(expected[name], abs=1e-9), name
    # The class names are the slices: 22 images each.
    assert sorted(report.slices) == sorted(name.replace("_", " ") for name in CLASSES)
    fish = report.slices["aquarium fish"]
    assert fish.n == 22 and "auc" not in fish  # one class: no negatives within the slice
    labels = np.asarray(sample.groups)
    hits = _top1_hits(sample.image, sample.class_embeddings, labels)
    assert fish["zeroshot_top1"] == pytest.approx(hits[labels == 1].mean())
    one = measure(model, spec, cache_dir=tmp_path, n_boot=50, templates="default")
    assert one["zeroshot_top1"] == pytest.approx(
        reference_metrics(
            sample.image,
            sample.text,
            groups=sample.groups,
            retrieval=False,
            class_embeddings=sample.class_embeddings[:, :1],
        )["zeroshot_top1"],
        abs=1e-9,
    )


def _top1_hits(image: np.ndarray, class_embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    unit = class_embeddings / np.linalg.norm(class_embeddings, axis=-1, keepdims=True)
    classes = unit.mean(1)
    classes /= np.linalg.norm(classes, axis=1, keepdims=True)
    logits = (image / np.linalg.norm(image, axis=1, keepdims=True)) @ classes.T
    own = logits[np.arange(len(labels)), labels]
    return ((logits >= own[:, None]).sum(1) == 1).astype(float)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("manifest")
    lines = []
    for i in range(48):
        write_image(root / "images" / f"{i}.png", seed=i)
        captions = [f"picture number {i}", f"an image of {i}", f"photo {i} again", f"{i} shown"]
        record = {
            "image": f"images/{i}.png",
            "texts": captions[: 2 + i % 3],
            "label": ["cat", "dog"][i % 2],
            "slice": "indoor" if i < 24 else "outdoor",
        }
        lines.append(json.dumps(record))
    path = root / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_manifest_keeps_every_caption_its_label_names_and_slices(
    clip_dir: Path, manifest: Path, tmp_path: Path
) -> None:
    model = load_model(str(clip_dir), device="cpu")
    report = measure(model, str(manifest), cache_dir=tmp_path, n_boot=50)
    sample, _ = sample_embeddings(model, str(manifest), samples=None, seed=0, cache_dir=tmp_path)
    assert sample.extra_text is not None and sample.extra_text_image is not None
    assert len(sample.extra_text) == sum(1 + i % 3 for i in range(48))
    assert np.bincount(sample.extra_text_image).tolist() == [1 + i % 3 for i in range(48)]
    expected = reference_metrics(
        sample.image,
        sample.text,
        sample.text2,
        sample.groups,
        extra_captions=sample.extra_text,
        extra_caption_image=sample.extra_text_image,
        class_embeddings=sample.class_embeddings,
    )
    for name in (*RETRIEVAL_METRICS, "zeroshot_top1", "zeroshot_mean_per_class_recall"):
        assert report[name] == pytest.approx(expected[name], abs=1e-9), name
    assert "zeroshot_top5" not in report  # two classes
    assert sample.class_embeddings is not None and sample.class_embeddings.shape[:2] == (2, 1)
    assert list(report.slices) == ["indoor", "outdoor"]
    assert report.slices["indoor"].n == 24


def test_cached_entries_hold_every_caption_and_are_refused_when_short(tmp_path: Path) -> None:
    from tests.embedding.test_pipeline import FakePlainEncoder

    images = [np.full((8, 8, 3), i * 20, dtype=np.uint8) for i in range(6)]
    pairs = PairSet(
        name="toy",
        images=images,
        texts=[f"text {i}" for i in range(6)],
        extra_texts=[[f"more {i}"] * (i % 3) for i in range(6)],
        class_names=["a", "b"],
        groups=[i % 2 for i in range(6)],
        class_texts=["a photo of a", "a photo of b"],
    )
    cache = EmbeddingCache(tmp_path)
    encoder = FakePlainEncoder()
    first = embed_pairs_cached(pairs, encoder, cache, batch_size=4, num_workers=0)
    key = next(tmp_path.glob("*.npz")).stem
    stored = cache.get(key)
    assert stored is not None and stored.extra_text is not None and stored.class_text is not None
    np.testing.assert_array_equal(stored.extra_text, first.extra_text)
    np.testing.assert_array_equal(stored.extra_text_image, [1, 2, 2, 4, 5, 5])
    # An entry without the further captions (as an older writer left it) is not used.
    cache.put(key, Embeddings(image=first.image, text=first.text))
    calls = len(encoder.text_batches)
    again = embed_pairs_cached(pairs, encoder, cache, batch_size=4, num_workers=0)
    assert len(encoder.text_batches) > calls
    assert again.extra_text is not None
    direct = embed_pairs(pairs, FakePlainEncoder(), batch_size=4, num_workers=0)
    np.testing.assert_array_equal(direct.extra_text, first.extra_text)
