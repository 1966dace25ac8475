"""The same pairs written as JSONL, WebDataset shards, Parquet, a save_to_disk folder and a CSV give
the same seeded sample, the same cache fingerprint and identical metrics."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pytest_modgap.data.indexed import IndexedPairs
from pytest_modgap.data.pairset import EncodedImage, PairSet
from pytest_modgap.data.specs import load_dataset
from pytest_modgap.data.webdataset import TarMember
from pytest_modgap.embedding.measurement import LoadedModel, measure

from .formats import (
    Pair,
    make_pairs,
    write_csv,
    write_hf,
    write_jsonl,
    write_parquet,
    write_shards,
)

N, SAMPLES, SEED = 40, 24, 5


class PixelStatistics:
    """An encoder computed from pixel statistics and character counts: deterministic, instant,
    and different for every image and caption of ``make_pairs``."""

    spec = "pixel-statistics"

    def fingerprint(self) -> str:
        return "pixel-statistics-v1"

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        rows = []
        for image in images:
            pixels = np.asarray(image, dtype=np.float64) / 255
            rows.append([*pixels.mean(axis=(0, 1)), *pixels.std(axis=(0, 1)), 0.1, 0.2])
        return torch.tensor(rows)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        rows = []
        for text in texts:
            counts = [sum(ch in group for ch in text) for group in ("aeiou", "0123456789", " ,")]
            rows.append([len(text) / 40, *(c / 10 for c in counts), 0.3, 0.1, 0.5, 0.2])
        return torch.tensor(rows)


Writer = Callable[[Path, list[Pair]], str]

WRITERS: dict[str, Writer] = {
    "jsonl": lambda root, pairs: f"jsonl:{write_jsonl(root, pairs)}",
    "wds": lambda root, pairs: f"wds:{write_shards(root, pairs, shards=12)}/shard-{{0..11}}.tar",
    "wds-folder": lambda root, pairs: f"wds:{write_shards(root, pairs, shards=12)}",
    "parquet": lambda root, pairs: f"parquet:{write_parquet(root, pairs)}/*.parquet",
    "hf": lambda root, pairs: f"hf:{write_hf(root, pairs)}#test",
}


def image_bytes(pairs: PairSet) -> list[bytes]:
    return [
        image.read() if isinstance(image, EncodedImage) else Path(image).read_bytes()
        for image in pairs.images
        if not isinstance(image, np.ndarray)
    ]


def content(pairs: PairSet) -> tuple[object, ...]:
    return (
        list(pairs.texts),
        None if pairs.texts2 is None else list(pairs.texts2),
        None if pairs.groups is None else list(pairs.groups),
        image_bytes(pairs),
    )


def metrics(spec: str, cache: Path | None = None) -> dict[str, object]:
    report = measure(
        LoadedModel("pixel-statistics", PixelStatistics()),
        spec,
        samples=SAMPLES,
        seed=SEED,
        n_boot=50,
        use_cache=cache is not None,
        cache_dir=cache,
        progress=False,
    )
    return {name: (report[name], report.ci.get(name)) for name in report}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every format's spec for the same 40 pairs (two captions, integer labels), and for the
    CSV-expressible version of them (one caption, no labels) under ``plain-``."""
    root = tmp_path_factory.mktemp("formats")
    pairs = make_pairs(N)
    specs = {name: write(root / name, pairs) for name, write in WRITERS.items()}
    plain = make_pairs(N, second=False, labels=False)
    specs["plain-jsonl"] = f"jsonl:{write_jsonl(root / 'plain-jsonl', plain)}"
    specs["plain-csv"] = f"csv:{write_csv(root / 'plain-csv', plain)}"
    specs["plain-csv-comma"] = f"csv:{write_csv(root / 'comma', plain, delimiter=',')}"
    specs["plain-wds-txt"] = f"wds:{write_shards(root / 'txt', plain, shards=2, text='txt')}"
    return specs


@pytest.mark.parametrize("name", ["wds", "wds-folder", "parquet", "hf"])
def test_every_format_samples_the_same_pairs_as_the_manifest(
    written: dict[str, str], name: str
) -> None:
    reference = load_dataset(written["jsonl"]).sample(SAMPLES, SEED)
    dataset = load_dataset(written[name])
    assert isinstance(dataset, IndexedPairs)
    assert len(dataset) == N
    sampled = dataset.sample(SAMPLES, SEED)
    assert content(sampled) == content(reference)
    assert sampled.texts2 is not None and sampled.groups is not None
    assert sampled.fingerprint() == reference.fingerprint()
    # All pairs, in the manifest's order (the order the seeded draw is made over).
    assert content(dataset.sample(None)) == content(load_dataset(written["jsonl"]))


@pytest.mark.parametrize("name", ["plain-csv", "plain-csv-comma", "plain-wds-txt"])
def test_single_caption_formats_sample_the_same_pairs(written: dict[str, str], name: str) -> None:
    reference = load_dataset(written["plain-jsonl"]).sample(SAMPLES, SEED)
    sampled = load_dataset(written[name]).sample(SAMPLES, SEED)
    assert content(sampled) == content(reference)
    assert sampled.texts2 is None and sampled.groups is None
    assert sampled.fingerprint() == reference.fingerprint()


def test_identical_metrics_from_every_format(written: dict[str, str]) -> None:
    reference = metrics(written["jsonl"])
    assert "matched_gap" in reference  # second captions reached the metrics
    for name in ("wds", "parquet", "hf"):
        assert metrics(written[name]) == reference, name
    plain = metrics(written["plain-jsonl"])
    assert "matched_gap" not in plain
    for name in ("plain-csv", "plain-wds-txt"):
        assert metrics(written[name]) == plain, name


def test_cached_run_of_another_format_reads_the_same_entry(
    written: dict[str, str], tmp_path: Path
) -> None:
    first = metrics(written["jsonl"], cache=tmp_path)
    entries = sorted(tmp_path.glob("*.npz"))
    assert len(entries) == 1
    assert metrics(written["wds"], cache=tmp_path) == first
    assert sorted(tmp_path.glob("*.npz")) == entries


def overwrite_in_place(path: Path, offset: int, data: bytes) -> None:
    """Change bytes of ``path`` without changing its size or its modification time."""
    stat = path.stat()
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size


def test_fingerprint_changes_with_a_sampled_members_bytes_not_with_others(
    tmp_path: Path,
) -> None:
    write_shards(tmp_path, make_pairs(12), shards=1)
    spec = f"wds:{tmp_path}/shard-0.tar"
    shard = tmp_path / "shard-0.tar"
    sampled = load_dataset(spec).sample(4, seed=1)
    before = sampled.fingerprint()
    members = load_dataset(spec).sample(None).images
    assert all(isinstance(member, TarMember) for member in members)
    sampled_offsets = {image.offset for image in sampled.images if isinstance(image, TarMember)}
    offsets = [member.offset for member in members if isinstance(member, TarMember)]
    unsampled = next(offset for offset in offsets if offset not in sampled_offsets)

    # An unsampled member changes: the sample's key stays (its pairs are the same).
    overwrite_in_place(shard, unsampled + 20, b"\x00\x01\x02")
    assert load_dataset(spec).sample(4, seed=1).fingerprint() == before

    # A sampled member changes in place (same size, same mtime): a new key.
    overwrite_in_place(shard, min(sampled_offsets) + 20, b"\x07\x08\x09")
    assert load_dataset(spec).sample(4, seed=1).fingerprint() != before
