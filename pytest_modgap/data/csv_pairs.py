"""CSV image-caption lists in clip_benchmark's / open_clip's layout (``csv:pairs.csv``): a header
line, ``filepath`` and ``title`` columns, tab or comma separated, image paths relative to the file.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.data.rows import (
    IMAGE_COLUMNS,
    LABEL_COLUMNS,
    TEXT_COLUMNS,
    FieldNames,
    Row,
    image_from_value,
    pairs_from_rows,
    pick_field,
)
from pytest_modgap.errors import DatasetError

CSV_IMAGE_COLUMNS = ("filepath", *IMAGE_COLUMNS)
CSV_TEXT_COLUMNS = ("title", *TEXT_COLUMNS)
_INTEGER = re.compile(r"[+-]?\d+")
_SHOWN = 60


def load_csv(path: Path, fields: FieldNames | None = None) -> PairSet:
    """Read the CSV at ``path``: one pair per row after the header.

    The separator is a tab when the header line holds one, else a comma. The image column is
    ``filepath`` (or ``?image=``), a path relative to the CSV's folder; the caption column
    ``title`` (or ``?text=``); an optional ``label`` / ``cls`` column (integers, or class names
    numbered by first appearance) becomes ``groups``. Images are neither opened nor checked here:
    the pipeline reads only the sampled ones, and a missing one is an error naming its line.
    """
    fields = fields or FieldNames()
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
            handle.seek(0)
            delimiter = "\t" if "\t" in first else ","
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, [])
            where = f"CSV file {path}"
            image = pick_field(
                header, fields.image, CSV_IMAGE_COLUMNS, what="image", where=where, option="image"
            )
            text = pick_field(
                header, fields.text, CSV_TEXT_COLUMNS, what="caption", where=where, option="text"
            )
            label = pick_field(
                header,
                fields.label,
                LABEL_COLUMNS,
                what="label",
                where=where,
                option="label",
                required=False,
            )
            assert image is not None and text is not None  # required fields
            columns = [header.index(image), header.index(text)]
            if label is not None:
                columns.append(header.index(label))
            rows = [
                _row(path, reader.line_num, cells, header, columns) for cells in reader if cells
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(
            f"Cannot read CSV file {path}: {exc}. Save it as UTF-8 text with a header line and "
            f"one row per pair (tab or comma separated, captions with the separator quoted)."
        ) from exc
    if not rows:
        raise DatasetError(
            f"CSV file {path} has a header but no rows. Add one row per image-caption pair."
        )
    return pairs_from_rows(
        rows,
        name=path.stem,
        description=f"CSV file {path} ({len(rows)} pairs)",
        labelled=label is not None,
    )


def _row(path: Path, line: int, cells: list[str], header: list[str], columns: list[int]) -> Row:
    origin = f"{path.name} line {line}"
    if len(cells) != len(header):
        raise DatasetError(
            f"CSV file {path} line {line} has {len(cells)} fields, but the header has "
            f"{len(header)} ({', '.join(header)}). Quote fields that contain the separator."
        )
    image = image_from_value(
        cells[columns[0]], path.parent, f"column {header[columns[0]]!r}", origin
    )
    label: int | str | None = None
    if len(columns) > 2:
        cell = cells[columns[2]].strip()
        label = _integer(cell, path, line) if _INTEGER.fullmatch(cell) else cell or None
    return Row(image, cells[columns[1]], label, origin)


def _integer(cell: str, path: Path, line: int) -> int:
    """An integer label cell as an int; Python refuses to parse more than 4,300 digits
    (ValueError), far past what fits a class label, so that is the same error ``pairs_from_rows``
    gives a label out of the 64-bit range."""
    try:
        return int(cell)
    except ValueError:
        raise DatasetError(
            f"CSV file {path} line {line}: the label {cell[:_SHOWN]}... has {len(cell)} "
            f"characters, which does not fit a 64-bit class label. Number the classes with small "
            f"integers, or write the label as a class name."
        ) from None
