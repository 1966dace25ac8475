"""Miniature copies of the data set layouts the loaders read, written into a test's tmp_path.

Images are tiny generated PNG/JPEG files (8x8 seeded noise), so building a layout is instant.
"""

from __future__ import annotations

import csv
import json
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from pytest_modgap.data.pairset import PairSet


def image_paths(pairs: PairSet) -> list[Path]:
    """The image paths of a file-backed PairSet (failing if any image is not a Path)."""
    paths = [image for image in pairs.images if isinstance(image, Path)]
    assert len(paths) == len(pairs), "file loaders must give every image as a Path"
    return paths


def write_image(path: Path, seed: int) -> Path:
    """An 8x8 image of seeded noise at ``path``; the suffix picks PNG or JPEG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def captions_for(image: str, count: int = 5) -> list[str]:
    """``count`` distinct captions for ``image``, some with commas and quotes in them."""
    return [f'caption {k} of {image}, with a comma and a "quote"' for k in range(count)]


def flickr_captions_txt(
    root: Path, captions: Mapping[str, Sequence[str]], *, folder: str = "Images"
) -> Path:
    """The Kaggle layout: ``captions.txt`` (CSV, header image,caption) and ``<folder>/``."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "captions.txt").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "caption"])
        for image, texts in captions.items():
            for text in texts:
                writer.writerow([image, text])
    for seed, image in enumerate(captions):
        write_image(root / folder / image, seed)
    return root


def flickr_results_csv(
    root: Path, captions: Mapping[str, Sequence[str]], *, folder: str = "flickr30k_images"
) -> Path:
    """The Flickr30K Kaggle layout: pipe-separated ``results.csv`` and ``flickr30k_images/``."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["image_name| comment_number| comment"]
    for image, texts in captions.items():
        lines += [f"{image}| {k}| {text}" for k, text in enumerate(texts)]
    (root / "results.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for seed, image in enumerate(captions):
        write_image(root / folder / image, seed)
    return root


def flickr_token_txt(
    root: Path, captions: Mapping[str, Sequence[str]], *, folder: str = "Flicker8k_Dataset"
) -> Path:
    """The original Flickr8k layout: ``Flickr8k.token.txt`` (``<image>#<k>\\t<caption>``)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{image}#{k}\t{text}" for image, texts in captions.items() for k, text in enumerate(texts)
    ]
    (root / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for seed, image in enumerate(captions):
        write_image(root / folder / image, seed)
    return root


def coco_layout(
    root: Path,
    split: str,
    images: Mapping[int, str],
    annotations: Sequence[tuple[int, int, str]],
    *,
    nested_images: bool = False,
) -> Path:
    """``annotations/captions_<split>.json`` and the image folder (``images/<split>/`` if nested).

    ``images`` maps image id to file name; ``annotations`` are (annotation id, image id, caption).
    Returns the captions JSON path.
    """
    data = {
        "info": {"description": "miniature COCO"},
        "images": [
            {"id": i, "file_name": name, "width": 8, "height": 8} for i, name in images.items()
        ],
        "annotations": [
            {"id": ann_id, "image_id": image_id, "caption": caption}
            for ann_id, image_id, caption in annotations
        ],
    }
    json_path = root / "annotations" / f"captions_{split}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data), encoding="utf-8")
    folder = root / "images" / split if nested_images else root / split
    for image_id, name in images.items():
        write_image(folder / name, image_id)
    return json_path


def cifar100_layout(
    root: Path,
    labels: Sequence[int],
    class_names: Sequence[str],
    *,
    split: str = "test",
    nested: bool = True,
    protocol: int = 2,
) -> tuple[Path, np.ndarray]:
    """A miniature ``cifar-100-python/`` (or flat) with ``split`` and ``meta`` pickles.

    Keys are bytes as in the distributed files. Returns the folder and the (N, 3072) uint8 rows.
    """
    folder = root / "cifar-100-python" if nested else root
    folder.mkdir(parents=True, exist_ok=True)
    rows = np.random.default_rng(len(labels)).integers(
        0, 256, size=(len(labels), 3072), dtype=np.uint8
    )
    batch = {
        b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
        b"fine_labels": list(labels),
        b"coarse_labels": [0] * len(labels),
        b"data": rows,
    }
    meta = {
        b"fine_label_names": [name.encode() for name in class_names],
        b"coarse_label_names": [b"everything"],
    }
    with (folder / split).open("wb") as handle:
        pickle.dump(batch, handle, protocol=protocol)
    with (folder / "meta").open("wb") as handle:
        pickle.dump(meta, handle, protocol=protocol)
    return folder, rows
