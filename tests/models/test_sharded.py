"""Sharded embeddings (``modgap embed --out DIR``): the writer, ``read_sharded`` and ``embeddings:DIR``."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytest_modgap.errors import EncoderError
from pytest_modgap.models.precomputed import PrecomputedEmbeddings
from pytest_modgap.models.sharded import ORPHAN_AGE_S, ShardedEmbeddingsWriter, read_sharded

DIM = 3


def rows_and_vectors(seed: int = 0) -> dict[str, np.ndarray]:
    """Seven pairs over five distinct texts (repeated, and a second caption column), labels."""
    rng = np.random.default_rng(seed)
    return {
        "image": rng.normal(size=(7, DIM)).astype(np.float32),
        "texts": rng.normal(size=(5, DIM)).astype(np.float32),
        "text_index": np.array([4, 0, 2, 2, 1, 3, 0]),
        "text2_index": np.array([1, 1, 3, 4, 0, 2, 4]),
        "groups": np.array([0, 1, 0, 2, 1, 1, 0]),
    }


def writer_for(
    folder: Path, data: dict[str, np.ndarray], *, shard_rows: int = 3, second: bool = True
) -> ShardedEmbeddingsWriter:
    return ShardedEmbeddingsWriter(
        folder,
        text_index=data["text_index"],
        text2_index=data["text2_index"] if second else None,
        groups=data["groups"] if second else None,
        n_texts=len(data["texts"]),
        metadata={"model": "tiny", "dataset": "toy"},
        shard_rows=shard_rows,
    )


def write_folder(folder: Path, data: dict[str, np.ndarray], *, second: bool = True) -> Path:
    """Every row, out of order and in several add calls, texts and images interleaved."""
    image_order = [[5, 1], [6], [0, 3], [2, 4]]
    text_order = [[3], [0, 4], [2, 1]]
    with writer_for(folder, data, second=second) as writer:
        for i in range(max(len(image_order), len(text_order))):
            if i < len(image_order):
                rows = np.array(image_order[i])
                writer.add("image", rows, data["image"][rows])
            if i < len(text_order):
                rows = np.array(text_order[i])
                writer.add("text", rows, data["texts"][rows])
    return folder


def manifest_of(folder: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((folder / "manifest.json").read_text("utf-8"))
    return loaded


def rewrite_manifest(folder: Path, manifest: dict[str, object]) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest), "utf-8")


def test_rows_added_out_of_order_read_back_in_pair_order_from_several_shards(
    tmp_path: Path,
) -> None:
    data = rows_and_vectors()
    folder = write_folder(tmp_path / "out", data)
    shards = manifest_of(folder)["shards"]
    assert isinstance(shards, list)
    kinds = [shard["kind"] for shard in shards]
    assert kinds.count("image") >= 2 and kinds.count("text") >= 2
    on_disk = {path.name for path in folder.iterdir()}
    assert on_disk == {"manifest.json", "pairs.npz", *(shard["file"] for shard in shards)}

    image, text, text2, groups = read_sharded(folder, f"embeddings:{folder}")
    np.testing.assert_array_equal(image, data["image"])
    np.testing.assert_array_equal(text, data["texts"][data["text_index"]])
    assert text2 is not None and groups is not None
    np.testing.assert_array_equal(text2, data["texts"][data["text2_index"]])
    np.testing.assert_array_equal(groups, data["groups"])
    assert image.dtype == text.dtype == np.float32

    loaded = PrecomputedEmbeddings(f"embeddings:{folder}", folder).load()
    for got, expected in zip(loaded, (image, text, text2, groups), strict=True):
        assert got is not None
        np.testing.assert_array_equal(got, expected)


def test_without_second_caption_and_groups_those_read_back_as_none(tmp_path: Path) -> None:
    data = rows_and_vectors(1)
    folder = write_folder(tmp_path / "out", data, second=False)
    image, text, text2, groups = read_sharded(folder, "embeddings:x")
    np.testing.assert_array_equal(image, data["image"])
    np.testing.assert_array_equal(text, data["texts"][data["text_index"]])
    assert text2 is None and groups is None


def test_manifest_records_metadata_counts_and_every_shard_hash(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "out", rows_and_vectors())
    manifest = manifest_of(folder)
    assert manifest["model"] == "tiny" and manifest["dataset"] == "toy"
    assert (manifest["pairs"], manifest["texts"], manifest["dim"]) == (7, 5, DIM)
    shards = manifest["shards"]
    assert isinstance(shards, list)
    assert sum(shard["rows"] for shard in shards if shard["kind"] == "image") == 7
    assert sum(shard["rows"] for shard in shards if shard["kind"] == "text") == 5
    for shard in shards:
        digest = hashlib.sha256((folder / shard["file"]).read_bytes()).hexdigest()
        assert shard["sha256"] == digest


@pytest.mark.parametrize("flushed", [True, False], ids=["in-an-earlier-shard", "still-pending"])
def test_a_row_added_twice_is_refused_and_nothing_is_left(tmp_path: Path, flushed: bool) -> None:
    data = rows_and_vectors()
    parent = tmp_path / "parent"
    with pytest.raises(EncoderError, match=r"image rows \[3\] arrived twice"):
        with writer_for(parent / "out", data, shard_rows=1 if flushed else 100) as writer:
            writer.add("image", np.array([3, 0]), data["image"][[3, 0]])
            writer.add("image", np.array([5, 3]), data["image"][[5, 3]])
    assert list(parent.iterdir()) == []


def test_a_row_repeated_within_one_add_is_refused_and_named(tmp_path: Path) -> None:
    data = rows_and_vectors()
    parent = tmp_path / "parent"
    with pytest.raises(EncoderError, match=r"text rows \[2\] arrived twice"):
        with writer_for(parent / "out", data) as writer:
            writer.add("text", np.array([2, 1, 2]), data["texts"][[2, 1, 2]])
    assert list(parent.iterdir()) == []


def test_rows_outside_the_data_set_are_refused(tmp_path: Path) -> None:
    data = rows_and_vectors()
    with pytest.raises(EncoderError, match="outside 0..4"):
        with writer_for(tmp_path / "out", data) as writer:
            writer.add("text", np.array([5]), data["texts"][:1])
    assert list(tmp_path.iterdir()) == []


def test_missing_rows_at_close_are_refused_and_nothing_is_left(tmp_path: Path) -> None:
    data = rows_and_vectors()
    parent = tmp_path / "parent"
    with pytest.raises(EncoderError, match=r"1 text rows never arrived \(first: \[4\]\)"):
        with writer_for(parent / "out", data) as writer:
            writer.add("image", np.arange(7), data["image"])
            writer.add("text", np.arange(4), data["texts"][:4])
    assert list(parent.iterdir()) == []


def test_close_without_context_manager_also_cleans_up_missing_rows(tmp_path: Path) -> None:
    data = rows_and_vectors()
    writer = writer_for(tmp_path / "out", data)
    writer.add("text", np.arange(5), data["texts"])
    with pytest.raises(EncoderError, match="7 image rows never arrived"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_an_output_folder_that_holds_a_file_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(EncoderError, match="already holds files"):
        writer_for(out, rows_and_vectors())
    assert [path.name for path in tmp_path.iterdir()] == ["out"]
    assert [path.name for path in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "mine"


def test_an_output_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("mine")
    with pytest.raises(EncoderError, match="is a file"):
        writer_for(out, rows_and_vectors())
    assert [path.name for path in tmp_path.iterdir()] == ["out"]
    assert out.read_text() == "mine"


def test_an_existing_empty_folder_is_accepted_and_receives_the_result(tmp_path: Path) -> None:
    data = rows_and_vectors()
    out = tmp_path / "out"
    out.mkdir()
    write_folder(out, data)
    assert [path.name for path in tmp_path.iterdir()] == ["out"]
    image, _, _, _ = read_sharded(out, "embeddings:x")
    np.testing.assert_array_equal(image, data["image"])


def test_a_shard_changed_after_writing_is_refused_naming_it(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "out", rows_and_vectors())
    shard = folder / "text-00001.npz"
    content = bytearray(shard.read_bytes())
    content[len(content) // 2] ^= 0x01
    shard.write_bytes(bytes(content))
    with pytest.raises(EncoderError, match=r"text-00001\.npz .*SHA-256 differs") as error:
        PrecomputedEmbeddings(f"embeddings:{folder}", folder).load()
    assert str(folder) in str(error.value)


def test_a_changed_pairs_file_is_refused_naming_it(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "out", rows_and_vectors())
    pairs = folder / "pairs.npz"
    content = bytearray(pairs.read_bytes())
    content[-10] ^= 0x01
    pairs.write_bytes(bytes(content))
    with pytest.raises(EncoderError, match=r"pairs\.npz .*SHA-256 differs"):
        read_sharded(folder, "embeddings:x")


def test_a_manifest_naming_a_file_outside_the_folder_is_refused(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "out", rows_and_vectors())
    manifest = manifest_of(folder)
    shards = manifest["shards"]
    assert isinstance(shards, list)
    # A well-formed shard outside the folder with its true hash: only the name check stops it.
    outside = tmp_path / "x.npz"
    outside.write_bytes((folder / shards[0]["file"]).read_bytes())
    (folder / shards[0]["file"]).unlink()
    shards[0]["file"] = "../x.npz"
    rewrite_manifest(folder, manifest)
    with pytest.raises(EncoderError, match="manifest.json lacks counts, shards or the pairs file"):
        read_sharded(folder, "embeddings:x")


def test_a_manifest_that_is_not_json_is_refused_naming_it(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "out", rows_and_vectors())
    (folder / "manifest.json").write_text('{"format": "pytest-modgap-embeddings/1", ', "utf-8")
    with pytest.raises(EncoderError, match=r"manifest\.json cannot be read as JSON"):
        PrecomputedEmbeddings(f"embeddings:{folder}", folder).load()


def test_a_manifest_of_another_format_is_refused(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "out", rows_and_vectors())
    manifest = manifest_of(folder)
    manifest["format"] = "something-else/1"
    rewrite_manifest(folder, manifest)
    with pytest.raises(EncoderError, match="is not a pytest-modgap-embeddings/1 manifest"):
        read_sharded(folder, "embeddings:x")


def test_a_shard_listed_twice_is_refused(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "out", rows_and_vectors())
    manifest = manifest_of(folder)
    shards = manifest["shards"]
    assert isinstance(shards, list)
    image_shards = [shard for shard in shards if shard["kind"] == "image"]
    shards.append(dict(image_shards[0]))
    rewrite_manifest(folder, manifest)
    with pytest.raises(EncoderError, match="repeats rows of another shard"):
        read_sharded(folder, "embeddings:x")


def test_a_missing_shard_is_refused(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "out", rows_and_vectors())
    (folder / "image-00000.npz").unlink()
    with pytest.raises(EncoderError, match=r"image-00000\.npz cannot be read"):
        read_sharded(folder, "embeddings:x")


def test_a_shard_dropped_from_the_manifest_leaves_rows_in_no_shard(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "out", rows_and_vectors())
    manifest = manifest_of(folder)
    shards = manifest["shards"]
    assert isinstance(shards, list)
    dropped = next(shard for shard in shards if shard["kind"] == "text")
    shards.remove(dropped)
    rewrite_manifest(folder, manifest)
    with pytest.raises(EncoderError, match=f"{dropped['rows']} text rows are in no shard"):
        read_sharded(folder, "embeddings:x")


def test_a_folder_without_manifest_is_refused_as_embeddings(tmp_path: Path) -> None:
    folder = tmp_path / "vectors"
    folder.mkdir()
    (folder / "image-00000.npz").write_bytes(b"")
    with pytest.raises(EncoderError, match="is a folder without a manifest.json"):
        PrecomputedEmbeddings(f"embeddings:{folder}", folder)


def test_fingerprint_of_a_folder_follows_its_vectors(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    write_folder(folder, rows_and_vectors(0))
    first = PrecomputedEmbeddings(f"embeddings:{folder}", folder).fingerprint()
    assert first == PrecomputedEmbeddings(f"embeddings:{folder}", folder).fingerprint()
    assert first.startswith("sharded-sha256:")

    changed = rows_and_vectors(0)
    changed["image"][4, 1] += 1.0
    for path in folder.iterdir():
        path.unlink()
    write_folder(folder, changed)
    second = PrecomputedEmbeddings(f"embeddings:{folder}", folder).fingerprint()
    assert second != first


@pytest.mark.parametrize("later", ["image", "text"])
def test_vectors_of_another_width_in_a_later_add_are_refused(tmp_path: Path, later: str) -> None:
    data = rows_and_vectors()
    with pytest.raises(EncoderError, match=f"{later} vectors of width 4 after width {DIM}"):
        with writer_for(tmp_path / "out", data) as writer:
            writer.add("image", np.array([0]), data["image"][:1])
            writer.add(later, np.array([1]), np.ones((1, 4), np.float32))  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_vectors_that_do_not_match_their_rows_are_refused(tmp_path: Path) -> None:
    data = rows_and_vectors()
    with pytest.raises(EncoderError, match="each row needs one vector"):
        with writer_for(tmp_path / "out", data) as writer:
            writer.add("image", np.array([0, 1]), data["image"][:1])
    assert list(tmp_path.iterdir()) == []


def test_every_shard_but_the_last_of_each_kind_holds_exactly_shard_rows(tmp_path: Path) -> None:
    data = rows_and_vectors()
    with writer_for(tmp_path / "out", data, shard_rows=2) as writer:
        writer.add("image", np.array([6, 5, 4]), data["image"][[6, 5, 4]])  # 3 rows: one shard
        writer.add("image", np.array([0, 1, 2, 3]), data["image"][[0, 1, 2, 3]])
        writer.add("text", np.arange(5), data["texts"])
    shards = manifest_of(tmp_path / "out")["shards"]
    assert isinstance(shards, list)
    sizes = {kind: [s["rows"] for s in shards if s["kind"] == kind] for kind in ("image", "text")}
    assert sizes == {"image": [2, 2, 2, 1], "text": [2, 2, 1]}
    image, *_ = read_sharded(tmp_path / "out", "embeddings:out")
    np.testing.assert_array_equal(image, data["image"])


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("pairs", 10**11, r"manifest\.json says 100000000000 pairs, but its image shards hold 7"),
        ("texts", 10**11, r"manifest\.json says 100000000000 texts, but its text shards hold 5"),
        ("dim", 10**9, r"shard image-00000\.npz is \d+ bytes, too small for 3 rows of 10+ values"),
    ],
)
def test_a_manifest_whose_counts_the_shards_cannot_hold_is_refused_before_allocating(
    tmp_path: Path, field: str, value: int, problem: str
) -> None:
    folder = write_folder(tmp_path / "out", rows_and_vectors())
    manifest = manifest_of(folder)
    manifest[field] = value
    rewrite_manifest(folder, manifest)
    with pytest.raises(EncoderError, match=problem):
        read_sharded(folder, "embeddings:x")


def test_a_manifest_whose_shard_claims_more_rows_than_its_file_holds_is_refused(
    tmp_path: Path,
) -> None:
    folder = write_folder(tmp_path / "out", rows_and_vectors())
    manifest = manifest_of(folder)
    shards = manifest["shards"]
    assert isinstance(shards, list)
    image_shards = [shard for shard in shards if shard["kind"] == "image"]
    added = 10**11
    image_shards[0]["rows"] += added
    manifest["pairs"] = 7 + added
    rewrite_manifest(folder, manifest)
    with pytest.raises(EncoderError, match=r"too small for 100000000003 rows of 3 values"):
        read_sharded(folder, "embeddings:x")


KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
import numpy as np
from pytest_modgap.models.sharded import ShardedEmbeddingsWriter
writer = ShardedEmbeddingsWriter(
    Path(sys.argv[1]), text_index=np.arange(4), n_texts=4, shard_rows=2
)
writer.add("image", np.arange(4), np.ones((4, 3), np.float32))
os.kill(os.getpid(), signal.SIGKILL)
"""


def age(path: Path, seconds: float) -> None:
    """Move ``path``'s modification time ``seconds`` into the past."""
    stamp = path.stat().st_mtime - seconds
    os.utime(path, (stamp, stamp))


def test_the_folder_of_a_killed_writer_is_swept_by_the_next_writer_of_that_out(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(out)], check=False)
    assert killed.returncode == -signal.SIGKILL
    (orphan,) = tmp_path.iterdir()
    assert orphan.name.startswith(".out.") and any(orphan.iterdir())
    other = tmp_path / ".other.abc123.tmp"
    other.mkdir()
    for path in (orphan, other):
        age(path, 2 * ORPHAN_AGE_S)
    data = rows_and_vectors()
    write_folder(out, data)
    assert sorted(path.name for path in tmp_path.iterdir()) == [".other.abc123.tmp", "out"]


def test_a_live_writers_folder_is_never_swept_however_old(tmp_path: Path) -> None:
    data = rows_and_vectors()
    out = tmp_path / "out"
    live = writer_for(out, data)
    live.add("image", np.arange(7), data["image"])
    (temp,) = tmp_path.iterdir()
    age(temp, 10 * ORPHAN_AGE_S)
    young = tmp_path / ".out.young12.tmp"
    young.mkdir()
    with pytest.raises(EncoderError, match="never arrived"):
        with writer_for(out, data):
            pass
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([temp.name, young.name])
    live.add("text", np.arange(5), data["texts"])
    live.close()
    np.testing.assert_array_equal(read_sharded(out, "embeddings:x")[0], data["image"])
