"""WebDataset tar shards (``wds:shards/{000..099}.tar``) as a sampled data set: an index of member
offsets from the tar headers, then only the sampled members' captions and images are read.

A sample is a run of consecutive members that share a key (the member name up to the first dot of
its file name, as webdataset groups them): ``000042.jpg``, ``000042.txt``, ``000042.cls``.
"""

from __future__ import annotations

import json
import os
import re
from array import array
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pytest_modgap.data.indexed import IndexedPairs
from pytest_modgap.data.pairset import EncodedImage, PairSet
from pytest_modgap.data.patterns import expand_files
from pytest_modgap.data.rows import FieldNames, Row, pairs_from_rows
from pytest_modgap.data.tar_index import tar_members
from pytest_modgap.errors import DatasetError

IMAGE_KEYS = ("jpg", "jpeg", "png", "webp")
"""Member extensions that hold the image, first present wins (``?image=`` names another)."""
TEXT_KEYS = ("txt", "json")
"""Caption members: ``txt`` is the caption as UTF-8 text; ``json`` an object with ``"caption"``
(a string) or ``"captions"`` (a list: the caption, then the second caption)."""
LABEL_KEYS = ("cls",)
"""Label members: an integer (``"7"``), or a class name numbered by first appearance."""

# webdataset's own split (base_plus_ext): the key is the path up to the first dot of the file name.
_KEY_AND_EXTENSION = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
_NO_MEMBER = -1


@dataclass(frozen=True)
class TarMember(EncodedImage):
    """An image member of a shard: read with one positioned read when decoded or hashed."""

    shard: Path
    offset: int
    size: int
    member: str

    def read(self) -> bytes:
        with open(self.shard, "rb", buffering=0) as handle:
            data = os.pread(handle.fileno(), self.size, self.offset)
        if len(data) != self.size:
            raise DatasetError(
                f"WebDataset shard {self.shard} is shorter than when it was indexed: member "
                f"{self.member} needs {self.size} bytes at byte {self.offset}, but {len(data)} are "
                f"there. Was the shard rewritten during the run? Run again once it is complete."
            )
        return data

    def __str__(self) -> str:
        return f"member {self.member} of {self.shard}"


_IMAGE, _TEXT, _LABEL = 0, 1, 2
"""The member kinds of a sample, in the index's column order."""


class _Columns:
    """The index under construction, in typed arrays (8 bytes an offset, not a Python int object
    each): building the index takes no more memory than the index itself."""

    def __init__(self) -> None:
        self.shard = array("i")
        # Offset and size of the image, caption and label member; the extension's number of each.
        self.places = [array("q") for _ in range(6)]
        self.extensions = [array("H") for _ in range(3)]
        self.key_lengths = array("q")
        self.keys: list[str] = []
        self._shard_keys: list[str] = []

    def append(self, shard: int, key: str, picked: Sequence[tuple[int, int, int]]) -> None:
        self.shard.append(shard)
        self._shard_keys.append(key)
        for kind, (offset, size, extension) in enumerate(picked):
            self.places[2 * kind].append(offset)
            self.places[2 * kind + 1].append(size)
            self.extensions[kind].append(extension)

    def end_shard(self) -> None:
        """Join the shard's keys into one string: a str object per sample costs ~60 bytes."""
        self.keys.append("".join(self._shard_keys))
        self.key_lengths.extend(len(key) for key in self._shard_keys)
        self._shard_keys = []


def _set_name(pattern: str) -> str:
    """A short name for progress bars: the shards' folder (``wds:/data/laion-eval/{0..9}.tar``
    and ``wds:/data/laion-eval`` are both ``laion-eval``)."""
    path = Path(pattern).expanduser()
    return (path.name if path.is_dir() else path.parent.name) or "webdataset"


class WebDatasetPairs(IndexedPairs):
    """Pairs in local WebDataset ``.tar`` shards, indexed from the tar headers on construction.

    The index holds, per sample, the shard and the offset and size of its image, caption and label
    members (about 70 bytes a sample); every sample is checked to have an image and a caption, and
    labels to be on every sample or none. Rows are the samples in shard order (natural name order:
    ``shard-2`` before ``shard-10``), then in member order.
    """

    def __init__(self, pattern: str, fields: FieldNames | None = None) -> None:
        fields = fields or FieldNames()
        self.shards = expand_files(pattern, "wds", (".tar",))
        # Members are matched by their extension in lower case (0.PNG is a png member), so the
        # extensions the spec names are too: ?image=PNG finds 0.PNG and 0.png alike.
        self._image_keys = (fields.image.lower(),) if fields.image else IMAGE_KEYS
        self._text_keys = (fields.text.lower(),) if fields.text else TEXT_KEYS
        if fields.label == "":
            self._label_keys: tuple[str, ...] = ()
        else:
            self._label_keys = (fields.label.lower(),) if fields.label else LABEL_KEYS
        self._label_named = bool(fields.label)
        self._extensions: dict[str, int] = {}
        columns = _Columns()
        for number, shard in enumerate(self.shards):
            self._index_shard(number, shard, columns)
            columns.end_shard()
        # Views of the typed arrays, not copies: the index exists once, at its own size.
        self._shard_of = np.frombuffer(columns.shard, dtype=np.int32)
        self._places = [np.frombuffer(column, dtype=np.int64) for column in columns.places]
        self._extension_of = [
            np.frombuffer(column, dtype=np.uint16) for column in columns.extensions
        ]
        self._key_ends = np.cumsum(np.frombuffer(columns.key_lengths, dtype=np.int64))
        self._keys = "".join(columns.keys)
        self._extension_names = list(self._extensions)
        if len(self) == 0:
            raise DatasetError(
                f"Data set spec wds:{pattern}: its {len(self.shards)} shard(s) hold no samples. "
                f"Point the spec at shards with image and caption members (000000.jpg, "
                f"000000.txt, ...)."
            )
        self._labelled = self._check_labels(pattern)
        super().__init__(
            name=_set_name(pattern),
            description=(
                f"WebDataset shards {pattern} ({len(self.shards)} shards, {len(self)} pairs)"
            ),
        )

    def __len__(self) -> int:
        return int(self._shard_of.shape[0])

    def _index_shard(self, number: int, shard: Path, columns: _Columns) -> None:
        key: str | None = None
        members: dict[str, tuple[int, int, str]] = {}
        for name, offset, size in tar_members(shard):
            match = _KEY_AND_EXTENSION.match(name)
            if match is None:
                continue  # no extension, or a __meta__-style file: not part of a sample
            member_key, extension = match.group(1), match.group(2)
            if member_key != key:
                if key is not None:
                    self._finish_sample(number, shard, key, members, columns)
                key, members = member_key, {}
            lowered = extension.lower()
            if lowered in members:
                raise DatasetError(
                    f"WebDataset shard {shard}: sample {key} has two .{lowered} members "
                    f"({key}.{members[lowered][2]} and {name}). Each sample holds one member per "
                    f"extension; remove the duplicate or give it its own key."
                )
            members[lowered] = (offset, size, extension)
        if key is not None:
            self._finish_sample(number, shard, key, members, columns)

    def _finish_sample(
        self,
        number: int,
        shard: Path,
        key: str,
        members: dict[str, tuple[int, int, str]],
        columns: _Columns,
    ) -> None:
        image = self._pick(members, self._image_keys)
        text = self._pick(members, self._text_keys)
        label = self._pick(members, self._label_keys)
        if image is None or text is None:
            has = ", ".join(f".{written}" for _, _, written in members.values())
            if image is None:
                missing = f"image member ({' or '.join('.' + k for k in self._image_keys)})"
                option = "image"
            else:
                missing = f"caption member ({' or '.join('.' + k for k in self._text_keys)})"
                option = "text"
            raise DatasetError(
                f"WebDataset shard {shard}: sample {key} has no {missing}; it has {has}. Add the "
                f"missing member, remove the sample from the shard, or name the member's "
                f"extension with ?{option}=EXTENSION at the end of the data set spec."
            )
        if label is None and self._label_named:
            raise DatasetError(
                f"WebDataset shard {shard}: sample {key} has no .{self._label_keys[0]} member, "
                f"which ?label={self._label_keys[0]} asks every sample for. Add it, or leave "
                f"?label= out."
            )
        absent = (_NO_MEMBER, 0, 0)
        columns.append(number, key, [image, text, label or absent])

    def _pick(
        self, members: dict[str, tuple[int, int, str]], keys: Sequence[str]
    ) -> tuple[int, int, int] | None:
        """(offset, size, extension number) of the first of ``keys`` among ``members``."""
        for key in keys:
            if key in members:
                offset, size, extension = members[key]
                number = self._extensions.setdefault(extension, len(self._extensions))
                return offset, size, number
        return None

    def _check_labels(self, pattern: str) -> bool:
        """Whether the samples have labels: on every sample or on none (as in a JSONL manifest),
        decided from the index."""
        has_label = self._places[2 * _LABEL] != _NO_MEMBER
        if has_label.all() or not has_label.any():
            return bool(has_label.all())
        row = int(np.argmin(has_label))
        raise DatasetError(
            f"Data set spec wds:{pattern}: some samples have a .cls label but {self._origin(row)} "
            f"does not ({int((~has_label).sum())} of {len(has_label)} samples lack one). Give "
            f"every sample a label or none (?label= ignores them)."
        )

    def _key(self, row: int) -> str:
        start = int(self._key_ends[row - 1]) if row else 0
        return self._keys[start : int(self._key_ends[row])]

    def _member(self, row: int, kind: int) -> str:
        extension = self._extension_names[int(self._extension_of[kind][row])]
        return f"{self._key(row)}.{extension}"

    def _origin(self, row: int) -> str:
        return f"{self.shards[int(self._shard_of[row])]} sample {self._key(row)}"

    def read_rows(self, rows: Sequence[int]) -> PairSet:
        """The captions and labels of ``rows`` read now (one positioned read each); images as
        ``TarMember`` references that the pipeline reads when it decodes them."""
        records: list[Row] = []
        with ExitStack() as stack:
            handles: dict[int, int] = {}
            for row in rows:
                shard_number = int(self._shard_of[row])
                if shard_number not in handles:
                    handle = stack.enter_context(open(self.shards[shard_number], "rb", buffering=0))
                    handles[shard_number] = handle.fileno()
                fd = handles[shard_number]
                offset, size = self._place(row, _IMAGE)
                shard = self.shards[shard_number]
                image = TarMember(shard, offset, size, self._member(row, _IMAGE))
                captions = self._captions(fd, row)
                label = self._label(fd, row) if self._labelled else None
                records.append(Row(image, captions, label, self._origin(row)))
        return pairs_from_rows(
            records, name=self.name, description=self.description, labelled=self._labelled
        )

    def _place(self, row: int, kind: int) -> tuple[int, int]:
        """Offset and size of the ``kind`` member of ``row``."""
        return int(self._places[2 * kind][row]), int(self._places[2 * kind + 1][row])

    def _bytes(self, fd: int, row: int, kind: int) -> bytes:
        offset, size = self._place(row, kind)
        data = os.pread(fd, size, offset)
        if len(data) != size:
            raise DatasetError(
                f"WebDataset shard {self.shards[int(self._shard_of[row])]} is shorter than when it "
                f"was indexed (member {self._member(row, kind)}). Was the shard rewritten during "
                f"the run? Run again once it is complete."
            )
        return data

    def _decoded(self, fd: int, row: int, kind: int) -> str:
        data = self._bytes(fd, row, kind)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(
                f"WebDataset shard {self.shards[int(self._shard_of[row])]}: member "
                f"{self._member(row, kind)} is not UTF-8 text ({exc.reason} at byte "
                f"{exc.start}). Write captions and labels as UTF-8."
            ) from exc

    def _captions(self, fd: int, row: int) -> Any:
        text = self._decoded(fd, row, _TEXT)
        member = self._member(row, _TEXT)
        if not member.lower().endswith(".json"):
            return text
        where = f"WebDataset shard {self.shards[int(self._shard_of[row])]}: member {member}"
        try:
            record = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise DatasetError(
                f'{where} is not valid JSON ({exc}). It must be an object with "caption" (a '
                f'string) or "captions" (a list of strings).'
            ) from exc
        if not isinstance(record, dict) or ("caption" in record) == ("captions" in record):
            raise DatasetError(
                f'{where} must be a JSON object with exactly one of "caption" (a string) or '
                f'"captions" (a list: the caption, then optionally a second caption); it is '
                f"{text[:60]!r}."
            )
        return record["caption"] if "caption" in record else record["captions"]

    def _label(self, fd: int, row: int) -> int | str:
        text = self._decoded(fd, row, _LABEL).strip()
        try:
            return int(text)
        except ValueError:
            return text
