"""Shard and file patterns: webdataset's brace ranges, globs, folders, natural name order."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_modgap.data.patterns import expand_braces, expand_files, natural_key
from pytest_modgap.errors import DatasetError


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("s-{000..003}.tar", ["s-000.tar", "s-001.tar", "s-002.tar", "s-003.tar"]),
        ("s-{8..11}.tar", ["s-8.tar", "s-9.tar", "s-10.tar", "s-11.tar"]),
        ("s-{09..11}", ["s-09", "s-10", "s-11"]),
        ("{a,b}-{1..2}", ["a-1", "a-2", "b-1", "b-2"]),
        ("x{a,{b,c}d}y", ["xay", "xbdy", "xcdy"]),
        ("{0..10..5}", ["0", "5", "10"]),
        ("{3..1}", ["3", "2", "1"]),
        ("plain.tar", ["plain.tar"]),
        ("{x}-{0..1}", ["{x}-0", "{x}-1"]),  # no comma, no range: literal braces
        ("open{1..2", ["open{1..2"]),
    ],
)
def test_brace_patterns_expand_in_order(pattern: str, names: list[str]) -> None:
    assert expand_braces(pattern) == names


def test_a_runaway_range_is_refused() -> None:
    with pytest.raises(DatasetError, match=r"more than 1,000,000 names"):
        expand_braces("s-{0..99999999}.tar")
    with pytest.raises(DatasetError, match=r"range step of 0"):
        expand_braces("{0..9..0}")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=20, unique=True))
def test_natural_order_sorts_numbers_by_value(numbers: list[int]) -> None:
    names = [f"shard-{n}.tar" for n in numbers]
    assert sorted(names, key=natural_key) == [f"shard-{n}.tar" for n in sorted(numbers)]


def test_natural_order_takes_other_digits_as_text() -> None:
    names = ["s-2²1.tar", "s-10.tar", "s-2.tar", "s-١٢.tar"]
    assert sorted(names, key=natural_key) == ["s-2.tar", "s-2²1.tar", "s-10.tar", "s-١٢.tar"]


def test_files_from_folders_globs_and_ranges(tmp_path: Path) -> None:
    for name in ("b-10.tar", "b-2.tar", "b-1.tar", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c-0.tar").write_bytes(b"")
    expected = [tmp_path / name for name in ("b-1.tar", "b-2.tar", "b-10.tar")]
    assert expand_files(str(tmp_path), "wds", (".tar",)) == expected
    assert expand_files(f"{tmp_path}/b-*.tar", "wds", (".tar",)) == expected
    assert expand_files(f"{tmp_path}/b-{{1..2}}.tar", "wds", (".tar",)) == expected[:2]
    assert expand_files(f"{tmp_path}/s?b", "wds", (".tar",)) == [tmp_path / "sub" / "c-0.tar"]
    assert expand_files(f"{tmp_path}/b-1.tar", "wds", (".tar",)) == expected[:1]


def test_a_missing_shard_or_an_empty_match_is_named(tmp_path: Path) -> None:
    (tmp_path / "s-0.tar").write_bytes(b"")
    with pytest.raises(
        DatasetError, match=r"wds:.*s-\{0\.\.1\}\.tar names .*s-1\.tar, which does not"
    ):
        expand_files(f"{tmp_path}/s-{{0..1}}.tar", "wds", (".tar",))
    with pytest.raises(DatasetError, match=r"parquet:.*\*\.parquet matches no \.parquet file"):
        expand_files(f"{tmp_path}/*.parquet", "parquet", (".parquet",))


ORDER_SCRIPT = """
import sys
from pytest_modgap.data.patterns import expand_files
print(" ".join(path.name for path in expand_files(sys.argv[1], "wds", (".tar",))))
"""


def test_names_that_tie_in_natural_order_keep_one_order_under_every_hash_seed(
    tmp_path: Path,
) -> None:
    """s-1, s-01 and s-001 are all shard 1: the full name breaks the tie, not the hash order of a
    set, so the sample and the metrics do not change with PYTHONHASHSEED."""
    for name in ("s-1.tar", "s-01.tar", "s-001.tar"):
        (tmp_path / name).write_bytes(b"")
    orders = {
        subprocess.run(
            [sys.executable, "-c", ORDER_SCRIPT, str(tmp_path)],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in range(4)
    }
    assert orders == {"s-001.tar s-01.tar s-1.tar"}


def test_a_folder_named_like_a_shard_is_refused_not_skipped(tmp_path: Path) -> None:
    (tmp_path / "s-0.tar").write_bytes(b"")
    (tmp_path / "s-1.tar").mkdir()
    (tmp_path / "s-1.tar" / "notes.txt").write_bytes(b"")
    for pattern in (f"{tmp_path}/s-{{0..1}}.tar", f"{tmp_path}/s-*.tar", f"{tmp_path}/s-1.tar"):
        with pytest.raises(
            DatasetError, match=r"names .*s-1\.tar, which is a folder, not a \.tar file"
        ):
            expand_files(pattern, "wds", (".tar",))


def test_a_named_folder_without_matching_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a" / "x.tar").parent.mkdir()
    (tmp_path / "a" / "x.tar").write_bytes(b"")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.parquet").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"wds:.*names the folder .*b, which holds no \.tar"):
        expand_files(f"{tmp_path}/{{a,b}}", "wds", (".tar",))
    # A folder found by a glob may hold no shard: only what the pattern names must.
    assert expand_files(f"{tmp_path}/*", "wds", (".tar",)) == [tmp_path / "a" / "x.tar"]
    # A Spark-style folder named like a file is read as a folder when it holds such files.
    (tmp_path / "t.parquet").mkdir()
    (tmp_path / "t.parquet" / "part-0.parquet").write_bytes(b"")
    assert expand_files(f"{tmp_path}/t.parquet", "parquet", (".parquet",)) == [
        tmp_path / "t.parquet" / "part-0.parquet"
    ]
