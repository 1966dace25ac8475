"""The PairSet: matched image-text pairs, the one thing every data loader returns.

Images stay unloaded (a file path, or a decoded HxWx3 uint8 array for generated / pickled data sets) so
the embedding pipeline decides where and how to decode them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pytest_modgap.errors import DatasetError

ImageSource = Path | np.ndarray
"""A path to an image file, or an HxWx3 uint8 RGB array."""


@dataclass(frozen=True)
class PairSet:
    """Matched pairs: ``images[i]`` is described by ``texts[i]`` (and ``texts2[i]`` when given).

    ``groups[i]`` is a class label: image-text pairs with the same label are not negatives.
    ``origins[i]`` says where pair i came from ("captions.txt line 12"), for error messages.
    """

    name: str
    images: Sequence[ImageSource]
    texts: Sequence[str]
    texts2: Sequence[str] | None = None
    groups: Sequence[int] | None = None
    origins: Sequence[str] | None = None
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        n = len(self.images)
        for label, column in (
            ("texts", self.texts),
            ("texts2", self.texts2),
            ("groups", self.groups),
            ("origins", self.origins),
        ):
            if column is not None and len(column) != n:
                raise DatasetError(
                    f"Data set {self.name!r}: {label} has {len(column)} entries but there are {n} "
                    f"images; every pair needs exactly one of each."
                )
        if n < 2:
            raise DatasetError(
                f"Data set {self.name!r} has {n} image-text pair(s); the metrics compare pairs with "
                f"each other and need at least 2. Point the data set spec at a larger set."
            )

    def __len__(self) -> int:
        return len(self.images)

    def origin(self, index: int) -> str:
        """Where pair ``index`` came from, for error messages."""
        if self.origins is not None:
            return self.origins[index]
        return f"{self.name} pair {index}"

    def subset(self, indices: Sequence[int]) -> PairSet:
        """The pairs at ``indices``, in that order."""
        idx = list(indices)
        return PairSet(
            name=self.name,
            images=[self.images[i] for i in idx],
            texts=[self.texts[i] for i in idx],
            texts2=None if self.texts2 is None else [self.texts2[i] for i in idx],
            groups=None if self.groups is None else [int(self.groups[i]) for i in idx],
            origins=None if self.origins is None else [self.origins[i] for i in idx],
            description=self.description,
        )

    def sample(self, samples: int | None, seed: int = 0) -> PairSet:
        """``samples`` pairs drawn at random without replacement with ``seed`` (the paper: 1,000).

        ``None``, or a count at least the size of the set, keeps every pair in its original order.
        """
        if samples is None or samples >= len(self):
            return self
        if samples < 2:
            raise DatasetError(
                f"samples={samples} for data set {self.name!r}: the metrics need at least 2 pairs."
            )
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(len(self), size=samples, replace=False))
        return self.subset(chosen.tolist())

    def fingerprint(self) -> str:
        """A SHA-256 over the content of every pair (image bytes, texts, groups), for cache keys."""
        digest = hashlib.sha256()
        for i, image in enumerate(self.images):
            if isinstance(image, np.ndarray):
                digest.update(b"A")
                digest.update(str(image.shape).encode())
                digest.update(np.ascontiguousarray(image).tobytes())
            else:
                digest.update(b"F")
                try:
                    digest.update(Path(image).read_bytes())
                except OSError as exc:
                    raise DatasetError(
                        f"Cannot read image {image} ({self.origin(i)}): {exc.strerror or exc}. "
                        f"Check that the file exists and is readable."
                    ) from exc
            digest.update(b"\x00" + self.texts[i].encode())
            if self.texts2 is not None:
                digest.update(b"\x01" + self.texts2[i].encode())
            if self.groups is not None:
                digest.update(b"\x02" + str(int(self.groups[i])).encode())
        return digest.hexdigest()
