"""Tests of the MSCOCO captions loader on miniature annotation files and image folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_modgap.data.coco import load_coco
from pytest_modgap.errors import DatasetError

from .layouts import coco_layout, image_paths, write_image

IMAGES = {42: "000000000042.jpg", 7: "000000000007.jpg", 19: "000000000019.jpg"}
# Annotation ids out of order on purpose: captions are ranked by annotation id, not file order.
ANNOTATIONS = [
    (305, 42, "forty-two, third"),
    (301, 42, "forty-two, first"),
    (302, 7, "seven, first"),
    (303, 42, "forty-two, second"),
    (310, 7, "seven, second"),
    (299, 19, " nineteen, first "),
    (400, 19, "nineteen, second"),
]


def test_pairs_ordered_by_image_id_with_two_lowest_id_captions(tmp_path: Path) -> None:
    coco_layout(tmp_path, "val2017", IMAGES, ANNOTATIONS)
    pairs = load_coco(tmp_path)
    assert [p.name for p in image_paths(pairs)] == [IMAGES[7], IMAGES[19], IMAGES[42]]
    assert all(p.parent == tmp_path / "val2017" for p in image_paths(pairs))
    assert list(pairs.texts) == ["seven, first", "nineteen, first", "forty-two, first"]
    assert list(pairs.texts2 or []) == ["seven, second", "nineteen, second", "forty-two, second"]
    assert list(pairs.origins or []) == [
        "captions_val2017.json annotation id 302",
        "captions_val2017.json annotation id 299",
        "captions_val2017.json annotation id 301",
    ]


def test_split_preference_and_nested_image_folder(tmp_path: Path) -> None:
    coco_layout(tmp_path, "train2014", IMAGES, ANNOTATIONS)
    coco_layout(
        tmp_path,
        "val2014",
        {1: "v1.jpg", 2: "v2.jpg"},
        [(1, 1, "v one"), (2, 2, "v two")],
        nested_images=True,
    )
    pairs = load_coco(tmp_path)
    assert list(pairs.texts) == ["v one", "v two"]
    assert all(p.parent == tmp_path / "images" / "val2014" for p in image_paths(pairs))


def test_split_without_images_is_passed_over(tmp_path: Path) -> None:
    # The trainval annotations archive ships val2017 captions even when only train2017 images exist.
    coco_layout(tmp_path, "train2017", IMAGES, ANNOTATIONS)
    json_only = coco_layout(tmp_path / "scratch", "val2017", {1: "v.jpg"}, [(1, 1, "v")])
    json_only.rename(tmp_path / "annotations" / "captions_val2017.json")
    assert len(load_coco(tmp_path)) == 3


def test_captions_json_given_directly(tmp_path: Path) -> None:
    json_path = coco_layout(tmp_path, "val2014", IMAGES, ANNOTATIONS)
    pairs = load_coco(json_path)
    assert all(p.parent == tmp_path / "val2014" for p in image_paths(pairs))


def test_one_caption_somewhere_drops_text2_for_the_whole_set(tmp_path: Path) -> None:
    coco_layout(tmp_path, "val2017", IMAGES, [a for a in ANNOTATIONS if a[0] != 400])
    pairs = load_coco(tmp_path)
    assert pairs.texts2 is None
    assert pairs.texts[1] == "nineteen, first"


def test_no_captions_file_lists_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "val2017").mkdir()
    with pytest.raises(DatasetError) as info:
        load_coco(tmp_path)
    for name in ("captions_val2017.json", "captions_train2014.json"):
        assert name in str(info.value)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_coco(tmp_path / "nope")


def test_missing_image_folder(tmp_path: Path) -> None:
    json_path = coco_layout(tmp_path, "val2017", IMAGES, ANNOTATIONS)
    for image in (tmp_path / "val2017").iterdir():
        image.unlink()
    (tmp_path / "val2017").rmdir()
    with pytest.raises(DatasetError, match=r"no image folder .*val2017"):
        load_coco(tmp_path)
    with pytest.raises(DatasetError, match=r"No image folder .*val2017"):
        load_coco(json_path)


def test_missing_image_names_it_and_its_id(tmp_path: Path) -> None:
    coco_layout(tmp_path, "val2017", IMAGES, ANNOTATIONS)
    (tmp_path / "val2017" / IMAGES[19]).unlink()
    with pytest.raises(DatasetError, match=r"Image 000000000019\.jpg \(image id 19 in .*val2017"):
        load_coco(tmp_path)


def write_json(tmp_path: Path, data: object) -> Path:
    write_image(tmp_path / "val2017" / "a.jpg", 0)
    path = tmp_path / "annotations" / "captions_val2017.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([], '"images" and "annotations" lists'),
        ({"images": [], "annotations": []}, "has no images"),
        ({"images": [{"id": "1", "file_name": "a.jpg"}], "annotations": []}, "images entry 0"),
        (
            {
                "images": [{"id": 1, "file_name": "a.jpg"}],
                "annotations": [{"id": 1, "caption": "x"}],
            },
            "annotations entry 0",
        ),
        (
            {
                "images": [{"id": 1, "file_name": "a.jpg"}],
                "annotations": [{"id": 5, "image_id": 2, "caption": "x"}],
            },
            "annotation id 5 captions image id 2",
        ),
        (
            {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": []},
            "image id 1 .* no caption",
        ),
    ],
)
def test_malformed_captions_file(tmp_path: Path, data: object, expected: str) -> None:
    write_json(tmp_path, data)
    with pytest.raises(DatasetError, match=expected):
        load_coco(tmp_path)


def test_invalid_json(tmp_path: Path) -> None:
    path = write_json(tmp_path, {})
    path.write_text('{"images": [')
    with pytest.raises(DatasetError, match="Cannot read MSCOCO captions file"):
        load_coco(tmp_path)
