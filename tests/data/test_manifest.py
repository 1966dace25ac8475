"""Tests of the JSONL manifest loader: the happy paths and every error a user can cause."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_modgap.data.manifest import load_manifest
from pytest_modgap.errors import DatasetError

from .layouts import write_image


def write_manifest(root: Path, records: list[Any], *, images: int = 3) -> Path:
    """``root/m.jsonl`` with one line per record (str records are written verbatim)."""
    for i in range(images):
        write_image(root / "img" / f"{i}.png", i)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path = root / "m.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_text_and_paths_relative_to_manifest(tmp_path: Path) -> None:
    path = write_manifest(
        tmp_path,
        [{"image": "img/0.png", "text": "zero"}, "", "   ", {"image": "img/1.png", "text": "one"}],
    )
    pairs = load_manifest(path)
    assert list(pairs.images) == [tmp_path / "img" / "0.png", tmp_path / "img" / "1.png"]
    assert list(pairs.texts) == ["zero", "one"]
    assert pairs.texts2 is None and pairs.groups is None
    # Blank lines are skipped but still counted, so origins point at the real line.
    assert list(pairs.origins or []) == ["m.jsonl line 1", "m.jsonl line 4"]


def test_texts_list_gives_text2_and_string_labels_number_by_first_appearance(
    tmp_path: Path,
) -> None:
    path = write_manifest(
        tmp_path,
        [
            {"image": "img/0.png", "texts": ["a", "a2", "a3"], "label": "dog"},
            {"image": "img/1.png", "texts": ["b", "b2"], "label": "cat"},
            {"image": "img/2.png", "texts": ["c", "c2"], "label": "dog", "extra": 1},
        ],
    )
    pairs = load_manifest(path)
    assert list(pairs.texts) == ["a", "b", "c"]
    assert list(pairs.texts2 or []) == ["a2", "b2", "c2"]
    assert list(pairs.groups or []) == [0, 1, 0]


def test_integer_labels_are_kept(tmp_path: Path) -> None:
    path = write_manifest(
        tmp_path,
        [
            {"image": "img/0.png", "text": "a", "label": 7},
            {"image": "img/1.png", "text": "b", "label": 3},
        ],
    )
    assert list(load_manifest(path).groups or []) == [7, 3]


def test_absolute_image_path_is_used_as_is(tmp_path: Path) -> None:
    other = write_image(tmp_path / "elsewhere" / "x.jpg", 9)
    path = write_manifest(
        tmp_path / "m", [{"image": str(other), "text": "x"}, {"image": "img/0.png", "text": "y"}]
    )
    assert load_manifest(path).images[0] == other


def error_for(tmp_path: Path, records: list[Any]) -> str:
    with pytest.raises(DatasetError) as info:
        load_manifest(write_manifest(tmp_path, records))
    message = str(info.value)
    assert str(tmp_path / "m.jsonl") in message, "errors must name the manifest"
    return message


GOOD = {"image": "img/0.png", "text": "fine"}


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ('{"image": "img/1.png", "text": ', "not valid JSON"),
        ("[1, 2]", "not an object"),
        ({"text": "no image"}, '"image" is missing'),
        ({"image": 5, "text": "x"}, "not a non-empty string"),
        ({"image": "img/1.png"}, "has no caption"),
        ({"image": "img/1.png", "text": ["x"]}, '"text" is'),
        ({"image": "img/1.png", "texts": []}, "non-empty list of strings"),
        ({"image": "img/1.png", "texts": ["a", 3]}, "non-empty list of strings"),
        ({"image": "img/1.png", "text": "a", "texts": ["b"]}, 'both "text" and "texts"'),
        ({"image": "img/1.png", "text": "a", "label": 1.5}, '"label" is 1.5'),
        ({"image": "img/1.png", "text": "a", "label": True}, '"label" is True'),
        ({"image": "img/missing.png", "text": "a"}, "missing.png, which does not exist"),
    ],
)
def test_bad_line_names_line_number(tmp_path: Path, bad_line: Any, expected: str) -> None:
    message = error_for(tmp_path, [GOOD, bad_line])
    assert "line 2" in message
    assert expected in message


def test_second_caption_on_some_lines_only_names_a_line_without(tmp_path: Path) -> None:
    message = error_for(
        tmp_path,
        [
            {"image": "img/0.png", "texts": ["a", "a2"]},
            {"image": "img/1.png", "texts": ["b", "b2"]},
            {"image": "img/2.png", "text": "c"},
        ],
    )
    assert "line 3 does not" in message and "second caption" in message


def test_label_on_some_lines_only_names_a_line_without(tmp_path: Path) -> None:
    message = error_for(
        tmp_path,
        [{"image": "img/0.png", "text": "a"}, {"image": "img/1.png", "text": "b", "label": 1}],
    )
    assert "line 1 does not" in message and '"label"' in message


def test_mixed_int_and_string_labels_are_refused(tmp_path: Path) -> None:
    message = error_for(
        tmp_path,
        [
            {"image": "img/0.png", "text": "a", "label": 0},
            {"image": "img/1.png", "text": "b", "label": "zero"},
        ],
    )
    assert "mixes integer labels (line 1) and string labels (line 2)" in message


def test_empty_manifest(tmp_path: Path) -> None:
    assert "has no pairs" in error_for(tmp_path, ["", "  "])


def test_missing_manifest_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_manifest(tmp_path / "nope.jsonl")
    with pytest.raises(DatasetError, match="is a folder"):
        load_manifest(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"image": "\xff"}\n')
    with pytest.raises(DatasetError, match="UTF-8"):
        load_manifest(path)
