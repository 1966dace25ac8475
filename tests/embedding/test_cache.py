"""The embedding cache: round trips, keys, corrupt entries, concurrent writers, no pickle."""

from __future__ import annotations

import multiprocessing
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from pytest_modgap.atomic import atomic_writer
from pytest_modgap.embedding import cache as cache_module
from pytest_modgap.embedding.cache import CacheWarning, EmbeddingCache, default_cache_dir
from pytest_modgap.embedding.embeddings import Embeddings

PARTS = {
    "encoder": "clip@abc123",
    "preprocessing": "shortest_edge=224",
    "dtype": "torch.bfloat16",
    "data": "f" * 64,
    "samples": "1000/seed=0",
}


def embeddings(seed: int, n: int = 50, d: int = 16, text2: bool = True) -> Embeddings:
    rng = np.random.default_rng(seed)
    return Embeddings(
        image=rng.normal(size=(n, d)).astype(np.float32),
        text=rng.normal(size=(n, d)).astype(np.float32),
        text2=rng.normal(size=(n, d)).astype(np.float32) if text2 else None,
    )


def assert_same(a: Embeddings, b: Embeddings) -> None:
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.text, b.text)
    if a.text2 is None:
        assert b.text2 is None
    else:
        assert b.text2 is not None
        np.testing.assert_array_equal(a.text2, b.text2)


@pytest.mark.parametrize("text2", [True, False])
def test_round_trip(tmp_path: Path, text2: bool) -> None:
    cache = EmbeddingCache(tmp_path / "nested" / "cache")
    key = cache.key(**PARTS)
    stored = embeddings(0, text2=text2)
    cache.put(key, stored)
    loaded = cache.get(key)
    assert loaded is not None
    assert loaded.image.dtype == np.float32
    assert_same(stored, loaded)


def test_miss_is_none(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.get(cache.key(**PARTS)) is None


def test_key_changes_with_every_part_and_not_with_order() -> None:
    base = EmbeddingCache.key(**PARTS)
    assert base == EmbeddingCache.key(**dict(reversed(list(PARTS.items()))))
    assert len(base) == 64 and int(base, 16) >= 0
    for name in PARTS:
        assert EmbeddingCache.key(**{**PARTS, name: PARTS[name] + "x"}) != base, name
    assert EmbeddingCache.key(**PARTS, extra="1") != base
    # Values are not simply concatenated: moving a character between parts is another key.
    assert EmbeddingCache.key(a="xy", b="z") != EmbeddingCache.key(a="x", b="yz")


def test_format_version_is_part_of_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    before = EmbeddingCache.key(**PARTS)
    monkeypatch.setattr(cache_module, "FORMAT_VERSION", "999")
    assert EmbeddingCache.key(**PARTS) != before


def test_key_must_come_from_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a key"):
        EmbeddingCache(tmp_path).get("../../etc/passwd")


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "empty", "wrong_dtype", "missing_array", "wrong_rows"],
)
def test_corrupt_entry_is_a_miss_with_a_warning_and_is_replaced(
    tmp_path: Path, damage: str
) -> None:
    cache = EmbeddingCache(tmp_path)
    key = cache.key(**PARTS)
    cache.put(key, embeddings(1))
    path = cache.path(key)
    good = path.read_bytes()
    version = np.array(cache_module.FORMAT_VERSION)
    ok = np.zeros((4, 2), np.float32)
    if damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "wrong_dtype":
        np.savez(path, format=version, image=ok.astype(np.float64), text=ok)
    elif damage == "missing_array":
        np.savez(path, format=version, image=ok)
    else:
        np.savez(path, format=version, image=ok, text=ok[:3])
    with pytest.warns(CacheWarning, match="unreadable embedding cache entry"):
        assert cache.get(key) is None
    replacement = embeddings(2)
    cache.put(key, replacement)
    loaded = cache.get(key)
    assert loaded is not None
    assert_same(replacement, loaded)


def test_entry_that_needs_pickle_is_never_unpickled(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    key = cache.key(**PARTS)
    objects = np.array([{"payload": "would run code"}], dtype=object)
    np.savez(cache.path(key), format=np.array(cache_module.FORMAT_VERSION), image=objects)
    with pytest.warns(CacheWarning):
        assert cache.get(key) is None


def test_unwritable_root_warns_instead_of_failing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    cache = EmbeddingCache(blocker / "cache")
    with pytest.warns(CacheWarning, match="MODGAP_CACHE_DIR"):
        cache.put(cache.key(**PARTS), embeddings(0))


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODGAP_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "explicit"
    assert EmbeddingCache().root == tmp_path / "explicit"
    monkeypatch.delenv("MODGAP_CACHE_DIR")
    assert default_cache_dir() == tmp_path / "xdg" / "pytest-modgap"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "pytest-modgap"


def _write_repeatedly(root: str, key: str, seed: int, times: int) -> None:
    cache = EmbeddingCache(Path(root))
    for _ in range(times):
        cache.put(key, embeddings(seed, n=2000, d=64))


def test_concurrent_writers_never_leave_a_broken_entry(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    key = cache.key(**PARTS)
    seeds = [10, 11, 12]
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(target=_write_repeatedly, args=(str(tmp_path), key, seed, 15))
        for seed in seeds
    ]
    for writer in writers:
        writer.start()
    candidates = [embeddings(seed, n=2000, d=64) for seed in seeds]
    reads = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # a torn entry would warn: fail instead
        while any(writer.is_alive() for writer in writers):
            loaded = cache.get(key)
            if loaded is not None:
                reads += 1
                assert any(np.array_equal(loaded.image, c.image) for c in candidates)
        for writer in writers:
            writer.join()
        assert all(writer.exitcode == 0 for writer in writers)
        final = cache.get(key)
    assert final is not None
    assert any(np.array_equal(final.text, c.text) for c in candidates)
    assert [p.name for p in tmp_path.iterdir()] == [f"{key}.npz"]  # no temporary files left


def backdate(path: Path, seconds: float) -> Path:
    """Set the mtime of ``path`` ``seconds`` into the past, as a writer killed then would leave it."""
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def write(path: Path, age_s: float = 0.0) -> Path:
    path.write_bytes(b"some bytes")
    return backdate(path, age_s)


def test_temp_files_of_killed_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    key = cache.key(**PARTS)
    hours = 2 * 3600
    orphan = write(tmp_path / f".{key}.npz.k1ll3d_x.tmp", hours)
    live = write(tmp_path / f".{key}.npz.wr1t1ng_.tmp")
    kept = [
        live,
        write(tmp_path / f"{'e' * 64}.npz", hours),  # an entry, however old
        write(tmp_path / ".notes.txt.abcdefgh.tmp", hours),  # another writer's temp file
        write(tmp_path / f".{'e' * 63}.npz.abcdefgh.tmp", hours),  # not a key
    ]
    assert cache.get(key) is None
    assert not orphan.exists(), "a killed writer's temp file was left behind"
    assert all(path.exists() for path in kept)


def test_sweep_matches_the_atomic_writers_temp_names(tmp_path: Path) -> None:
    """A writer that stalled past the age limit loses its temp file and keeps the old entry."""
    cache = EmbeddingCache(tmp_path)
    key = cache.key(**PARTS)
    cache.put(key, embeddings(0))
    with pytest.raises(FileNotFoundError), atomic_writer(cache.path(key)) as handle:
        handle.write(b"a stalled write")
        (temp,) = tmp_path.glob(".*.tmp")
        backdate(temp, cache_module.ORPHAN_AGE_S + 60)
        assert cache.sweep() == [temp]
    loaded = cache.get(key)
    assert loaded is not None
    assert_same(loaded, embeddings(0))
