"""Tests of the Flickr8k / Flickr30K loader on miniature copies of each distributed layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_modgap.data.flickr import load_flickr
from pytest_modgap.errors import DatasetError

from .layouts import (
    captions_for,
    flickr_captions_txt,
    flickr_results_csv,
    flickr_token_txt,
    image_paths,
)

CAPTIONS = {name: captions_for(name) for name in ("b.jpg", "a.jpg", "c.jpg")}


@pytest.mark.parametrize("folder", ["Images", "images", "flickr30k_images"])
def test_captions_txt_layout(tmp_path: Path, folder: str) -> None:
    root = flickr_captions_txt(tmp_path / "flickr8k", CAPTIONS, folder=folder)
    pairs = load_flickr(root, name="flickr8k")
    assert pairs.name == "flickr8k"
    # One pair per image, in the caption file's order, not sorted.
    assert [p.name for p in image_paths(pairs)] == ["b.jpg", "a.jpg", "c.jpg"]
    assert all(p.parent == root / folder for p in image_paths(pairs))
    # Commas and quotes survive the CSV round trip.
    assert list(pairs.texts) == [CAPTIONS[n][0] for n in CAPTIONS]
    assert list(pairs.texts2 or []) == [CAPTIONS[n][1] for n in CAPTIONS]
    # Header is line 1, five captions per image.
    assert list(pairs.origins or []) == [
        "captions.txt line 2",
        "captions.txt line 7",
        "captions.txt line 12",
    ]


def test_caption_file_can_be_given_directly(tmp_path: Path) -> None:
    root = flickr_captions_txt(tmp_path, CAPTIONS)
    assert len(load_flickr(root / "captions.txt", name="flickr8k")) == 3


def test_results_csv_layout_orders_by_comment_number(tmp_path: Path) -> None:
    root = flickr_results_csv(tmp_path, CAPTIONS)
    lines = (root / "results.csv").read_text().splitlines()
    # Put comment 0 of a.jpg after its comment 1: captions are ranked by number, not line.
    a0 = lines.index(f"a.jpg| 0| {CAPTIONS['a.jpg'][0]}")
    a1 = lines.index(f"a.jpg| 1| {CAPTIONS['a.jpg'][1]}")
    lines[a0], lines[a1] = lines[a1], lines[a0]
    # The distributed file has a row with no pipe after the comment number.
    lines[1] = f"b.jpg| 0   {CAPTIONS['b.jpg'][0]}"
    # A caption may itself contain a pipe.
    lines[lines.index(f"c.jpg| 1| {CAPTIONS['c.jpg'][1]}")] = "c.jpg| 1| left | right"
    (root / "results.csv").write_text("\n".join(lines) + "\n")

    pairs = load_flickr(root, name="flickr30k")
    assert list(pairs.texts) == [CAPTIONS[n][0] for n in CAPTIONS]
    assert list(pairs.texts2 or []) == [CAPTIONS["b.jpg"][1], CAPTIONS["a.jpg"][1], "left | right"]
    assert (pairs.origins or [])[1] == f"results.csv line {a1 + 1}"


def test_token_txt_layout_skips_the_stray_non_image_entry(tmp_path: Path) -> None:
    root = flickr_token_txt(tmp_path, CAPTIONS)
    with (root / "Flickr8k.token.txt").open("a") as handle:
        handle.write("2258277193_586949ec62.jpg.1#0\tA caption of a file that was never shipped\n")
    pairs = load_flickr(root, name="flickr8k")
    assert [p.name for p in image_paths(pairs)] == ["b.jpg", "a.jpg", "c.jpg"]
    assert all(p.parent.name == "Flicker8k_Dataset" for p in image_paths(pairs))
    assert list(pairs.texts2 or []) == [CAPTIONS[n][1] for n in CAPTIONS]


def test_one_caption_somewhere_drops_text2_for_the_whole_set(tmp_path: Path) -> None:
    captions = {"a.jpg": ["only one"], "b.jpg": ["first", "second"]}
    pairs = load_flickr(flickr_captions_txt(tmp_path, captions), name="flickr8k")
    assert list(pairs.texts) == ["only one", "first"]
    assert pairs.texts2 is None


def test_no_caption_file_lists_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "Images").mkdir()
    with pytest.raises(DatasetError) as info:
        load_flickr(tmp_path, name="flickr8k")
    message = str(info.value)
    assert str(tmp_path) in message
    for name in ("captions.txt", "results.csv", "Flickr8k.token.txt"):
        assert name in message


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_flickr(tmp_path / "nope", name="flickr8k")


def test_missing_image_folder(tmp_path: Path) -> None:
    root = flickr_captions_txt(tmp_path, CAPTIONS, folder="elsewhere")
    with pytest.raises(DatasetError, match=r"No image folder .*Images"):
        load_flickr(root, name="flickr8k")


def test_missing_image_names_it_and_its_caption_line(tmp_path: Path) -> None:
    root = flickr_captions_txt(tmp_path, CAPTIONS)
    (root / "Images" / "a.jpg").unlink()
    with pytest.raises(DatasetError, match=r"Image a\.jpg, captioned in .*captions\.txt line 7"):
        load_flickr(root, name="flickr8k")


@pytest.mark.parametrize(
    ("file_name", "content", "expected"),
    [
        ("captions.txt", "img,text\na.jpg,x\n", "not the header 'image,caption'"),
        ("captions.txt", "image,caption\na.jpg,x,y\n", "line 2 has 3 fields"),
        ("captions.txt", "image,caption\n", "has no captions"),
        ("results.csv", "image| caption\n", "not the header"),
        ("results.csv", "image_name| comment_number| comment\na.jpg| x| y\n", "line 2 is not"),
        ("Flickr8k.token.txt", "a.jpg#0 no tab here\n", "line 1 is not"),
    ],
)
def test_malformed_caption_file(
    tmp_path: Path, file_name: str, content: str, expected: str
) -> None:
    (tmp_path / "Images").mkdir()
    (tmp_path / file_name).write_text(content)
    with pytest.raises(DatasetError, match=expected):
        load_flickr(tmp_path, name="flickr30k")
