"""Arrow columns as pairs, for the Parquet and ``datasets`` loaders: which columns hold the image,
the captions and the label, checked against the schema, and a table's sampled rows as Rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_modgap.data.rows import (
    IMAGE_COLUMNS,
    LABEL_COLUMNS,
    TEXT_COLUMNS,
    FieldNames,
    Row,
    image_from_value,
    pick_field,
)
from pytest_modgap.errors import DatasetError


def import_pyarrow(loader: str) -> Any:
    """The ``pyarrow`` module, or a DatasetError naming the extra that installs it."""
    try:
        import pyarrow
    except ImportError as exc:
        raise DatasetError(
            f"The {loader}: data set loader needs pyarrow, which is not installed. Install it with "
            f"pip install 'pytest-modgap[parquet]' (or pip install pyarrow)."
        ) from exc
    return pyarrow


def one_line(exc: BaseException) -> str:
    """An Arrow error's message on one line (pyarrow's span several, with blank ones)."""
    return " ".join(str(exc).split()) or type(exc).__name__


@dataclass(frozen=True)
class ArrowColumns:
    """The image, caption and (optional) label columns of an Arrow schema."""

    image: str
    text: str
    label: str | None

    @property
    def names(self) -> list[str]:
        return [self.image, self.text, *([self.label] if self.label else [])]


def pick_columns(schema: Any, fields: FieldNames, where: str) -> ArrowColumns:
    """The columns of ``schema`` (a ``pyarrow.Schema``) that hold each field (``fields`` or the
    defaults), with types that can hold them; a DatasetError naming ``where`` otherwise."""
    present = list(schema.names)
    image = pick_field(
        present, fields.image, IMAGE_COLUMNS, what="image", where=where, option="image"
    )
    text = pick_field(
        present, fields.text, TEXT_COLUMNS, what="caption", where=where, option="text"
    )
    label = pick_field(
        present,
        fields.label,
        LABEL_COLUMNS,
        what="label",
        where=where,
        option="label",
        required=False,
    )
    assert image is not None and text is not None  # required fields
    columns = ArrowColumns(image, text, label)
    _check_unique(present, columns, where)
    check_types(schema, columns, where)
    return columns


def _check_unique(present: Sequence[str], columns: ArrowColumns, where: str) -> None:
    """Each chosen column's name appears once: Arrow allows two columns of one name, and then
    neither can be picked by name (``schema.field`` raises KeyError). Duplicates among the other
    columns are never read and do no harm."""
    for name in columns.names:
        count = present.count(name)
        if count > 1:
            raise DatasetError(
                f"{where} has {count} columns named {name!r}, so the one that holds the pairs "
                f"cannot be told apart. Rename all but one of them, or name another column with "
                f"?image=, ?text= or ?label= in the data set spec."
            )


def check_types(schema: Any, columns: ArrowColumns, where: str) -> None:
    """Each chosen column has a type that can hold its field; a DatasetError naming it otherwise.

    Images: binary (the file's bytes), string (a path), or a struct with ``bytes`` / ``path``
    fields (the ``datasets`` Image feature). Captions: string, or a list of strings. Labels:
    integer or string (dictionary-encoded too).
    """
    import pyarrow as pa

    types = pa.types

    def plain(kind: Any) -> Any:
        return kind.value_type if types.is_dictionary(kind) else kind

    def is_text(kind: Any) -> bool:
        kind = plain(kind)
        return bool(types.is_string(kind) or types.is_large_string(kind))

    def is_bytes(kind: Any) -> bool:
        return bool(types.is_binary(kind) or types.is_large_binary(kind) or is_text(kind))

    def is_image(kind: Any) -> bool:
        if types.is_struct(kind):
            names = {kind.field(i).name for i in range(kind.num_fields)}
            return bool(names & {"bytes", "path"})
        return is_bytes(kind)

    def is_captions(kind: Any) -> bool:
        if types.is_list(kind) or types.is_large_list(kind) or types.is_fixed_size_list(kind):
            return is_text(kind.value_type)
        return is_text(kind)

    def is_label(kind: Any) -> bool:
        return bool(types.is_integer(plain(kind)) or is_text(kind))

    checks: list[tuple[str | None, str, Callable[[Any], bool], str]] = [
        (columns.image, "image", is_image, "the image file's bytes (binary) or its path (string)"),
        (columns.text, "caption", is_captions, "a string or a list of strings"),
        (columns.label, "label", is_label, "an integer or a string class name"),
    ]
    for name, what, fits, expected in checks:
        if name is None:
            continue
        kind = schema.field(name).type
        if not fits(kind):
            raise DatasetError(
                f"{where}: the {what} column {name!r} has type {kind}; it must hold {expected}. "
                f"Name another column with ?{'text' if what == 'caption' else what}=COLUMN, or "
                f"convert the column."
            )


def rows_from_table(
    table: Any,
    columns: ArrowColumns,
    folder: Path,
    origins: Sequence[str],
) -> list[Row]:
    """Rows of ``table`` (a ``pyarrow.Table`` or ``RecordBatch`` of the sampled rows only, in
    order), with ``origins[i]`` naming row i in messages; image paths are relative to ``folder``."""
    images = table.column(columns.image).to_pylist()
    texts = table.column(columns.text).to_pylist()
    labels = table.column(columns.label).to_pylist() if columns.label else [None] * len(origins)
    where = f"column {columns.image!r}"
    return [
        Row(image_from_value(image, folder, where, origin), text, label, origin)
        for image, text, label, origin in zip(images, texts, labels, origins, strict=True)
    ]
