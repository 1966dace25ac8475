"""``embeddings:file.npz``: loading, validation and fingerprints of precomputed vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_modgap.errors import EncoderError
from pytest_modgap.models.loader import load_encoder
from pytest_modgap.models.precomputed import PrecomputedEmbeddings


def write(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return f"embeddings:{path}"


def load(spec: str) -> PrecomputedEmbeddings:
    loaded = load_encoder(spec)
    assert isinstance(loaded, PrecomputedEmbeddings)
    return loaded


def test_image_and_text_load_with_optional_arrays_absent(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image, text = rng.normal(size=(4, 8)), rng.normal(size=(4, 8)).astype(np.float32)
    image_out, text_out, text2, groups = load(
        write(tmp_path / "e.npz", image=image, text=text)
    ).load()
    np.testing.assert_array_equal(image_out, image)
    np.testing.assert_array_equal(text_out, text)
    assert text2 is None and groups is None


def test_text2_and_groups_load(tmp_path: Path) -> None:
    ones = np.ones((3, 2), dtype=np.float16)
    spec = write(tmp_path / "e.npz", image=ones, text=ones, text2=ones, groups=np.array([0, 0, 1]))
    _, _, text2, groups = load(spec).load()
    assert text2 is not None and text2.shape == (3, 2)
    assert groups is not None and groups.tolist() == [0, 0, 1]


def test_fingerprint_follows_file_content(tmp_path: Path) -> None:
    path = tmp_path / "e.npz"
    first = load(write(path, image=np.ones((2, 2)), text=np.ones((2, 2)))).fingerprint()
    assert first == load(f"embeddings:{path}").fingerprint()
    second = load(write(path, image=np.ones((2, 2)), text=np.zeros((2, 2)))).fingerprint()
    assert first != second and first.startswith("npz-sha256:")


def test_missing_file_is_refused_at_load_encoder(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="does not exist") as error:
        load_encoder(f"embeddings:{tmp_path / 'absent.npz'}")
    assert "np.savez" in str(error.value)


@pytest.mark.parametrize(
    ("arrays", "pattern"),
    [
        ({"image": np.ones((2, 3))}, r"missing \['text'\]"),
        ({"image": np.ones((2, 3)), "text": np.ones((2, 3)), "txt2": np.ones((2, 3))}, "unknown"),
        ({"image": np.ones((2, 3)), "text": np.ones((3, 3))}, "shapes must be equal"),
        ({"image": np.ones((2, 3)), "text": np.ones((2, 4))}, "shapes must be equal"),
        ({"image": np.ones(3), "text": np.ones(3)}, "floating \\(N, d\\) matrix"),
        ({"image": np.ones((2, 3), dtype=np.int32), "text": np.ones((2, 3))}, "floating"),
        (
            {"image": np.ones((2, 3)), "text": np.ones((2, 3)), "text2": np.ones((2, 2))},
            "'text2' has shape",
        ),
        (
            {"image": np.ones((2, 3)), "text": np.ones((2, 3)), "groups": np.zeros(2)},
            "'groups' is float64",
        ),
        (
            {"image": np.ones((2, 3)), "text": np.ones((2, 3)), "groups": np.zeros(3, dtype=int)},
            "one integer label per pair",
        ),
    ],
)
def test_malformed_arrays_are_clear_errors(
    tmp_path: Path, arrays: dict[str, np.ndarray], pattern: str
) -> None:
    with pytest.raises(EncoderError, match=pattern):
        load(write(tmp_path / "e.npz", **arrays)).load()


def test_object_arrays_are_refused_without_unpickling(tmp_path: Path) -> None:
    ragged = np.array([np.ones(2), np.ones(3)], dtype=object)
    spec = write(tmp_path / "e.npz", image=ragged, text=np.ones((2, 3)))
    with pytest.raises(EncoderError, match="object arrays"):
        load(spec).load()


def test_non_npz_files_are_clear_errors(tmp_path: Path) -> None:
    npy = tmp_path / "e.npy"
    np.save(npy, np.ones((2, 3)))
    with pytest.raises(EncoderError, match="not an .npz archive"):
        load(f"embeddings:{npy}").load()
    text_file = tmp_path / "e.npz.txt"
    text_file.write_text("hello")
    with pytest.raises(EncoderError, match="Embeddings file"):
        load(f"embeddings:{text_file}").load()
