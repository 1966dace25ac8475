"""clip_benchmark / open_clip CSV files: separators, columns, labels and every bad-input error."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_modgap.data.specs import load_dataset
from pytest_modgap.embedding.pipeline import embed_pairs
from pytest_modgap.errors import DatasetError

from .formats import make_pairs, write_csv, write_images
from .test_formats_roundtrip import PixelStatistics


def test_comma_separated_with_quoted_captions_and_labels(tmp_path: Path) -> None:
    names = write_images(tmp_path, make_pairs(3))
    rows = [f'{names[0]},"a, quoted caption",dog', f"{names[1]},plain,cat", f"{names[2]},x,dog"]
    path = tmp_path / "pairs.csv"
    path.write_text("filepath,title,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    pairs = load_dataset(f"csv:{path}")
    assert list(pairs.texts) == ["a, quoted caption", "plain", "x"]
    assert list(pairs.groups or []) == [0, 1, 0]
    assert pairs.images[0] == tmp_path / names[0]
    assert pairs.origin(1) == "pairs.csv line 3"


def test_other_columns_by_option_and_integer_labels(tmp_path: Path) -> None:
    names = write_images(tmp_path, make_pairs(2))
    path = tmp_path / "pairs.tsv"
    path.write_text(f"path\tcaption\tcls\n{names[0]}\tone\t7\n{names[1]}\ttwo\t3\n")
    pairs = load_dataset(f"csv:{path}?image=path")
    assert list(pairs.texts) == ["one", "two"]
    assert list(pairs.groups or []) == [7, 3]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("picture\ttitle\nx.png\ta\n", r"has no image column: none of filepath, image, "),
        ("filepath\tcomment\nx.png\ta\n", r"has no caption column: none of title, caption"),
        ("filepath\ttitle\nx.png\ta\ty\n", r"line 2 has 3 fields, but the header has 2"),
        ("filepath\ttitle\n", r"has a header but no rows"),
        (
            "filepath\ttitle\n\ta\ny.png\tb\n",
            r"image \(column 'filepath'\) of bad\.csv line 2 is ''",
        ),
        ("filepath\ttitle\tlabel\nx.png\ta\t1\ny.png\tb\tdog\n", r"mixes integer labels"),
        (
            f"filepath\ttitle\tlabel\nx.png\ta\t{10**30}\ny.png\tb\t2\n",
            rf"CSV file .*bad\.csv.*: the label of bad\.csv line 2 is {10**30}, which does not fit",
        ),
        (
            f"filepath\ttitle\tlabel\nx.png\ta\t1\ny.png\tb\t{-(2**63) - 1}\n",
            r"the label of bad\.csv line 3 is -9223372036854775809, which does not fit",
        ),
        (
            f"filepath\ttitle\tlabel\nx.png\ta\t1\ny.png\tb\t{'9' * 5000}\n",
            r"bad\.csv line 3: the label 9+\.\.\. has 5000 characters, which does not fit",
        ),
        ("filepath\ttitle\nx\0.png\ta\ny.png\tb\n", r"bad\.csv line 2 is 'x\\x00\.png', .*NUL"),
    ],
)
def test_bad_csv_files_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        load_dataset(f"csv:{path}")


def test_a_missing_image_is_named_with_its_line_when_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path, make_pairs(3, second=False, labels=False))
    (tmp_path / "images" / "000001.jpg").unlink()
    pairs = load_dataset(f"csv:{path}")  # images are not looked up before sampling
    with pytest.raises(DatasetError, match=r"000001\.jpg \(pairs\.csv line 3\)"):
        embed_pairs(pairs, PixelStatistics(), batch_size=2, num_workers=0)
