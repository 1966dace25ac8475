"""Images given as bytes inside a container (a shard member, a Parquet row) embed exactly as the same
files on disk do, on every image path of the pipeline, and a bad one is named with its origin."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pytest_modgap.data.pairset import EncodedImage, InlineImage, PairSet
from pytest_modgap.embedding.pipeline import embed_pairs
from pytest_modgap.errors import DatasetError

from .test_pipeline import FakePixelEncoder, FakePlainEncoder, picture, run_device_path


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> PairSet:
    """9 pairs: JPEG and PNG files of several sizes and in-memory arrays."""
    folder = tmp_path_factory.mktemp("encoded")
    images: list[Path | np.ndarray] = []
    for i in range(9):
        array = picture(i, [(20, 30), (32, 32), (40, 18)][i % 3])
        if i % 3 == 0:
            images.append(array)
            continue
        path = folder / f"img{i}.{'jpg' if i % 3 == 1 else 'png'}"
        Image.fromarray(array).save(path)
        images.append(path)
    return PairSet(
        name="toy",
        images=images,
        texts=[f"caption {i}" for i in range(9)],
        origins=[f"toy.jsonl line {i + 1}" for i in range(9)],
    )


class CountingImage(EncodedImage):
    """Bytes read from a file on each ``read()``, counted: a stand-in for a shard member."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reads = 0

    def read(self) -> bytes:
        self.reads += 1
        return self.path.read_bytes()

    def __str__(self) -> str:
        return f"member {self.path.name} of shard.tar"


def as_encoded(pairs: PairSet, inline: bool) -> PairSet:
    images: list[Path | np.ndarray | EncodedImage] = []
    for image in pairs.images:
        if isinstance(image, Path):
            images.append(
                InlineImage(image.read_bytes(), image.name) if inline else CountingImage(image)
            )
        else:
            images.append(image)
    return replace(pairs, images=images)


@pytest.mark.parametrize("inline", [True, False])
@pytest.mark.parametrize("encoder_type", [FakePixelEncoder, FakePlainEncoder])
def test_encoded_images_embed_as_their_files_do(
    pairs: PairSet, inline: bool, encoder_type: type[FakePixelEncoder | FakePlainEncoder]
) -> None:
    encoded = as_encoded(pairs, inline)
    from_files = embed_pairs(pairs, encoder_type(), batch_size=4, num_workers=2)
    from_bytes = embed_pairs(encoded, encoder_type(), batch_size=4, num_workers=2)
    np.testing.assert_array_equal(from_bytes.image, from_files.image)
    assert encoded.fingerprint() == pairs.fingerprint()
    if not inline:
        assert all(image.reads == 2 for image in encoded.images if isinstance(image, CountingImage))


def test_device_path_reads_encoded_images(pairs: PairSet) -> None:
    encoder = FakePixelEncoder()
    np.testing.assert_array_equal(
        run_device_path(as_encoded(pairs, inline=False), encoder), run_device_path(pairs, encoder)
    )


def test_an_undecodable_member_names_itself_and_its_origin(pairs: PairSet) -> None:
    images = list(pairs.images)
    images[4] = InlineImage(b"not an image", "member 000004.jpg of shard-0.tar")
    broken = replace(pairs, images=images)
    for run in (
        lambda: embed_pairs(broken, FakePlainEncoder(), batch_size=4, num_workers=0),
        lambda: embed_pairs(broken, FakePixelEncoder(), batch_size=4, num_workers=0),
        lambda: run_device_path(broken, FakePixelEncoder()),
    ):
        with pytest.raises(
            DatasetError,
            match=r"Cannot read image member 000004\.jpg of shard-0\.tar \(toy\.jsonl line 5\)",
        ):
            run()
