"""``measure``: model spec + data set spec -> a full Report, with sampling, caching and precomputed vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_modgap import load_model, measure
from pytest_modgap.data.pairset import PairSet
from pytest_modgap.embedding.measurement import sample_indices
from pytest_modgap.errors import DatasetError, EncoderError
from tests.data.layouts import write_image
from tests.models.tiny_models import build_clip_dir


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_clip_dir(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("manifest")
    lines = []
    for i in range(24):
        write_image(root / "images" / f"{i}.png", seed=i)
        record = {
            "image": f"images/{i}.png",
            "texts": [f"picture number {i}", f"an image with the number {i}"],
            "label": i % 4,
        }
        lines.append(json.dumps(record))
    path = root / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_measure_a_model_directory_on_a_manifest_gives_every_metric(
    clip_dir: Path, manifest: Path, tmp_path: Path
) -> None:
    report = measure(str(clip_dir), str(manifest), cache_dir=tmp_path, n_boot=50, device="cpu")
    assert report.n == 24
    assert "matched_overlap" in report and "text_text_similarity" in report
    assert set(report.ci) == set(report)
    assert report.metadata["model"] == str(clip_dir)
    assert report.metadata["dataset"] == str(manifest)
    assert report.metadata["device"] == "cpu"
    assert report.metadata["dtype"] == "float32"


def test_second_measure_reads_the_cache_and_agrees(
    clip_dir: Path, manifest: Path, tmp_path: Path
) -> None:
    first = measure(str(clip_dir), str(manifest), cache_dir=tmp_path, ci=None)
    entries = list(tmp_path.glob("*.npz"))
    assert len(entries) == 1
    second = measure(str(clip_dir), str(manifest), cache_dir=tmp_path, ci=None)
    assert dict(second) == dict(first)
    assert list(tmp_path.glob("*.npz")) == entries


def test_samples_draw_a_seeded_subset_and_change_the_cache_key(
    clip_dir: Path, manifest: Path, tmp_path: Path
) -> None:
    model = load_model(str(clip_dir), device="cpu")
    a = measure(model, str(manifest), samples=10, seed=1, cache_dir=tmp_path, ci=None)
    b = measure(model, str(manifest), samples=10, seed=1, cache_dir=tmp_path, ci=None)
    c = measure(model, str(manifest), samples=10, seed=2, cache_dir=tmp_path, ci=None)
    assert a.n == 10 and dict(a) == dict(b)
    assert dict(a) != dict(c)
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_pairset_sampling_and_array_sampling_pick_the_same_rows() -> None:
    pairs = PairSet(
        name="t", images=[np.zeros((2, 2, 3), np.uint8)] * 30, texts=[str(i) for i in range(30)]
    )
    rows = sample_indices(30, 7, seed=5)
    assert [int(t) for t in pairs.sample(7, 5).texts] == rows.tolist()


def test_precomputed_embeddings_skip_the_data_set(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(40, 8)).astype(np.float32)
    np.savez(tmp_path / "e.npz", image=image, text=image + rng.normal(size=(40, 8)))
    report = measure(f"embeddings:{tmp_path / 'e.npz'}", "does-not-matter", samples=30, ci=None)
    assert report.n == 30
    assert report.metadata["dataset"].startswith("embeddings:")


def test_more_samples_than_precomputed_rows_is_refused_not_clamped(tmp_path: Path) -> None:
    """A gate asked for 1,000 pairs must not pass on 40 while its report says 1,000."""
    rng = np.random.default_rng(0)
    path = tmp_path / "e.npz"
    np.savez(path, image=rng.normal(size=(40, 8)), text=rng.normal(size=(40, 8)))
    with pytest.raises(DatasetError) as info:
        measure(f"embeddings:{path}", "unused", samples=1000, ci=None)
    assert f"samples=1000 asks for more pairs than embeddings file {path} holds (40)" in str(
        info.value
    )
    report = measure(f"embeddings:{path}", "unused", samples=40, ci=None)
    assert report.n == 40 and report.metadata["samples"] == 40


def test_unknown_model_and_unknown_data_set_are_clear_errors(
    clip_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(EncoderError, match="does-not-exist"):
        measure(str(tmp_path / "does-not-exist"), "shapes", cache_dir=tmp_path)
    with pytest.raises(DatasetError, match="imagenet"):
        measure(str(clip_dir), "imagenet:/nowhere", cache_dir=tmp_path)


def test_a_missing_image_names_the_file_and_the_manifest_line(
    clip_dir: Path, manifest: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jsonl"
    lines = manifest.read_text().splitlines()
    lines.append(json.dumps({"image": "images/missing.png", "text": "gone"}))
    broken.write_text("\n".join(lines) + "\n")
    (tmp_path / "images").symlink_to(manifest.parent / "images")
    with pytest.raises(DatasetError, match=r"missing\.png.*line 25|line 25.*missing\.png"):
        measure(str(clip_dir), str(broken), cache_dir=tmp_path)
