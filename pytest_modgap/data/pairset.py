"""The PairSet: matched image-text pairs, the one thing every data loader returns.

Images stay unloaded (a file path, an image file's bytes inside a shard or a Parquet / Arrow row,
or a decoded HxWx3 uint8 array for generated / pickled data sets) so the embedding pipeline decides
where and how to decode them.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pytest_modgap.errors import DatasetError


class EncodedImage(ABC):
    """An image file (JPEG, PNG, ...) stored inside a container: a tar shard's member, a Parquet or
    Arrow row. Its bytes are read when the pipeline or the fingerprint asks for them, so a sampled
    PairSet of a large set holds small references, not pixels."""

    @abstractmethod
    def read(self) -> bytes:
        """The image file's bytes; an OSError (or a DatasetError naming the container) when they
        cannot be read."""

    @abstractmethod
    def __str__(self) -> str:
        """Where the bytes are, for error messages ("member 0001.jpg of shards/000.tar")."""


@dataclass(frozen=True)
class InlineImage(EncodedImage):
    """An image file's bytes already in memory: the sampled rows of a Parquet file or an Arrow
    table, read once in a column-at-a-time pass and held only for the sampled pairs."""

    data: bytes = field(repr=False)
    where: str

    def read(self) -> bytes:
        return self.data

    def __str__(self) -> str:
        return self.where


ImageSource = Path | np.ndarray | EncodedImage
"""A path to an image file, an image file's bytes in a container, or an HxWx3 uint8 RGB array."""


def sample_rows(n: int, samples: int | None, seed: int, source: str) -> list[int] | None:
    """The sorted rows of ``samples`` of ``n`` pairs drawn without replacement with ``seed``.

    None means every pair, in order: for ``samples=None`` and for ``samples == n``. Asking for more
    pairs than ``source`` (e.g. "data set 'coco'") holds is an error, not a silent clamp: the
    report would record the larger count, and a gate asked for 1,000 pairs must not pass on 200.
    ``seed`` must be a non-negative integer (numpy's generator takes any size, but no sign).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DatasetError(
            f"seed={seed!r} for {source}: the seed that draws the sample must be a non-negative "
            f"integer, e.g. 0 (the seed= of measure(), --modgap-seed, or the modgap command's "
            f"--seed)."
        )
    if samples is None:
        return None
    if samples < 2:
        raise DatasetError(
            f"samples={samples} for {source}: the metrics compare pairs with each other and need "
            f"at least 2."
        )
    if samples > n:
        raise DatasetError(
            f"samples={samples} asks for more pairs than {source} holds ({n}). Ask for at most "
            f"{n} (the samples= of the modgap marker or of measure(), --modgap-samples, or the "
            f"modgap command's --samples), or leave samples unset (--samples all) to measure "
            f"every pair."
        )
    if samples == n:
        return None
    chosen = np.sort(np.random.default_rng(seed).choice(n, size=samples, replace=False))
    return [int(row) for row in chosen]


def _surrogate_at(text: str) -> int | None:
    """The index of the first lone surrogate in ``text`` (None when UTF-8 can encode it all)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


FINGERPRINT_SCHEME = b"pytest-modgap pairs 2\n"
"""The first bytes ``PairSet.fingerprint`` hashes. Scheme 1 (fields without lengths) began with an
image's ``A`` or ``F``, so no scheme-2 input equals a scheme-1 input: a cache entry keyed by an old
fingerprint can only be served for a new one through a SHA-256 collision. Change it with the scheme."""


def _hash_field(digest: hashlib._Hash, tag: bytes, data: bytes) -> None:
    """``tag``, the length of ``data`` and ``data``: a stream of these reads back one way only."""
    digest.update(b"%s%d:" % (tag, len(data)))
    digest.update(data)


@dataclass(frozen=True)
class PairSet:
    """Matched pairs: ``images[i]`` is described by ``texts[i]`` (and ``texts2[i]`` when given).

    ``groups[i]`` is a class label: image-text pairs with the same label are not negatives.
    ``origins[i]`` says where pair i came from ("captions.txt line 12"), for error messages.
    ``extra_texts[i]``: image i's captions after ``texts[i]`` (Flickr and MSCOCO have five per
    image; retrieval ranks them all). ``class_names[g]`` names group g, for zero-shot
    classification; ``class_prompts`` says that ``texts`` are prompts made from those names, shared
    by every image of a class (so retrieval over them means nothing and is left out).
    ``slices[i]``: the slice pair i belongs to (a manifest's ``slice``), for per-slice reports.
    ``class_texts``: the zero-shot prompts to embed with the pairs, every template for every class
    name, class-major (``data.templates.with_class_texts`` fills it).
    """

    name: str
    images: Sequence[ImageSource]
    texts: Sequence[str]
    texts2: Sequence[str] | None = None
    groups: Sequence[int] | None = None
    origins: Sequence[str] | None = None
    description: str = field(default="", compare=False)
    extra_texts: Sequence[Sequence[str]] | None = None
    class_names: Sequence[str] | None = None
    class_prompts: bool = False
    slices: Sequence[str] | None = None
    class_texts: Sequence[str] | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        for label, column in (
            ("texts", self.texts),
            ("texts2", self.texts2),
            ("groups", self.groups),
            ("origins", self.origins),
            ("extra_texts", self.extra_texts),
            ("slices", self.slices),
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
        for label, captions in (("texts", self.texts), ("texts2", self.texts2)):
            if captions is not None:
                self._check_captions(label, captions)
        if self.extra_texts is not None:
            self._check_extra_texts(self.extra_texts)
        if self.class_names is not None:
            self._check_class_names(self.class_names)

    def _check_extra_texts(self, extra_texts: Sequence[Sequence[str]]) -> None:
        """Each image's further captions are a list of strings UTF-8 can encode (as ``texts``)."""
        for index, captions in enumerate(extra_texts):
            if isinstance(captions, str) or not all(isinstance(text, str) for text in captions):
                raise DatasetError(
                    f"Data set {self.name!r}: the further captions of {self.origin(index)} are "
                    f"{captions!r:.60}, not a list of strings."
                )
            try:
                "\n".join(captions).encode("utf-8")
            except UnicodeEncodeError:
                bad = next(text for text in captions if _surrogate_at(text) is not None)
                raise DatasetError(
                    f"Data set {self.name!r}: a further caption of {self.origin(index)} holds a "
                    f"lone UTF-16 surrogate ({bad!r:.60}), which tokenizers cannot encode. Fix "
                    f"that caption in the file or leave it out."
                ) from None

    def _check_class_names(self, class_names: Sequence[str]) -> None:
        """Class names need groups that index them."""
        if self.groups is None:
            raise DatasetError(
                f"Data set {self.name!r}: has class names but no class label per pair (groups)."
            )
        labels = [int(group) for group in self.groups]
        if labels and (min(labels) < 0 or max(labels) >= len(class_names)):
            raise DatasetError(
                f"Data set {self.name!r}: class labels run from {min(labels)} to {max(labels)} "
                f"but there are {len(class_names)} class names; each label must index one."
            )

    def _check_captions(self, label: str, captions: Sequence[str]) -> None:
        """Every caption is a str that UTF-8 can encode, or a DatasetError naming where it is from.

        ``json`` accepts a lone UTF-16 surrogate ("\\ud800", half of an emoji split by some tool),
        but no tokenizer and no cache key can encode one: refusing it here, where every loader's
        pairs pass, names the caption's origin instead of failing deep inside a tokenizer.
        One join and one encode: O(total caption length).
        """
        try:
            "\n".join(captions).encode("utf-8")
            return
        except TypeError:
            index = next(i for i, text in enumerate(captions) if not isinstance(text, str))
            problem = f"is {type(captions[index]).__name__} {captions[index]!r:.60}, not a string"
        except UnicodeEncodeError:
            index, at = next(
                (i, at)
                for i, text in enumerate(captions)
                if (at := _surrogate_at(text)) is not None
            )
            problem = (
                f"holds a lone UTF-16 surrogate ({captions[index][at]!r} at character {at}), "
                f"which is not a character: tokenizers cannot encode it (a JSON escape such as "
                f'"\\ud83d" whose other half was cut off or dropped)'
            )
        source = f" ({self.description})" if self.description else ""
        raise DatasetError(
            f"Data set {self.name!r}{source}: the {'second ' if label == 'texts2' else ''}caption "
            f"of {self.origin(index)} {problem}. Fix that caption in the file (write the whole "
            f"character, or remove it) or leave the pair out."
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
            extra_texts=None if self.extra_texts is None else [self.extra_texts[i] for i in idx],
            class_names=self.class_names,
            class_prompts=self.class_prompts,
            slices=None if self.slices is None else [self.slices[i] for i in idx],
            class_texts=self.class_texts,
        )

    def sample(self, samples: int | None, seed: int = 0) -> PairSet:
        """``samples`` pairs drawn at random without replacement with ``seed`` (the paper: 1,000).

        ``None``, or exactly the size of the set, keeps every pair in its original order; more
        pairs than the set holds is a DatasetError (see ``sample_rows``).
        """
        rows = sample_rows(len(self), samples, seed, f"data set {self.name!r}")
        return self if rows is None else self.subset(rows)

    def fingerprint(self) -> str:
        """A SHA-256 over the content of every pair (image bytes, texts, groups), for cache keys.

        Every field is hashed with its length (``_hash_field``), so no caption can end in bytes
        that read as the next field: a caption ``"a\\x021"`` without labels once hashed like ``"a"``
        labelled 1, and the cache served one set's vectors for the other. An image file and the
        same bytes inside a shard or a Parquet row hash alike: the same pairs in any format share
        cache entries, and a member rewritten in place (same size, mtime kept) is a new key. Only
        this set's pairs are read: after ``sample`` that is the sampled members, never the whole
        set.
        """
        digest = hashlib.sha256(FINGERPRINT_SCHEME)
        for i, image in enumerate(self.images):
            if isinstance(image, np.ndarray):
                _hash_field(digest, b"S", f"{image.dtype.str}{image.shape}".encode())
                _hash_field(digest, b"A", np.ascontiguousarray(image).tobytes())
            else:
                _hash_field(digest, b"F", self._image_bytes(i, image))
            _hash_field(digest, b"T", self.texts[i].encode())
            if self.texts2 is not None:
                _hash_field(digest, b"U", self.texts2[i].encode())
            if self.groups is not None:
                _hash_field(digest, b"G", str(int(self.groups[i])).encode())
            if self.extra_texts is not None:
                for text in self.extra_texts[i]:
                    _hash_field(digest, b"E", text.encode())
        for text in self.class_texts or ():
            _hash_field(digest, b"C", text.encode())
        return digest.hexdigest()

    def _image_bytes(self, index: int, image: Path | EncodedImage) -> bytes:
        """The bytes of image ``index``'s file, or a DatasetError naming it and its origin."""
        try:
            return image.read() if isinstance(image, EncodedImage) else Path(image).read_bytes()
        except OSError as exc:
            raise DatasetError(
                f"Cannot read image {image} ({self.origin(index)}): {exc.strerror or exc}. "
                f"Check that the file exists and is readable."
            ) from exc
