"""Who the measured pairs are: a content hash per pair and a name per image, for baseline snapshots
(the same pairs, row for row) and for the lists of pairs that got worse."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from pytest_modgap.data.pairset import EncodedImage, PairSet
from pytest_modgap.errors import DatasetError
from pytest_modgap.metrics.measured import MeasuredPairs

PAIR_ID_BYTES = 16
"""A pair's id: the first 16 bytes of a SHA-256 (a collision among a sample's pairs is 2^-64 at
2^32 pairs)."""
_SCHEME = b"pytest-modgap pair 1\n"


def pair_ids(pairs: PairSet) -> np.ndarray:
    """(N, PAIR_ID_BYTES) uint8: per pair, a hash of its image's bytes (or pixels) and every
    caption, each field length-prefixed so no caption can run into the next one."""
    ids = np.empty((len(pairs.images), PAIR_ID_BYTES), dtype=np.uint8)
    for i, image in enumerate(pairs.images):
        digest = hashlib.sha256(_SCHEME)
        fields = [_image_content(pairs, i, image), pairs.texts[i].encode()]
        if pairs.texts2 is not None:
            fields.append(pairs.texts2[i].encode())
        if pairs.extra_texts is not None:
            fields += [text.encode() for text in pairs.extra_texts[i]]
        for data in fields:
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
        ids[i] = np.frombuffer(digest.digest()[:PAIR_ID_BYTES], dtype=np.uint8)
    return ids


def pair_names(pairs: PairSet) -> list[str]:
    """Where each pair's image came from: its file, its container member, or its origin."""
    names = []
    for i, image in enumerate(pairs.images):
        if isinstance(image, (Path, str)):
            names.append(str(image))
        elif isinstance(image, EncodedImage):
            names.append(str(image))
        else:
            names.append(pairs.origin(i))
    return names


THUMBNAIL_PIXELS = 64
"""The longest side of a thumbnail in the lists of pairs that got worse."""


def measured_pairs(pairs: PairSet, **vectors: object) -> MeasuredPairs:
    """``MeasuredPairs`` of ``pairs`` with the given vectors (the fields of ``MeasuredPairs``)."""
    return MeasuredPairs(
        identities=lambda: pair_ids(pairs),
        pair_names=pair_names(pairs),
        captions=list(pairs.texts),
        class_names=None if pairs.class_names is None else list(pairs.class_names),
        thumbnail=lambda index: thumbnail(pairs, index),
        **vectors,  # type: ignore[arg-type]
    )


def thumbnail(pairs: PairSet, index: int) -> bytes | None:
    """A PNG of pair ``index``'s image, at most THUMBNAIL_PIXELS on its longest side; None when it
    cannot be read or decoded again (the lists then show the name alone)."""
    from PIL import Image

    image = pairs.images[index]
    try:
        if isinstance(image, np.ndarray):
            picture = Image.fromarray(np.asarray(image, dtype=np.uint8))
        else:
            picture = Image.open(io.BytesIO(_image_content(pairs, index, image)))
        picture = picture.convert("RGB")
        picture.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
    except (OSError, ValueError, TypeError, DatasetError):
        return None
    return buffer.getvalue()


def _image_content(pairs: PairSet, index: int, image: object) -> bytes:
    if isinstance(image, np.ndarray):
        header = f"{image.dtype.str}{image.shape}".encode()
        return header + np.ascontiguousarray(image).tobytes()
    try:
        if isinstance(image, EncodedImage):
            return image.read()
        return Path(str(image)).read_bytes()
    except OSError as exc:
        raise DatasetError(
            f"Cannot read image {image} ({pairs.origin(index)}): {exc.strerror or exc}. Check "
            f"that the file exists and is readable."
        ) from exc
