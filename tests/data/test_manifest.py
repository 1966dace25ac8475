"""Tests of the JSONL manifest loader: the happy paths and every error a user can cause."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pytest_modgap.data.manifest import load_manifest
from pytest_modgap.errors import DatasetError, ModgapError

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


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        # json accepts a lone surrogate; tokenizers then die with a raw UnicodeEncodeError.
        ({"image": "img/1.png", "text": "a dog \ud83d on grass"}, "lone UTF-16 surrogate"),
        ('{"image": "img/1.png", "text": "x", "n": ' + "1" * 5000 + "}", "cannot be read as JSON"),
        ('{"image": "img/1.png", "text": "x", "n": ' + "[" * 100_000, "nested too deeply"),
        ({"image": "x" * 300 + ".png", "text": "a"}, "cannot be looked up"),
        ({"image": "img/1.png", "text": "a", "label": 2**70}, "outside the 64-bit integer range"),
    ],
    ids=["lone surrogate", "5000-digit number", "nested 100k deep", "long name", "huge label"],
)
def test_hostile_line_is_a_clear_error_naming_the_line(
    tmp_path: Path, bad_line: Any, expected: str
) -> None:
    message = error_for(tmp_path, [GOOD, bad_line])
    assert "m.jsonl line 2" in message
    assert expected in message


def test_lone_surrogate_in_a_second_caption_is_named(tmp_path: Path) -> None:
    message = error_for(
        tmp_path,
        [
            {"image": "img/0.png", "texts": ["a", "a2"]},
            {"image": "img/1.png", "texts": ["b", "\udc00 b2"]},
        ],
    )
    assert "second caption of m.jsonl line 2" in message
    assert "'\\udc00' at character 0" in message


@pytest.mark.parametrize(
    "bad_line",
    [
        {"image": list(range(20_000)), "text": "a"},
        {"image": "img/1.png", "text": {str(i): i for i in range(20_000)}},
        {"image": "img/1.png", "texts": ["a"] * 20_000 + [1]},
        {"image": "img/1.png", "text": "a", "label": [0.5] * 20_000},
        {"image": "img/" + "x/" * 2_000 + "y.png", "text": "a"},
    ],
    ids=["image list", "text object", "texts list", "label list", "image path"],
)
def test_huge_values_are_shown_as_a_short_prefix(tmp_path: Path, bad_line: Any) -> None:
    message = error_for(tmp_path, [GOOD, bad_line])
    assert len(message) < 1_000 + len(str(tmp_path)), message[:2_000]


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


def test_captions_holding_unicode_line_breaks_load_as_json_dumps_wrote_them(
    tmp_path: Path,
) -> None:
    """json.dumps(ensure_ascii=False) writes U+2028, U+2029 and U+0085 as they are; only "\\n"
    ends a JSONL line (and "\\r\\n": a file saved on Windows)."""
    captions = ["a\u2028b", "c\u0085d", "e\u2029f"]
    records = [{"image": f"img/{i}.png", "text": text} for i, text in enumerate(captions)]
    path = write_manifest(tmp_path, [json.dumps(r, ensure_ascii=False) for r in records])
    pairs = load_manifest(path)
    assert list(pairs.texts) == captions
    assert list(pairs.origins or []) == ["m.jsonl line 1", "m.jsonl line 2", "m.jsonl line 3"]
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert list(load_manifest(path).texts) == captions


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    captions=st.lists(
        st.text(st.characters(exclude_categories=["Cs"]), min_size=1), min_size=2, max_size=3
    )
)
def test_any_caption_json_dumps_writes_loads_back(tmp_path: Path, captions: list[str]) -> None:
    records = [{"image": "img/0.png", "text": text} for text in captions]
    path = write_manifest(tmp_path, [json.dumps(r, ensure_ascii=False) for r in records], images=1)
    assert list(load_manifest(path).texts) == captions


# Fuzzing: whatever a manifest holds, only DatasetError (a ModgapError) may escape loading it and
# fingerprinting the pairs (which reads every image and encodes every caption, as the cache does).

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Any code point, lone surrogates included (json.dumps writes them as \\udXXX escapes), with the
# characters that matter most drawn often.
ANY_TEXT = st.text(
    st.characters(exclude_categories=()) | st.sampled_from(["a", " ", "\ud83d", "\udc15", "\x00"]),
    max_size=8,
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**62)
    | st.floats()
    | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(ANY_TEXT, children, max_size=3)
    ),
    max_leaves=8,
)
IMAGES = st.sampled_from(["img/0.png", "img/1.png", "img/2.png", "img/none.png", "", "img"])
PLAUSIBLE = st.one_of(
    st.fixed_dictionaries({"image": st.sampled_from(["img/0.png", "img/1.png"]), "text": ANY_TEXT}),
    st.fixed_dictionaries(
        {"image": st.just("img/2.png"), "texts": st.lists(ANY_TEXT, min_size=1, max_size=3)}
    ),
)
"""Records that load when their captions are well formed, so later stages are reached too."""
RECORDS = st.one_of(
    PLAUSIBLE,
    PLAUSIBLE,
    JSON_VALUES,
    st.fixed_dictionaries(
        {"image": IMAGES | JSON_VALUES},
        optional={
            "text": ANY_TEXT | JSON_VALUES,
            "texts": st.lists(ANY_TEXT, max_size=3) | JSON_VALUES,
            "label": st.integers() | ANY_TEXT | JSON_VALUES,
        },
    ),
)


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    for i in range(3):
        write_image(root / "img" / f"{i}.png", i)
    return root


def load_checked(path: Path) -> None:
    try:
        pairs = load_manifest(path)
        pairs.fingerprint()
        pairs.sample(2, seed=0)
    except ModgapError:
        pass


@FUZZ
@example(data=b"[" * 100_000)
@example(data=b'{"image": "img/0.png", "text": "\\ud800"}\n{"image": "img/1.png", "text": "b"}')
@example(data=b'{"image": "' + b"x" * 300 + b'", "text": "a"}')
@given(data=st.binary(max_size=400) | st.binary(max_size=400).map(lambda b: b'{"image": ' + b))
def test_random_bytes_give_only_dataset_errors(fuzz_root: Path, data: bytes) -> None:
    path = fuzz_root / "m.jsonl"
    path.write_bytes(data)
    load_checked(path)


@FUZZ
@given(records=st.lists(RECORDS, min_size=1, max_size=4))
def test_random_json_records_give_only_dataset_errors(fuzz_root: Path, records: list[Any]) -> None:
    path = fuzz_root / "m.jsonl"
    lines = [json.dumps(record, allow_nan=True) for record in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load_checked(path)
