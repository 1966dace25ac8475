"""WebDataset shards: the header-only tar index against tarfile, sampling that reads only the
sampled members, the spec options, and every bad-input error."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.data.specs import load_dataset
from pytest_modgap.data.tar_index import tar_members
from pytest_modgap.data.webdataset import TarMember, WebDatasetPairs
from pytest_modgap.embedding.pipeline import embed_pairs
from pytest_modgap.errors import DatasetError

from .formats import add_member, image_bytes, make_pairs, write_shards
from .test_formats_roundtrip import PixelStatistics

FORMATS = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}


def write_tar(
    path: Path, members: Sequence[tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT
) -> Path:
    with tarfile.open(path, "w", format=fmt) as tar:
        for name, data in members:
            add_member(tar, name, data)
    return path


def sample_members(
    key: str, caption: str = "a caption", image: str = "jpg"
) -> list[tuple[str, bytes]]:
    return [(f"{key}.{image}", image_bytes(len(key), image)), (f"{key}.txt", caption.encode())]


def regular_members(path: Path) -> list[tuple[str, int, int]]:
    with tarfile.open(path) as tar:
        return [(m.name, m.offset_data, m.size) for m in tar if m.isreg()]


# Names tarfile can write in every format: ASCII path parts, long ones, nested folders, non-ASCII.
name_part = st.text(st.sampled_from("abcxyz019_-é"), min_size=1, max_size=40)
entries = st.lists(
    st.tuples(
        st.lists(name_part, min_size=1, max_size=5).map("/".join),
        st.integers(0, 1500),
        st.sampled_from(["file", "file", "file", "dir", "symlink"]),
    ),
    max_size=12,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(entries=entries, fmt=st.sampled_from(sorted(FORMATS)))
def test_header_index_finds_what_tarfile_finds(
    tmp_path: Path, entries: list[tuple[str, int, str]], fmt: str
) -> None:
    path = tmp_path / "fuzz.tar"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=FORMATS[fmt]) as tar:
        for number, (name, size, kind) in enumerate(entries):
            if fmt == "ustar" and len(name.encode()) > 99:
                name = name.encode()[:90].decode("utf-8", "ignore") or "x"
            info = tarfile.TarInfo(f"{name}.{number}")
            if kind == "file":
                info.size = size
                tar.addfile(info, io.BytesIO(bytes([number % 256]) * size))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif fmt != "ustar":
                info.type, info.linkname = tarfile.SYMTYPE, "target/" * 20
                tar.addfile(info)
    path.write_bytes(buffer.getvalue())
    assert list(tar_members(path)) == regular_members(path)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.floats(0.0, 1.0, exclude_max=True))
def test_a_shard_cut_anywhere_is_an_error_or_complete(tmp_path: Path, cut: float) -> None:
    whole = tmp_path / "whole.tar"
    if not whole.exists():
        write_tar(whole, [m for k in range(3) for m in sample_members(f"{k:03d}")])
    data = whole.read_bytes()
    cut_at = int(cut * len(data))
    path = tmp_path / "cut.tar"
    path.write_bytes(data[:cut_at])
    try:
        members = list(tar_members(path))
    except DatasetError as exc:
        assert str(path) in str(exc)
        assert "re-create or re-download the shard" in str(exc)
    else:  # cut inside the end-of-archive padding: every member is there
        assert members == regular_members(whole)


def test_truncated_shard_names_the_shard_the_member_and_the_fix(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "shard.tar", [m for k in range(2) for m in sample_members(f"{k}")])
    cut = regular_members(path)[2][1] + 3  # three bytes into 1.jpg
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(
        DatasetError, match=r"shard\.tar is truncated: member '1\.jpg'.*re-create or re-download"
    ):
        load_dataset(f"wds:{path}")


def test_shard_without_end_of_archive_is_truncated(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "shard.tar", sample_members("0"))
    end = regular_members(path)[-1]
    path.write_bytes(path.read_bytes()[: end[1] + 512])  # the last member's data, no zero blocks
    with pytest.raises(DatasetError, match=r"truncated: after member '0\.txt'.*no end-of-archive"):
        load_dataset(f"wds:{path}")


def test_compressed_empty_and_non_tar_shards_are_named(tmp_path: Path) -> None:
    plain = write_tar(tmp_path / "a.tar", sample_members("0") + sample_members("1"))
    gz = tmp_path / "b.tar"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    with pytest.raises(DatasetError, match=r"b\.tar is gzip-compressed.*gunzip"):
        load_dataset(f"wds:{gz}")
    empty = tmp_path / "c.tar"
    empty.write_bytes(b"")
    with pytest.raises(DatasetError, match=r"c\.tar is empty"):
        load_dataset(f"wds:{empty}")
    text = tmp_path / "d.tar"
    text.write_text("not a tar file at all\n" * 40)
    with pytest.raises(DatasetError, match=r"d\.tar is not a tar file"):
        load_dataset(f"wds:{text}")


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (
            [("001.txt", b"a caption"), ("001.json", b"{}")],
            r"sample 001 has no image member \(\.jpg or \.jpeg or \.png or \.webp\); it has "
            r"\.txt, \.json\. .*\?image=EXTENSION",
        ),
        (
            [("001.jpg", b"x"), ("001.cls", b"3")],
            r"sample 001 has no caption member \(\.txt or \.json\).*\?text=EXTENSION",
        ),
        (
            [("001.jpg", b"x"), ("001.txt", b"a"), ("001.JPG", b"y")],
            r"sample 001 has two \.jpg members \(001\.jpg and 001\.JPG\)",
        ),
    ],
)
def test_a_sample_without_an_image_or_caption_is_named(
    tmp_path: Path, members: list[tuple[str, bytes]], message: str
) -> None:
    path = write_tar(tmp_path / "shard-7.tar", sample_members("000") + members)
    with pytest.raises(DatasetError, match=rf"shard {path}: {message}"):
        load_dataset(f"wds:{path}")


def test_labels_on_some_samples_only_are_refused(tmp_path: Path) -> None:
    members = sample_members("0") + [("0.cls", b"1")] + sample_members("1")
    path = write_tar(tmp_path / "s.tar", members)
    with pytest.raises(
        DatasetError, match=r"some samples have a \.cls label but .*s\.tar sample 1"
    ):
        load_dataset(f"wds:{path}")
    # ?label= switches labels off.
    assert load_dataset(f"wds:{path}?label=").sample(None).groups is None


def test_spec_options_pick_other_member_keys(tmp_path: Path) -> None:
    members = []
    for key, animal in enumerate(["dog", "cat", "dog"]):
        members += [
            (f"{key}.jpg", image_bytes(2 * key, "jpg")),
            (f"{key}.png", image_bytes(2 * key + 1, "png")),
            (f"{key}.txt", f"txt {key}".encode()),
            (f"{key}.json", json.dumps({"captions": [f"json {key}", f"second {key}"]}).encode()),
            (f"{key}.label", animal.encode()),
        ]
    path = write_tar(tmp_path / "s.tar", members)
    default = load_dataset(f"wds:{path}").sample(None)
    assert list(default.texts) == ["txt 0", "txt 1", "txt 2"]
    assert default.texts2 is None and default.groups is None
    assert [str(image).split()[1] for image in default.images] == ["0.jpg", "1.jpg", "2.jpg"]

    chosen = load_dataset(f"wds:{path}?image=png&text=json&label=label").sample(None)
    assert [str(image).split()[1] for image in chosen.images] == ["0.png", "1.png", "2.png"]
    assert list(chosen.texts) == ["json 0", "json 1", "json 2"]
    assert list(chosen.texts2 or []) == ["second 0", "second 1", "second 2"]
    assert list(chosen.groups or []) == [0, 1, 0]  # class names numbered by first appearance

    with pytest.raises(DatasetError, match=r"s\.tar: sample 0 has no image member \(\.webp\)"):
        load_dataset(f"wds:{path}?image=webp")
    with pytest.raises(DatasetError, match=r"sample 0 has no \.cls member, which \?label=cls"):
        load_dataset(f"wds:{path}?label=cls")


def test_spec_options_match_member_extensions_in_any_case(tmp_path: Path) -> None:
    members = []
    for key in range(2):
        members += [
            (f"{key}.PNG", image_bytes(key, "png")),
            (f"{key}.TXT", f"caption {key}".encode()),
            (f"{key}.Cls", b"3"),
        ]
    path = write_tar(tmp_path / "s.tar", members)
    for options in ("", "?image=PNG&text=TXT&label=CLS", "?image=png&text=txt&label=cls"):
        pairs = load_dataset(f"wds:{path}{options}").sample(None)
        assert [str(image).split()[1] for image in pairs.images] == ["0.PNG", "1.PNG"], options
        assert list(pairs.texts) == ["caption 0", "caption 1"], options
        assert list(pairs.groups or []) == [3, 3], options


@pytest.mark.parametrize(
    ("member", "body", "message"),
    [
        ("json", b"{not json", r"member 1\.json is not valid JSON"),
        ("json", b'{"caption": "a", "captions": ["b"]}', r"exactly one of \"caption\""),
        ("json", b'["a list"]', r"must be a JSON object"),
        ("json", b'{"captions": []}', r"caption of .*sample 1 is \[\]"),
        ("txt", b"caf\xe9", r"member 1\.txt is not UTF-8 text"),
    ],
)
def test_unreadable_captions_name_the_member(
    tmp_path: Path, member: str, body: bytes, message: str
) -> None:
    members = sample_members("0") + [("1.jpg", image_bytes(1, "jpg")), (f"1.{member}", body)]
    path = write_tar(tmp_path / "s.tar", members)
    dataset = load_dataset(f"wds:{path}")
    with pytest.raises(DatasetError, match=message):
        dataset.sample(None)


def test_a_second_caption_on_some_sampled_pairs_only_is_refused(tmp_path: Path) -> None:
    members = [
        ("0.jpg", image_bytes(0, "jpg")),
        ("0.json", json.dumps({"caption": "one caption"}).encode()),
        ("1.jpg", image_bytes(1, "jpg")),
        ("1.json", json.dumps({"captions": ["first", "second"]}).encode()),
    ]
    path = write_tar(tmp_path / "s.tar", members)
    with pytest.raises(DatasetError, match=r"s\.tar sample 1 has a second caption but .*sample 0"):
        load_dataset(f"wds:{path}").sample(None)


def corrupt_images(shard: Path, keep: set[int]) -> None:
    """Overwrite the image bytes of every sample not in ``keep`` with bytes no decoder reads."""
    dataset = WebDatasetPairs(str(shard))
    data = bytearray(shard.read_bytes())
    for row, image in enumerate(dataset.sample(None).images):
        assert isinstance(image, TarMember)
        if row not in keep:
            data[image.offset : image.offset + image.size] = b"\x00" * image.size
    shard.write_bytes(bytes(data))


def test_only_the_sampled_members_are_read_and_decoded(tmp_path: Path) -> None:
    write_shards(tmp_path, make_pairs(30), shards=1)
    shard = tmp_path / "shard-0.tar"
    dataset = load_dataset(f"wds:{shard}")
    sampled = dataset.sample(6, seed=2)
    rows = {int(origin.rsplit(" ", 1)[1]) for origin in sampled.origins or []}
    corrupt_images(shard, keep=rows)
    embeddings = embed_pairs(sampled, PixelStatistics(), batch_size=4, num_workers=2)
    assert embeddings.image.shape == (6, 8)
    with pytest.raises(
        DatasetError, match=r"Cannot read image member 000000\.png of .*shard-0\.tar"
    ):
        embed_pairs(dataset.sample(None), PixelStatistics(), batch_size=4, num_workers=0)


def read_chars() -> int:
    """Bytes this process has read through read(2) and friends so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar line")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_the_index_reads_headers_not_member_data(tmp_path: Path) -> None:
    big = np.random.default_rng(0).bytes(400_000)
    members = []
    for key in range(20):
        members += [(f"{key:03d}.jpg", big), (f"{key:03d}.txt", b"caption")]
    shard = write_tar(tmp_path / "big.tar", members)
    WebDatasetPairs(str(shard))  # warm up imports
    before = read_chars()
    dataset = WebDatasetPairs(str(shard))
    sampled = dataset.sample(3, seed=0)
    index_and_captions = read_chars() - before
    assert shard.stat().st_size > 8_000_000
    assert index_and_captions < 200_000, index_and_captions  # 40 headers + 3 captions, not 8 MB
    before = read_chars()
    assert [len(image.read()) for image in sampled.images if isinstance(image, TarMember)] == [
        400_000
    ] * 3
    assert read_chars() - before < 1_300_000


def test_a_member_shortened_after_indexing_is_named(tmp_path: Path) -> None:
    shard = write_tar(tmp_path / "s.tar", sample_members("0") + sample_members("1"))
    pairs = load_dataset(f"wds:{shard}").sample(None)
    shard.write_bytes(shard.read_bytes()[:600])
    image = pairs.images[1]
    assert isinstance(image, TarMember)
    with pytest.raises(
        DatasetError, match=r"s\.tar is shorter than when it was indexed: member 1\.jpg"
    ):
        image.read()
    with pytest.raises(DatasetError, match=r"s\.tar is shorter .* member 0\.jpg"):
        PairSet("x", list(pairs.images), list(pairs.texts)).fingerprint()


def test_shards_are_read_in_natural_name_order(tmp_path: Path) -> None:
    for number in (10, 2, 1):
        write_tar(
            tmp_path / f"part-{number}.tar", sample_members(f"{number:03d}", f"caption {number}")
        )
    for spec in (
        f"wds:{tmp_path}",
        f"wds:{tmp_path}/part-*.tar",
        f"wds:{tmp_path}/part-{{1,2,10}}.tar",
    ):
        assert list(load_dataset(spec).sample(None).texts) == [
            "caption 1",
            "caption 2",
            "caption 10",
        ]


def test_shards_without_samples_are_refused(tmp_path: Path) -> None:
    shard = write_tar(tmp_path / "s.tar", [("README", b"no samples here"), ("__meta__", b"x")])
    with pytest.raises(DatasetError, match=r"shard\(s\) hold no samples"):
        load_dataset(f"wds:{shard}")
