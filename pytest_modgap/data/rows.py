"""Rows read from a table or a shard (image, captions, label, origin) into a PairSet, and which
column or member key holds each field: rules shared by the Parquet, datasets, CSV and shard loaders.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_modgap.data.pairset import ImageSource, InlineImage, PairSet
from pytest_modgap.errors import DatasetError

IMAGE_COLUMNS = ("image", "jpg", "png", "img", "image_bytes")
"""Default image columns of tabular formats, first present wins (``?image=`` overrides)."""
TEXT_COLUMNS = ("caption", "captions", "text", "txt")
"""Default caption columns: a string, or a list whose first entry is the caption and second the
second caption (``?text=`` overrides)."""
LABEL_COLUMNS = ("label", "cls")
"""Default label columns, optional (``?label=`` names one; ``?label=`` left empty ignores them)."""

_SHOWN = 60
_LABEL_RANGE = (-(2**63), 2**63 - 1)
"""Integer labels become int64 groups: a label outside this range is refused where it is read."""


@dataclass(frozen=True)
class FieldNames:
    """The column (or shard member key) of each field that a spec's ``?image=&text=&label=`` names.

    None: the first of the loader's defaults that is present. ``label=""``: no labels at all, even
    when a default label column exists (a column named ``label`` that is not a class).
    """

    image: str | None = None
    text: str | None = None
    label: str | None = None


def pick_field(
    present: Sequence[str],
    chosen: str | None,
    defaults: Sequence[str],
    *,
    what: str,
    where: str,
    option: str,
    required: bool = True,
) -> str | None:
    """The column of ``present`` that holds ``what``: ``chosen`` (which must be there), else the
    first default present. None for an optional field that is absent or switched off (``""``).

    A missing column is a DatasetError naming ``where``, the columns it has and the spec option
    that picks another one.
    """
    if chosen == "" and not required:
        return None
    names = ", ".join(present) or "none"
    if chosen:
        if chosen in present:
            return chosen
        raise DatasetError(
            f"{where} has no {what} column {chosen!r} (named by ?{option}={chosen} in the data set "
            f"spec); its columns are: {names}. Name one of them with ?{option}=COLUMN."
        )
    found = next((name for name in defaults if name in present), None)
    if found is None and required:
        raise DatasetError(
            f"{where} has no {what} column: none of {', '.join(defaults)} is present; its columns "
            f"are: {names}. Name the {what} column at the end of the data set spec with "
            f"?{option}=COLUMN."
        )
    return found


def image_from_value(value: Any, folder: Path, where: str, origin: str) -> ImageSource:
    """A table cell that holds an image: the file's bytes, a path relative to ``folder`` (the
    table file's folder; absolute paths are kept), or a ``{"bytes", "path"}`` record as the
    ``datasets`` Image feature stores it (bytes first). ``where`` names the column for messages."""
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        value = data if data is not None else path
    if isinstance(value, (bytes, bytearray, memoryview)):
        return InlineImage(bytes(value), f"{where} of {origin}")
    if isinstance(value, str) and value and "\0" not in value:
        return folder / Path(value).expanduser()
    if value is None:
        found = "is missing (null)"
    elif isinstance(value, str) and "\0" in value:
        # No file system path holds a NUL byte; opening one raises ValueError, not OSError.
        found = f"is {repr(value)[:_SHOWN]}, a path with a NUL byte, which no file can have"
    else:
        found = f"is {repr(value)[:_SHOWN]}"
    raise DatasetError(
        f"The image ({where}) of {origin} {found}. An image cell holds the image file's bytes, or "
        f"its path relative to the data file's folder; fix that row or leave it out."
    )


@dataclass(frozen=True)
class Row:
    """One pair as read: its image, its captions as stored (a string, or a list whose first entry
    is the caption and second the second caption), its label as stored and where it came from."""

    image: ImageSource
    captions: Any
    label: Any
    origin: str


def pairs_from_rows(rows: Sequence[Row], *, name: str, description: str, labelled: bool) -> PairSet:
    """A PairSet of ``rows`` in their order, with the JSONL manifest's rules.

    The first caption of each row is ``texts``; ``texts2`` holds the second captions when every row
    has one (some but not all is an error naming a row without). With ``labelled``, every row's
    label becomes ``groups``: ints as stored, strings numbered in order of first appearance.
    """
    texts: list[str] = []
    seconds: list[str | None] = []
    further: list[list[str]] = []
    for row in rows:
        first, second = _captions(row)
        texts.append(first)
        seconds.append(second)
        further.append([] if isinstance(row.captions, str) else list(row.captions[1:]))
    texts2 = _all_or_none(rows, seconds, "a second caption", description)
    groups = _groups(rows, description) if labelled else None
    names = None
    if groups is not None and rows and isinstance(rows[0].label, str):
        # String labels are the class names, numbered by first appearance (as ``_groups`` does).
        names = list(dict.fromkeys(str(row.label) for row in rows))
    return PairSet(
        name=name,
        images=[row.image for row in rows],
        texts=texts,
        texts2=texts2,
        groups=groups,
        origins=[row.origin for row in rows],
        description=description,
        extra_texts=further if any(further) else None,
        class_names=names,
    )


def _captions(row: Row) -> tuple[str, str | None]:
    """The caption and the optional second caption of ``row``."""
    value = row.captions
    if isinstance(value, str):
        return value, None
    if isinstance(value, (list, tuple)) and value and all(isinstance(t, str) for t in value):
        return value[0], value[1] if len(value) > 1 else None
    found = "is missing (null)" if value is None else f"is {repr(value)[:_SHOWN]}"
    raise DatasetError(
        f"The caption of {row.origin} {found}; a caption must be a string, or a non-empty list of "
        f"strings (the caption, then optionally a second caption). Fix that row or leave it out."
    )


def _all_or_none(
    rows: Sequence[Row], values: list[str | None], what: str, description: str
) -> list[str] | None:
    """``values`` when every row has one, None when none has, else an error naming a row without."""
    missing = [i for i, value in enumerate(values) if value is None]
    if len(missing) == len(values):
        return None
    if missing:
        having = next(i for i, value in enumerate(values) if value is not None)
        raise DatasetError(
            f"{description}: {rows[having].origin} has {what} but {rows[missing[0]].origin} does "
            f"not ({len(missing)} of {len(rows)} pairs read lack it). Give {what} to every pair or "
            f"to none."
        )
    return [value for value in values if value is not None]


def _groups(rows: Sequence[Row], description: str) -> list[int]:
    """Integer groups from the rows' labels: ints as stored, names numbered by first appearance."""
    labels = [row.label for row in rows]
    for row in rows:
        label = row.label
        if label is None or isinstance(label, bool) or not isinstance(label, (int, str)):
            found = "is missing (null)" if label is None else f"is {repr(label)[:_SHOWN]}"
            raise DatasetError(
                f"{description}: the label of {row.origin} {found}; a label must be an integer or "
                f"a string class name on every pair (or switch labels off with ?label= in the data "
                f"set spec)."
            )
        if isinstance(label, int) and not _LABEL_RANGE[0] <= label <= _LABEL_RANGE[1]:
            raise DatasetError(
                f"{description}: the label of {row.origin} is {str(label)[:_SHOWN]}, which does not "
                f"fit a 64-bit class label ({_LABEL_RANGE[0]} to {_LABEL_RANGE[1]}). Number the "
                f"classes with small integers, or write the label as a class name string."
            )
    kinds = {type(label) for label in labels}
    if len(kinds) > 1:
        first_int = next(row.origin for row in rows if isinstance(row.label, int))
        first_str = next(row.origin for row in rows if isinstance(row.label, str))
        raise DatasetError(
            f"{description} mixes integer labels ({first_int}) and string labels ({first_str}). "
            f"Use one kind of label on every pair."
        )
    return _numbered(labels)


def _numbered(labels: Iterable[int | str]) -> list[int]:
    numbers: dict[int | str, int] = {}
    return [
        label if isinstance(label, int) else numbers.setdefault(label, len(numbers))
        for label in labels
    ]
