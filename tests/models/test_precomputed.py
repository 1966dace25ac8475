"""``embeddings:file.npz``: loading, validation and fingerprints of precomputed vectors."""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from pathlib import Path

import hypothesis.extra.numpy as npst
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pytest_modgap.errors import EncoderError, ModgapError
from pytest_modgap.metrics.inputs import prepare_embeddings
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


@pytest.mark.parametrize(
    ("rows", "pattern"),
    [(0, r"it holds 0 pair\(s\)"), (1, r"it holds 1 pair\(s\)")],
)
def test_fewer_than_two_rows_are_refused_naming_the_file(
    tmp_path: Path, rows: int, pattern: str
) -> None:
    path = tmp_path / "few.npz"
    spec = write(path, image=np.ones((rows, 4)), text=np.ones((rows, 4)))
    with pytest.raises(EncoderError, match=pattern) as error:
        load(spec).load()
    assert str(path) in str(error.value)


def test_an_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(EncoderError, match=r"it is empty \(0 bytes\)") as error:
        load(f"embeddings:{path}").load()
    assert str(path) in str(error.value) and "np.savez" in str(error.value)


def damaged_archives() -> dict[str, bytes]:
    """Zip files np.load cannot read, each for another reason."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, image=np.ones((3, 2)), text=np.ones((3, 2)))
    good = buffer.getvalue()
    archives = {"truncated": good[: len(good) // 2]}
    # Flip the deflate stream of the first member: zlib.error on reading.
    start = good.index(b"image.npy") + len(b"image.npy")
    archives["corrupt deflate"] = (
        good[:start] + bytes(b ^ 0x5A for b in good[start:][:40]) + (good[start + 40 :])
    )
    # Set the 'encrypted' flag bit of every header: RuntimeError (password required).
    encrypted = bytearray(good)
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = encrypted.find(signature)
        while at >= 0:
            encrypted[at + flags_at] |= 1
            at = encrypted.find(signature, at + 1)
    archives["encrypted"] = bytes(encrypted)
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("image.npy", b"not an npy file")
        archive.writestr("text.npy", b"nor this")
    archives["members that are not .npy"] = raw.getvalue()
    return archives


@pytest.mark.parametrize("kind", sorted(damaged_archives()))
def test_damaged_archives_are_clear_errors(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "damaged.npz"
    path.write_bytes(damaged_archives()[kind])
    with pytest.raises(EncoderError) as error:
        load(f"embeddings:{path}").load()
    assert str(path) in str(error.value)


def test_many_unknown_names_give_a_short_message(tmp_path: Path) -> None:
    arrays = {f"array_{i:05d}_" + "x" * 200: np.ones(1) for i in range(300)}
    spec = write(tmp_path / "e.npz", image=np.ones((2, 2)), text=np.ones((2, 2)), **arrays)
    with pytest.raises(EncoderError, match="unknown arrays") as error:
        load(spec).load()
    assert len(str(error.value)) < 1_500


# Fuzzing: whatever the file holds, only the project's own errors may escape the reader and the
# input check that follows it (prepare_embeddings, where NaN / inf / zero rows are refused).

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def fuzz_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "e.npz"


def read_checked(path: Path) -> None:
    """Load ``path`` as ``embeddings:`` and check its arrays like measure_embeddings does."""
    try:
        image, text, text2, groups = load(f"embeddings:{path}").load()
        prepare_embeddings(image, text, text2=text2, groups=groups)
    except ModgapError:
        pass


def valid_archive(compressed: bool) -> bytes:
    buffer = io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    save(buffer, image=np.ones((3, 2)), text=np.eye(3, 2), groups=np.arange(3))
    return buffer.getvalue()


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=600),
        st.binary(max_size=600).map(lambda tail: b"PK\x03\x04" + tail),
        st.binary(max_size=600).map(lambda tail: b"\x93NUMPY" + tail),
        st.builds(
            pickle.dumps,
            st.recursive(st.integers() | st.text(), lambda c: st.lists(c) | st.tuples(c, c)),
        ),
    )
)
def test_random_bytes_give_only_project_errors(fuzz_file: Path, data: bytes) -> None:
    fuzz_file.write_bytes(data)
    read_checked(fuzz_file)


@FUZZ
@given(
    compressed=st.booleans(),
    cut=st.none() | st.integers(min_value=0, max_value=4000),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=6),
)
def test_damaged_valid_archives_give_only_project_errors(
    fuzz_file: Path, compressed: bool, cut: int | None, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(valid_archive(compressed))
    for at, value in flips:
        data[at % len(data)] = value
    fuzz_file.write_bytes(bytes(data if cut is None else data[:cut]))
    read_checked(fuzz_file)


DTYPES = st.one_of(
    npst.floating_dtypes(),
    npst.integer_dtypes(),
    npst.unsigned_integer_dtypes(),
    npst.boolean_dtypes(),
    npst.complex_number_dtypes(),
    npst.unicode_string_dtypes(max_len=3),
    npst.byte_string_dtypes(max_len=3),
    npst.datetime64_dtypes(),
    npst.nested_dtypes(max_itemsize=32),
    st.just(np.dtype(np.longdouble)),
)
ARRAYS = st.one_of(
    npst.arrays(DTYPES, npst.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
    npst.arrays(np.float32, st.tuples(st.integers(0, 5), st.integers(0, 4))),
    st.lists(st.integers() | st.text(max_size=3) | st.none(), max_size=4).map(
        lambda items: np.array(items + [object()], dtype=object)  # pickled on save
    ),
)
NAMES = st.sampled_from(["image", "text", "text2", "groups", "extra"])


@st.composite
def matched_pair(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """'image' and 'text' of one shape and one random dtype, so the dtype checks are reached."""
    dtype = draw(DTYPES)
    shape = draw(st.tuples(st.integers(0, 4), st.integers(0, 3)))
    return {name: draw(npst.arrays(dtype, shape)) for name in ("image", "text")}


@FUZZ
@example(arrays={}, base={name: np.ones((3, 2), np.longdouble) for name in ("image", "text")})
@example(arrays={}, base={name: np.ones((0, 2), np.float32) for name in ("image", "text")})
@example(arrays={}, base={name: np.eye(3, 2, dtype=">f4") for name in ("image", "text")})
@given(
    arrays=st.dictionaries(NAMES, ARRAYS, max_size=5),
    base=st.none() | st.just({"image": np.ones((3, 2)), "text": np.eye(3, 2)}) | matched_pair(),
)
def test_random_arrays_give_only_project_errors(
    fuzz_file: Path, arrays: dict[str, np.ndarray], base: dict[str, np.ndarray] | None
) -> None:
    if base is not None:  # start from a matched pair so that the later checks are reached too
        arrays = {**base, **arrays} if "image" not in arrays else {**arrays, **base}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's warnings on saving odd dtypes
        np.savez(fuzz_file, **arrays)  # type: ignore[arg-type]
    read_checked(fuzz_file)
