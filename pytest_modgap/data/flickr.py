"""Load Flickr8k and Flickr30K, in the layouts they are distributed in, into a PairSet.

Reads the caption file (``captions.txt``, ``results.csv`` or ``*.token.txt``) and the image folder.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.errors import DatasetError


@dataclass(frozen=True)
class _Caption:
    """One caption line: its image, its rank among that image's captions, and where it was read."""

    image: str
    rank: int
    text: str
    line: int


def _read_captions_txt(path: Path) -> list[_Caption]:
    """The Kaggle layout: CSV with header ``image,caption``, captions in file order."""
    captions: list[_Caption] = []
    # utf-8-sig drops a byte-order mark that would otherwise glue itself to the header.
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = [field.strip().lower() for field in next(reader, [])]
        if header != ["image", "caption"]:
            raise DatasetError(
                f"Caption file {path} starts with {','.join(header)!r}, not the header "
                f"'image,caption'. Use the captions.txt distributed with the data set, or add that "
                f"header line."
            )
        for row in reader:
            if not row:
                continue
            if len(row) != 2:
                raise DatasetError(
                    f"Caption file {path} line {reader.line_num} has {len(row)} fields, not 2 "
                    f"(image,caption). Quote captions that contain commas."
                )
            captions.append(
                _Caption(row[0].strip(), len(captions), row[1].strip(), reader.line_num)
            )
    return captions


# The distributed Flickr30K results.csv has one row with no pipe after the comment number
# ("2199200615.jpg| 4   A dog runs ..."); this recovers the number and the caption from it.
_NUMBER_THEN_CAPTION = re.compile(r"\s*(\d+)\s+(.*)")


def _read_results_csv(path: Path) -> list[_Caption]:
    """The Flickr30K Kaggle layout: ``image_name| comment_number| comment``, pipe separated."""
    captions: list[_Caption] = []
    with path.open(encoding="utf-8-sig") as handle:
        header = [field.strip() for field in handle.readline().split("|")]
        if header != ["image_name", "comment_number", "comment"]:
            raise DatasetError(
                f"Caption file {path} starts with {'|'.join(header)!r}, not the header "
                f"'image_name| comment_number| comment'. Use the results.csv distributed with "
                f"Flickr30K."
            )
        # The csv module is not used: captions are unquoted and may contain quote characters.
        for number, line in enumerate(handle, start=2):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("|", 2)
            if len(fields) == 2:
                match = _NUMBER_THEN_CAPTION.fullmatch(fields[1])
                fields = [fields[0], *match.groups()] if match else fields
            if len(fields) != 3 or not fields[1].strip().isdigit():
                raise DatasetError(
                    f"Caption file {path} line {number} is not 'image| number| caption': "
                    f"{line.strip()!r}. Fix or delete that line."
                )
            image, rank, text = (field.strip() for field in fields)
            captions.append(_Caption(image, int(rank), text, number))
    return captions


_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _read_token_txt(path: Path) -> list[_Caption]:
    """The original Flickr8k layout: ``<image>#<k><TAB><caption>`` per line."""
    captions: list[_Caption] = []
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            key, tab, text = line.rstrip("\r\n").partition("\t")
            image, hash_sign, rank = key.strip().rpartition("#")
            if not tab or not hash_sign or not rank.isdigit():
                raise DatasetError(
                    f"Caption file {path} line {number} is not '<image>#<k><TAB><caption>': "
                    f"{line.strip()!r}. Fix or delete that line."
                )
            # Flickr8k.token.txt captions a file "2258277193_586949ec62.jpg.1" that was never
            # shipped; names that are not image files are skipped rather than failing the set.
            if not image.lower().endswith(_IMAGE_SUFFIXES):
                continue
            captions.append(_Caption(image, int(rank), text.strip(), number))
    return captions


_CAPTION_FILES: tuple[tuple[str, Callable[[Path], list[_Caption]]], ...] = (
    ("captions.txt", _read_captions_txt),
    ("results.csv", _read_results_csv),
    ("Flickr8k.token.txt", _read_token_txt),
    ("Flickr8k_text/Flickr8k.token.txt", _read_token_txt),
    ("results_20130124.token", _read_token_txt),
)
"""Caption files looked for under the root, in order, with their reader."""

_IMAGE_FOLDERS = ("Images", "images", "flickr30k_images", "Flicker8k_Dataset", "Flickr8k_Dataset")
"""Image folders looked for next to the caption file and under the root, in order."""


def load_flickr(root: Path, *, name: str) -> PairSet:
    """Read Flickr8k or Flickr30K from ``root``: one pair per image, in caption-file order.

    ``root`` is the data set's folder (or its caption file). The captions come from the first of
    ``captions.txt``, ``results.csv``, ``Flickr8k.token.txt``, ``Flickr8k_text/Flickr8k.token.txt``,
    ``results_20130124.token`` found; the images from ``Images/``, ``images/``,
    ``flickr30k_images/``, ``Flicker8k_Dataset/`` or ``Flickr8k_Dataset/``. ``text`` is an
    image's first caption and ``text2`` its second (None for the whole set when some image has only
    one caption); ``extra_texts`` all its captions after the first, for retrieval. ``name`` names
    the PairSet ("flickr8k", "flickr30k").
    """
    root = Path(root)
    caption_file, reader = _find_caption_file(root)
    try:
        captions = reader(caption_file)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(
            f"Cannot read caption file {caption_file}: {exc}. Check that it is the UTF-8 text file "
            f"distributed with the data set."
        ) from exc
    if not captions:
        raise DatasetError(
            f"Caption file {caption_file} has no captions. Use the caption file distributed with "
            f"the data set."
        )
    folder = _find_image_folder(root, caption_file)

    by_image: dict[str, list[_Caption]] = {}
    for caption in captions:
        by_image.setdefault(caption.image, []).append(caption)
    present = {entry.name for entry in os.scandir(folder)}
    for image, entries in by_image.items():
        entries.sort(key=lambda caption: caption.rank)
        if image not in present and not (folder / image).is_file():
            raise DatasetError(
                f"Image {image}, captioned in {caption_file} line {entries[0].line}, is not in "
                f"{folder}. Download the complete image folder, or delete that image's captions."
            )

    firsts = [entries[0] for entries in by_image.values()]
    has_second = all(len(entries) > 1 for entries in by_image.values())
    return PairSet(
        name=name,
        images=[folder / image for image in by_image],
        texts=[caption.text for caption in firsts],
        texts2=[entries[1].text for entries in by_image.values()] if has_second else None,
        extra_texts=[[caption.text for caption in entries[1:]] for entries in by_image.values()],
        origins=[f"{caption_file.name} line {caption.line}" for caption in firsts],
        description=f"{name}: {len(by_image)} images in {folder}, captions from {caption_file}",
    )


def _find_caption_file(root: Path) -> tuple[Path, Callable[[Path], list[_Caption]]]:
    """The caption file under ``root`` (or ``root`` itself) and the reader for its format."""
    if root.is_file():
        for relative, reader in _CAPTION_FILES:
            if root.name == Path(relative).name:
                return root, reader
        raise DatasetError(
            f"{root} is not a Flickr caption file this loader knows (it reads "
            f"{', '.join(sorted({Path(r).name for r, _ in _CAPTION_FILES}))}). Point the data set "
            f"spec at the data set's folder or at one of those files."
        )
    if not root.is_dir():
        raise DatasetError(
            f"Flickr data set folder {root} does not exist. Check the path in the data set spec."
        )
    for relative, reader in _CAPTION_FILES:
        if (root / relative).is_file():
            return root / relative, reader
    raise DatasetError(
        f"No Flickr caption file in {root}: looked for "
        f"{', '.join(relative for relative, _ in _CAPTION_FILES)}. Point the data set spec at the "
        f"folder that holds the captions and the image folder."
    )


def _find_image_folder(root: Path, caption_file: Path) -> Path:
    """The first image folder next to the caption file or under the data set folder."""
    bases = [caption_file.parent, caption_file.parent.parent if root.is_file() else root]
    candidates = list(dict.fromkeys(base / folder for base in bases for folder in _IMAGE_FOLDERS))
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise DatasetError(
        f"No image folder for {caption_file}: looked for "
        f"{', '.join(str(c) for c in candidates)}. Unpack the data set's images into one of them."
    )
