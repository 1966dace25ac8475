"""Load a JSONL manifest of image-text pairs into a PairSet.

One JSON object per line: "image" (relative to the manifest), "text" or "texts", "label" and "slice".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.errors import DatasetError

_EXAMPLE = '{"image": "img/0001.jpg", "texts": ["a dog on grass", "a brown dog"], "label": "dog"}'
_SHOWN_CHARS = 60
_SHOWN_PATH_CHARS = 240
_INT64 = (-(2**63), 2**63 - 1)


def _cut(text: str, limit: int = _SHOWN_CHARS) -> str:
    """``text`` with its middle cut out past ``limit`` characters, so that a huge value cannot
    flood an error message (both ends stay: a path's file name is at its end)."""
    if len(text) <= limit:
        return text
    half = (limit - 3) // 2
    return f"{text[:half]}...{text[-half:]}"


def _short(value: Any) -> str:
    """A short prefix of ``repr(value)``."""
    return _cut(repr(value))


@dataclass(frozen=True)
class _Row:
    """One manifest line, checked: the image path and its captions and label as written."""

    line: int
    image: Path
    text: str
    text2: str | None
    label: int | str | None
    more: tuple[str, ...] = ()
    slice: str | None = None


def load_manifest(path: Path) -> PairSet:
    """Read the JSONL manifest at ``path``: one pair per non-blank line.

    ``"image"`` is a path relative to the manifest's folder (an absolute path is used as is).
    ``"text"`` is the caption; or ``"texts"``, a list whose first entry is the caption and whose
    second, when every line has one, becomes ``texts2``; every entry after the first is kept in
    ``extra_texts`` for retrieval. ``"label"`` (an int, or a string: strings are numbered in order
    of first appearance and become the class names of zero-shot classification) becomes ``groups``
    when every line has one. ``"slice"`` (a string, on every line or none) names the slice of the
    per-slice reports. Other keys are ignored. Every image must exist; it is not decoded here.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise DatasetError(
            f"Manifest {path} {what}. A manifest is a JSONL file with one object per line, e.g. "
            f"{_EXAMPLE}; check the path in the data set spec (jsonl:<file>)."
        )
    try:
        # Only "\n" ends a line (text mode turns "\r\n" into "\n"): splitlines() would also split
        # at U+2028, U+2029 and U+0085, which json.dumps(ensure_ascii=False) leaves in captions.
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"Cannot read manifest {path}: {exc}. Save it as UTF-8 text, one JSON object per line."
        ) from exc

    rows = [
        _parse_line(path, number, line)
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]
    if not rows:
        raise DatasetError(
            f"Manifest {path} has no pairs (it is empty or only blank lines). Add one JSON object "
            f"per line, e.g. {_EXAMPLE}."
        )
    texts2 = _all_or_none(path, rows, [row.text2 for row in rows], "a second caption")
    labels = _all_or_none(path, rows, [row.label for row in rows], 'a "label"')
    slices = _all_or_none(path, rows, [row.slice for row in rows], 'a "slice"')
    groups = None if labels is None else _number_labels(path, rows, labels)
    names = None
    if labels is not None and isinstance(labels[0], str):
        names = list(dict.fromkeys(labels))
    return PairSet(
        name=path.stem,
        images=[row.image for row in rows],
        texts=[row.text for row in rows],
        texts2=texts2,
        groups=groups,
        origins=[f"{path.name} line {row.line}" for row in rows],
        description=f"JSONL manifest {path} ({len(rows)} pairs)",
        extra_texts=[list(row.more) for row in rows] if any(row.more for row in rows) else None,
        class_names=names,
        slices=slices,
    )


def _parse_line(path: Path, number: int, line: str) -> _Row:
    """Check one non-blank manifest line and turn it into a ``_Row``."""
    where = f"Manifest {path} line {number}"
    try:
        record: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{where} is not valid JSON ({exc.msg} at column {exc.colno}). Each line must be one "
            f"complete JSON object, e.g. {_EXAMPLE}."
        ) from exc
    except (ValueError, RecursionError) as exc:
        # An integer of more than 4,300 digits (ValueError), or arrays / objects nested thousands
        # deep (RecursionError): valid JSON, but nothing a manifest line needs.
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise DatasetError(
            f"{where} cannot be read as JSON ({reason}). Each line must be one JSON object with "
            f"short values, e.g. {_EXAMPLE}."
        ) from exc
    if not isinstance(record, dict):
        raise DatasetError(
            f"{where} is a JSON {type(record).__name__}, not an object. Each line must be one JSON "
            f"object, e.g. {_EXAMPLE}."
        )

    image = record.get("image")
    if not isinstance(image, str) or not image:
        found = "is missing" if image is None else f"is {_short(image)}, not a non-empty string"
        raise DatasetError(
            f'{where}: "image" {found}. Give the image file as a path relative to the manifest\'s '
            f"folder, e.g. {_EXAMPLE}."
        )
    text, text2, more = _parse_texts(where, record)
    slice_name = record.get("slice")
    if slice_name is not None and not isinstance(slice_name, str):
        raise DatasetError(
            f'{where}: "slice" is {_short(slice_name)}; it must be a string naming the slice the '
            f"pair belongs to (or be left out on every line)."
        )

    label = record.get("label")
    # bool is an int subclass, but a true/false label is almost surely a mistake.
    if label is not None and (isinstance(label, bool) or not isinstance(label, (int, str))):
        raise DatasetError(
            f'{where}: "label" is {_short(label)}; it must be an integer or a string class name '
            f"(or be left out on every line)."
        )
    if isinstance(label, int) and not _INT64[0] <= label <= _INT64[1]:
        raise DatasetError(
            f'{where}: "label" is {_short(label)}, outside the 64-bit integer range; number the '
            f"classes with small integers, or name them with strings."
        )

    image_path = path.parent / image
    try:
        exists = image_path.is_file()
    except OSError as exc:  # a name too long for the file system, for one
        raise DatasetError(
            f"{where} names image {_cut(str(image_path), _SHOWN_PATH_CHARS)}, which cannot be looked up "
            f"({exc.strerror or exc}). Fix the path in the manifest."
        ) from exc
    if not exists:
        raise DatasetError(
            f"{where} names image {_cut(str(image_path), _SHOWN_PATH_CHARS)}, which does not exist. Image paths "
            f"are relative to the manifest's folder ({path.parent}); fix the path or add the file."
        )
    return _Row(
        line=number,
        image=image_path,
        text=text,
        text2=text2,
        label=label,
        more=more,
        slice=slice_name,
    )


def _parse_texts(where: str, record: dict[str, Any]) -> tuple[str, str | None, tuple[str, ...]]:
    """The caption, the optional second caption and every caption after the first."""
    if "text" in record and "texts" in record:
        raise DatasetError(
            f'{where} has both "text" and "texts"; give one: "text" for a single caption or '
            f'"texts" for a list whose first entry is the caption and second the extra caption.'
        )
    if "text" in record:
        text = record["text"]
        if not isinstance(text, str):
            raise DatasetError(
                f'{where}: "text" is {_short(text)}, not a string. Give the caption as a JSON '
                f'string, or a list of strings under "texts".'
            )
        return text, None, ()
    if "texts" in record:
        texts = record["texts"]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise DatasetError(
                f'{where}: "texts" is {_short(texts)}; it must be a non-empty list of strings '
                f"(the caption, then optionally a second caption)."
            )
        return texts[0], texts[1] if len(texts) > 1 else None, tuple(texts[1:])
    keys = _cut(", ".join(sorted(record))) or "none"
    raise DatasetError(
        f'{where} has no caption: it needs "text" (a string) or "texts" (a list of strings); its '
        f"keys are: {keys}."
    )


def _all_or_none(path: Path, rows: list[_Row], values: list[Any], what: str) -> list[Any] | None:
    """``values`` when every row has one, None when no row has one, else an error naming a gap."""
    missing = [row.line for row, value in zip(rows, values, strict=True) if value is None]
    if not missing:
        return values
    if len(missing) == len(rows):
        return None
    raise DatasetError(
        f"Manifest {path}: some lines have {what} but line {missing[0]} does not "
        f"({len(missing)} of {len(rows)} lines lack it). Give {what} on every line or on none."
    )


def _number_labels(path: Path, rows: list[_Row], labels: list[int | str]) -> list[int]:
    """Integer groups from labels: ints as given, strings numbered in order of first appearance."""
    kinds = {type(label) for label in labels}
    if len(kinds) > 1:
        # A string label could be numbered onto an int label's value and merge two classes.
        first_str = next(row.line for row in rows if isinstance(row.label, str))
        first_int = next(row.line for row in rows if isinstance(row.label, int))
        raise DatasetError(
            f"Manifest {path} mixes integer labels (line {first_int}) and string labels (line "
            f"{first_str}). Use one kind of label on every line."
        )
    numbers: dict[int | str, int] = {}
    groups: list[int] = []
    for label in labels:
        if isinstance(label, int):
            groups.append(label)
        else:
            groups.append(numbers.setdefault(label, len(numbers)))
    return groups
