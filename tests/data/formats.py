"""The same image-text pairs written in every format the loaders read: JSONL with image files,
WebDataset shards, Parquet, a ``datasets`` save_to_disk folder and a clip_benchmark CSV.

Each writer lists the pairs in the same order, so the same seed samples the same pairs from each.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Pair:
    """One pair as every writer stores it: the image file's bytes and its suffix, its captions
    (the caption, then optionally a second caption) and an optional integer label."""

    image: bytes
    suffix: str
    captions: tuple[str, ...]
    label: int | None


def image_bytes(seed: int, suffix: str, size: tuple[int, int] = (8, 8)) -> bytes:
    """A small image of seeded noise on a seeded colour, encoded as ``suffix`` (jpg or png)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=3)
    pixels = np.clip(base + rng.normal(0, 30, (*size, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG" if suffix == "jpg" else "PNG")
    return buffer.getvalue()


def make_pairs(n: int, *, second: bool = True, labels: bool = True) -> list[Pair]:
    """``n`` pairs: JPEGs and PNGs, captions with commas, quotes, tabs and non-ASCII text."""
    pairs = []
    for i in range(n):
        suffix = "jpg" if i % 3 else "png"
        caption = f'a photo, number {i} of "{n}" – été'
        captions = (caption, f"picture {i}\twith a tab") if second else (caption,)
        pairs.append(Pair(image_bytes(i, suffix), suffix, captions, i % 4 if labels else None))
    return pairs


def write_images(folder: Path, pairs: Sequence[Pair]) -> list[str]:
    """Each pair's image as ``images/NNNNNN.<suffix>`` under ``folder``; the relative paths."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    names = []
    for i, pair in enumerate(pairs):
        name = f"images/{i:06d}.{pair.suffix}"
        (folder / name).write_bytes(pair.image)
        names.append(name)
    return names


def write_jsonl(folder: Path, pairs: Sequence[Pair]) -> Path:
    names = write_images(folder, pairs)
    path = folder / "pairs.jsonl"
    lines = []
    for name, pair in zip(names, pairs, strict=True):
        record: dict[str, object] = {"image": name, "texts": list(pair.captions)}
        if pair.label is not None:
            record["label"] = pair.label
        lines.append(json.dumps(record, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_shards(folder: Path, pairs: Sequence[Pair], shards: int, *, text: str = "json") -> Path:
    """``shard-0.tar`` ... ``shard-<shards - 1>.tar`` (not zero-padded: natural order matters),
    pairs split in order; captions as a ``json`` member (or ``txt``, first caption only)."""
    folder.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(pairs), shards + 1).astype(int)
    for number in range(shards):
        with tarfile.open(folder / f"shard-{number}.tar", "w") as tar:
            for i in range(bounds[number], bounds[number + 1]):
                pair = pairs[i]
                key = f"{i:06d}"
                add_member(tar, f"{key}.{pair.suffix}", pair.image)
                if text == "json":
                    body = json.dumps({"captions": list(pair.captions)}, ensure_ascii=False)
                    add_member(tar, f"{key}.json", body.encode())
                else:
                    add_member(tar, f"{key}.txt", pair.captions[0].encode())
                if pair.label is not None:
                    add_member(tar, f"{key}.cls", str(pair.label).encode())
    return folder


def arrow_table(pairs: Sequence[Pair]) -> object:
    import pyarrow as pa

    columns: dict[str, object] = {
        "image": pa.array([pair.image for pair in pairs], pa.binary()),
        "captions": pa.array([list(pair.captions) for pair in pairs], pa.list_(pa.string())),
    }
    if pairs[0].label is not None:
        columns["label"] = pa.array([pair.label for pair in pairs], pa.int64())
    return pa.table(columns)


def write_parquet(
    folder: Path, pairs: Sequence[Pair], *, files: int = 2, row_group_size: int = 7
) -> Path:
    """``part-0.parquet`` ... , pairs split in order, small row groups."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(pairs), files + 1).astype(int)
    for number in range(files):
        table = arrow_table(pairs[bounds[number] : bounds[number + 1]])
        pq.write_table(table, folder / f"part-{number}.parquet", row_group_size=row_group_size)
    return folder


def write_hf(folder: Path, pairs: Sequence[Pair], *, split: str | None = "test") -> Path:
    """A ``datasets`` save_to_disk folder: an Image feature, a list of captions, a ClassLabel;
    a DatasetDict with the one ``split`` (a plain Dataset when ``split`` is None)."""
    import datasets

    datasets.disable_progress_bars()
    features = {
        "image": datasets.Image(),
        "captions": datasets.Sequence(datasets.Value("string")),
    }
    data: dict[str, list[object]] = {
        "image": [{"bytes": pair.image, "path": None} for pair in pairs],
        "captions": [list(pair.captions) for pair in pairs],
    }
    if pairs[0].label is not None:
        features["label"] = datasets.ClassLabel(names=["a", "b", "c", "d"])
        data["label"] = [pair.label for pair in pairs]
    dataset = datasets.Dataset.from_dict(data, features=datasets.Features(features))
    if split is None:
        dataset.save_to_disk(str(folder))
    else:
        datasets.DatasetDict({split: dataset}).save_to_disk(str(folder))
    return folder


def write_csv(folder: Path, pairs: Sequence[Pair], *, delimiter: str = "\t") -> Path:
    """clip_benchmark's layout: ``filepath`` and ``title`` (the first caption) columns."""
    names = write_images(folder, pairs)
    path = folder / "pairs.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(["filepath", "title"])
        for name, pair in zip(names, pairs, strict=True):
            writer.writerow([name, pair.captions[0]])
    return path
