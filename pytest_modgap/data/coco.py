"""Load MSCOCO captions (``captions_<split>.json`` and the split's image folder) into a PairSet.

One pair per image, ordered by image id; its two lowest-id captions become ``text`` and ``text2``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.errors import DatasetError

_SPLITS = ("val2017", "val2014", "train2017", "train2014")
"""Splits in order of preference: the validation sets are what the published numbers use."""


def load_coco(root: Path) -> PairSet:
    """Read MSCOCO captions from ``root``, the data set folder or a ``captions_<split>.json`` file.

    In a folder, the split used is the first of val2017, val2014, train2017, train2014 that has both
    ``annotations/captions_<split>.json`` (or ``captions_<split>.json``) and an image folder
    ``<split>/`` (or ``images/<split>/``). Each image entry's ``file_name`` is looked up in that
    folder. ``text`` and ``text2`` are an image's first two captions by annotation id; when some
    image has only one caption, ``texts2`` is None for the whole set. ``extra_texts`` holds every
    caption after the first (five or more in all per image), for retrieval.
    """
    root = Path(root)
    captions_file, folder = _locate(root)
    return _read_captions(captions_file, folder)


def _locate(root: Path) -> tuple[Path, Path]:
    """The captions JSON and the image folder of the split to use."""
    if root.is_file():
        split = root.stem.removeprefix("captions_")
        bases = [root.parent, root.parent.parent]
        folders = list(dict.fromkeys(p for b in bases for p in (b / split, b / "images" / split)))
        for folder in folders:
            if folder.is_dir():
                return root, folder
        raise DatasetError(
            f"No image folder for {root}: looked for {', '.join(str(f) for f in folders)}. Unpack "
            f"the {split} images into one of them."
        )
    if not root.is_dir():
        raise DatasetError(f"MSCOCO folder {root} does not exist. Check the data set spec's path.")

    found_json: list[Path] = []
    looked_for: list[Path] = []
    for split in _SPLITS:
        jsons = [root / "annotations" / f"captions_{split}.json", root / f"captions_{split}.json"]
        folders = [root / split, root / "images" / split]
        json_file = next((j for j in jsons if j.is_file()), None)
        image_folder = next((f for f in folders if f.is_dir()), None)
        if json_file is not None and image_folder is not None:
            return json_file, image_folder
        looked_for += jsons
        if json_file is not None:
            found_json.append(json_file)
    if found_json:
        split = found_json[0].stem.removeprefix("captions_")
        raise DatasetError(
            f"Found {found_json[0]} but no image folder {root / split} or "
            f"{root / 'images' / split}. Unpack the {split} images there."
        )
    raise DatasetError(
        f"No MSCOCO captions file in {root}: looked for "
        f"{', '.join(str(p.relative_to(root)) for p in looked_for)}. Unpack the annotations "
        f"archive into {root}, or give the path of a captions JSON file."
    )


def _read_captions(captions_file: Path, folder: Path) -> PairSet:
    """Pairs from a COCO captions JSON whose images are in ``folder``."""
    try:
        with captions_file.open(encoding="utf-8") as handle:
            data: Any = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(
            f"Cannot read MSCOCO captions file {captions_file}: {exc}. Download it again; it must "
            f"be the JSON from the annotations archive."
        ) from exc
    where = f"MSCOCO captions file {captions_file}"
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("images"), list)
        or not isinstance(data.get("annotations"), list)
    ):
        raise DatasetError(
            f'{where} is not a captions file: it needs "images" and "annotations" lists. Use a '
            f"captions_<split>.json from the MSCOCO annotations archive."
        )

    file_names: dict[int, str] = {}
    for index, entry in enumerate(data["images"]):
        if (
            not isinstance(entry, dict)
            or not _is_int(entry.get("id"))
            or not isinstance(entry.get("file_name"), str)
        ):
            raise DatasetError(
                f'{where}: images entry {index} is {entry!r}, not an object with an integer "id" '
                f'and a string "file_name". Use the unmodified file from the annotations archive.'
            )
        file_names[entry["id"]] = entry["file_name"]
    if not file_names:
        raise DatasetError(f"{where} has no images. Use a complete captions_<split>.json.")

    captions: dict[int, list[tuple[int, str]]] = {image_id: [] for image_id in file_names}
    for index, ann in enumerate(data["annotations"]):
        if (
            not isinstance(ann, dict)
            or not _is_int(ann.get("id"))
            or not _is_int(ann.get("image_id"))
            or not isinstance(ann.get("caption"), str)
        ):
            raise DatasetError(
                f'{where}: annotations entry {index} is {ann!r}, not an object with integer "id" '
                f'and "image_id" and a string "caption". Use the unmodified file.'
            )
        if ann["image_id"] not in captions:
            raise DatasetError(
                f"{where}: annotation id {ann['id']} captions image id {ann['image_id']}, which is "
                f'not in "images". Use the unmodified file from the annotations archive.'
            )
        captions[ann["image_id"]].append((ann["id"], ann["caption"].strip()))

    image_ids = sorted(file_names)
    present = {entry.name for entry in os.scandir(folder)}
    for image_id in image_ids:
        name = file_names[image_id]
        if not captions[image_id]:
            raise DatasetError(
                f"{where}: image id {image_id} ({name}) has no caption. Every image needs at least "
                f"one; use the unmodified file from the annotations archive."
            )
        if name not in present and not (folder / name).is_file():
            raise DatasetError(
                f"Image {name} (image id {image_id} in {captions_file}) is not in {folder}. "
                f"Download the complete {folder.name} image folder."
            )
        captions[image_id].sort()

    has_second = all(len(captions[image_id]) > 1 for image_id in image_ids)
    return PairSet(
        name="coco",
        images=[folder / file_names[image_id] for image_id in image_ids],
        texts=[captions[image_id][0][1] for image_id in image_ids],
        texts2=[captions[image_id][1][1] for image_id in image_ids] if has_second else None,
        extra_texts=[[text for _, text in captions[image_id][1:]] for image_id in image_ids],
        origins=[
            f"{captions_file.name} annotation id {captions[image_id][0][0]}"
            for image_id in image_ids
        ],
        description=f"MSCOCO: {len(image_ids)} images in {folder}, captions from {captions_file}",
    )


def _is_int(value: object) -> bool:
    """True for a JSON integer (not a bool, which Python counts as an int)."""
    return isinstance(value, int) and not isinstance(value, bool)
