"""Parquet files: the row-group index, images as bytes, paths or datasets-style records, sampled
row groups read alone, and every bad-input error."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pytest_modgap.data import parquet as parquet_module
from pytest_modgap.data.pairset import InlineImage
from pytest_modgap.data.parquet import BATCH_ROWS, STREAM_BUFFER_BYTES, ParquetPairs
from pytest_modgap.data.specs import load_dataset
from pytest_modgap.errors import DatasetError

from .formats import image_bytes, make_pairs, write_images, write_parquet


def write(path: Path, columns: dict[str, object], row_group_size: int = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def test_images_as_paths_records_and_large_binary(tmp_path: Path) -> None:
    pairs = make_pairs(6, second=False, labels=False)
    names = write_images(tmp_path, pairs)
    records = [
        {"bytes": pair.image, "path": None} if i % 2 else {"bytes": None, "path": names[i]}
        for i, pair in enumerate(pairs)
    ]
    texts = [pair.captions[0] for pair in pairs]
    write(tmp_path / "paths.parquet", {"img": names, "alt": texts, "label": list("abcabc")})
    write(tmp_path / "records.parquet", {"image": records, "text": texts})
    large = pa.array([pair.image for pair in pairs], pa.large_binary())
    write(tmp_path / "large.parquet", {"image_bytes": large, "txt": texts})

    by_path = load_dataset(f"parquet:{tmp_path}/paths.parquet?image=img&text=alt").sample(None)
    assert by_path.images == [tmp_path / name for name in names]
    assert list(by_path.groups or []) == [0, 1, 2, 0, 1, 2]
    no_labels = load_dataset(f"parquet:{tmp_path}/paths.parquet?image=img&text=alt&label=")
    assert no_labels.sample(None).groups is None
    mixed = load_dataset(f"parquet:{tmp_path}/records.parquet").sample(None).images
    assert [isinstance(image, InlineImage) for image in mixed] == [False, True] * 3
    assert mixed[0] == tmp_path / names[0]
    inline = load_dataset(f"parquet:{tmp_path}/large.parquet").sample(None)
    assert [image.read() for image in inline.images if isinstance(image, InlineImage)] == [
        pair.image for pair in pairs
    ]
    assert list(inline.texts) == texts


def test_rows_follow_files_in_natural_order_then_row_groups(tmp_path: Path) -> None:
    for number in (10, 2):
        texts = [f"file {number} row {row}" for row in range(5)]
        write(tmp_path / f"part-{number}.parquet", {"image": [b"x"] * 5, "caption": texts}, 2)
    dataset = load_dataset(f"parquet:{tmp_path}")
    assert len(dataset) == 10
    texts = list(dataset.sample(None).texts)
    assert texts == [f"file 2 row {r}" for r in range(5)] + [f"file 10 row {r}" for r in range(5)]
    assert dataset.sample(None).origins[7] == "part-10.parquet row 2"  # type: ignore[index]
    assert isinstance(dataset, ParquetPairs)
    assert list(dataset.read_rows([8, 1, 5]).texts) == [texts[8], texts[1], texts[5]]


def corrupt_row_group(path: Path, group: int) -> None:
    """Overwrite the page header of the image column chunk of row group ``group``."""
    chunk = pq.ParquetFile(path).metadata.row_group(group).column(0)
    offset = chunk.dictionary_page_offset or chunk.data_page_offset
    data = bytearray(path.read_bytes())
    data[offset : offset + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))


def test_an_unreadable_row_group_is_named_and_others_still_read(tmp_path: Path) -> None:
    pairs = make_pairs(12)
    write_parquet(tmp_path, pairs, files=1, row_group_size=4)
    path = tmp_path / "part-0.parquet"
    corrupt_row_group(path, 1)
    dataset = load_dataset(f"parquet:{path}")
    assert isinstance(dataset, ParquetPairs)
    # Rows 0 and 9 sit in row groups 0 and 2: the damaged group is never read.
    assert list(dataset.read_rows([0, 9]).texts) == [pairs[0].captions[0], pairs[9].captions[0]]
    with pytest.raises(
        DatasetError,
        match=r"part-0\.parquet: row group 1 \(rows 4-7 of the file\) cannot be read \(.+\)\. "
        r"The file is damaged .*re-create the file",
    ):
        dataset.sample(None)


def test_a_file_that_is_not_parquet_is_named(tmp_path: Path) -> None:
    path = tmp_path / "cut.parquet"
    write_parquet(tmp_path / "good", make_pairs(4), files=1)
    path.write_bytes((tmp_path / "good" / "part-0.parquet").read_bytes()[:-20])
    with pytest.raises(DatasetError, match=r"Parquet file .*cut\.parquet cannot be opened"):
        load_dataset(f"parquet:{path}")


@pytest.mark.parametrize(
    ("spec_tail", "columns", "message"),
    [
        (
            "",
            {"picture": [b"x", b"y"], "caption": ["a", "b"]},
            r"has no image column: none of image, jpg, png, img, image_bytes is present; its "
            r"columns are: picture, caption\. Name the image column .* with \?image=COLUMN",
        ),
        (
            "",
            {"image": [b"x", b"y"], "description": ["a", "b"]},
            r"has no caption column: none of caption, captions, text, txt .*\?text=COLUMN",
        ),
        (
            "?text=alt",
            {"image": [b"x", b"y"], "caption": ["a", "b"]},
            r"has no caption column 'alt' \(named by \?text=alt in the data set spec\); its "
            r"columns are: image, caption",
        ),
        (
            "",
            {"image": [1, 2], "caption": ["a", "b"]},
            r"the image column 'image' has type int64; it must hold the image file's bytes",
        ),
        (
            "",
            {"image": [b"x", b"y"], "caption": ["a", "b"], "label": [0.5, 1.5]},
            r"the label column 'label' has type double; .*\?label=COLUMN",
        ),
    ],
)
def test_a_missing_or_unfit_column_is_named(
    tmp_path: Path, spec_tail: str, columns: dict[str, object], message: str
) -> None:
    path = write(tmp_path / "data.parquet", columns)
    with pytest.raises(DatasetError, match=rf"Parquet file {path}.*{message}"):
        load_dataset(f"parquet:{path}{spec_tail}")


def test_files_with_other_columns_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "a.parquet", {"image": [b"x"], "caption": ["a"]})
    write(tmp_path / "b.parquet", {"image": [b"x"], "text": ["a"]})
    with pytest.raises(DatasetError, match=r"b\.parquet has other columns than .*a\.parquet"):
        load_dataset(f"parquet:{tmp_path}")


def test_null_cells_name_the_row(tmp_path: Path) -> None:
    image = image_bytes(0, "png")
    path = write(
        tmp_path / "d.parquet", {"image": [image, image, image], "caption": ["a", None, "c"]}
    )
    with pytest.raises(DatasetError, match=r"The caption of d\.parquet row 1 is missing \(null\)"):
        load_dataset(f"parquet:{path}").sample(None)
    path = write(
        tmp_path / "e.parquet", {"image": [image, image, None], "caption": ["a", "b", "c"]}
    )
    with pytest.raises(
        DatasetError, match=r"image \(column 'image'\) of e\.parquet row 2 is missing"
    ):
        load_dataset(f"parquet:{path}").sample(None)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "empty.parquet",
        {"image": pa.array([], pa.binary()), "caption": pa.array([], pa.string())},
    )
    with pytest.raises(DatasetError, match=r"hold no rows"):
        load_dataset(f"parquet:{path}")


def test_without_pyarrow_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "d.parquet", {"image": [b"x", b"y"], "caption": ["a", "b"]})
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(
        DatasetError, match=r"needs pyarrow.*pip install 'pytest-modgap\[parquet\]'"
    ):
        load_dataset(f"parquet:{path}")


def test_a_nul_byte_in_an_image_path_names_the_row(tmp_path: Path) -> None:
    path = write(tmp_path / "nul.parquet", {"image": ["a.png", "b\0.png"], "caption": ["a", "b"]})
    with pytest.raises(
        DatasetError, match=r"image \(column 'image'\) of nul\.parquet row 1 .*NUL byte"
    ):
        load_dataset(f"parquet:{path}").sample(None)


def test_a_duplicate_column_name_is_named(tmp_path: Path) -> None:
    table = pa.Table.from_arrays(
        [pa.array([b"x", b"y"]), pa.array(["a", "b"]), pa.array(["c", "d"])],
        names=["image", "caption", "caption"],
    )
    path = tmp_path / "dup.parquet"
    pq.write_table(table, path)
    with pytest.raises(DatasetError, match=rf"Parquet file {path} has 2 columns named 'caption'"):
        load_dataset(f"parquet:{path}")
    unused = pa.Table.from_arrays(
        [pa.array([b"x", b"y"]), pa.array(["a", "b"]), pa.array([1, 2]), pa.array([3, 4])],
        names=["image", "caption", "extra", "extra"],
    )
    pq.write_table(unused, path)
    assert list(load_dataset(f"parquet:{path}").sample(None).texts) == ["a", "b"]


def test_a_large_row_group_is_streamed_not_held_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, image_size = 8000, 2048
    images = [bytes([row % 251]) * image_size for row in range(rows)]
    path = tmp_path / "one-group.parquet"
    pq.write_table(
        pa.table({"image": images, "caption": [f"row {row}" for row in range(rows)]}),
        path,
        row_group_size=rows,
        compression="none",
        use_dictionary=False,
        write_batch_size=16,  # pages of ~64 KB: Arrow must hold one page, not the group
    )
    held: list[int] = []
    original = parquet_module.rows_from_table

    def counting(*args: Any, **kwargs: Any) -> Any:
        held.append(pa.total_allocated_bytes())
        return original(*args, **kwargs)

    monkeypatch.setattr(parquet_module, "rows_from_table", counting)
    pairs = load_dataset(f"parquet:{path}").read_rows([rows - 1, 3])
    assert [image.read() for image in pairs.images if isinstance(image, InlineImage)] == [
        images[rows - 1],
        images[3],
    ]
    # The stated bound: the stream buffer and pages of ~32 KB, the batch in hand and the next
    # one, each with room to grow (Arrow rounds its buffers up to powers of two).
    bound = STREAM_BUFFER_BYTES + 4 * BATCH_ROWS * image_size
    assert held and max(held) < bound < rows * image_size / 4, (
        f"Arrow held {max(held) / 1e6:.1f} MB while reading 2 rows of a "
        f"{rows * image_size / 1e6:.1f} MB row group (bound {bound / 1e6:.1f} MB): the row "
        f"group is buffered whole"
    )
