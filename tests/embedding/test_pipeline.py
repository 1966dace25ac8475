"""The embedding pipeline: order, batching, workers, the three image paths, errors and the cache."""

from __future__ import annotations

import io
import sys
import warnings
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.embedding import pipeline
from pytest_modgap.embedding.cache import CacheWarning, EmbeddingCache
from pytest_modgap.embedding.pipeline import (
    Embeddings,
    _embed_images_on_device,
    embed_pairs,
    embed_pairs_cached,
    image_pipeline,
)
from pytest_modgap.embedding.progress import Progress, progress_enabled
from pytest_modgap.errors import DatasetError, EncoderError
from pytest_modgap.models.base import Encoder, ImagePreprocessing, PixelEncoder
from pytest_modgap.models.loader import load_encoder

DIM = 8
PREP = ImagePreprocessing(
    height=16,
    width=16,
    shortest_edge=16,
    center_crop=True,
    crop_height=16,
    crop_width=16,
    rescale_factor=1 / 255,
    mean=(0.5, 0.5, 0.5),
    std=(0.25, 0.25, 0.25),
    resample="bicubic",
)


def text_vector(text: str) -> torch.Tensor:
    """A deterministic embedding of one string that depends on nothing else in its batch."""
    seed = zlib.crc32(text.encode())
    return torch.randn(DIM, generator=torch.Generator().manual_seed(seed))


class FakeTextEncoding:
    def __init__(self) -> None:
        self.text_batches: list[list[str]] = []

    def fingerprint(self) -> str:
        return "fake-v1"

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        self.text_batches.append(list(texts))
        return torch.stack([text_vector(t) for t in texts])


class FakePixelEncoder(FakeTextEncoding):
    """A PixelEncoder whose image tower is a fixed linear map of the preprocessed pixels."""

    spec = "fake-pixel"
    device = torch.device("cpu")
    dtype = torch.float32
    preprocessing = PREP

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.randn(3 * 16 * 16, DIM, generator=torch.Generator().manual_seed(0))
        self.pixel_batches = 0

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        from pytest_modgap.embedding.gpu_preprocess import preprocess_batch

        tensors = [torch.from_numpy(np.array(image)).permute(2, 0, 1) for image in images]
        return preprocess_batch(tensors, PREP, "cpu")

    def forward_pixels(self, pixel_values: torch.Tensor) -> torch.Tensor:
        self.pixel_batches += 1
        return (pixel_values.flatten(1) @ self.weight).to(torch.bfloat16)

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return self.forward_pixels(self.preprocess(images))


class FakePlainEncoder(FakeTextEncoding):
    """A generic Encoder: mean colour and size of each PIL image, projected to DIM."""

    spec = "fake-plain"

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        rows = []
        for image in images:
            array = np.asarray(image, dtype=np.float64)
            rows.append([*array.mean(axis=(0, 1)) / 255, image.width / 100, image.height / 100])
        features = torch.tensor(rows, dtype=torch.float64)
        return torch.cat([features, features.square(), features[:, :3].sqrt()], dim=1)


def picture(seed: int, size: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    base = np.stack([(xx * (c + 1) + yy * seed) % 256 for c in range(3)], axis=-1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> PairSet:
    """11 pairs: JPEG and PNG files of several sizes and in-memory arrays; texts of mixed length."""
    folder = tmp_path_factory.mktemp("images")
    images: list[Path | np.ndarray] = []
    sizes = [(20, 30), (32, 32), (40, 18), (17, 25)]
    for i in range(11):
        array = picture(i, sizes[i % 4])
        if i % 3 == 0:
            images.append(array)
            continue
        path = folder / f"img{i}.{'jpg' if i % 3 == 1 else 'png'}"
        Image.fromarray(array).save(path)
        images.append(path)
    texts = [("word " * ((7 * i) % 5 + 1)) + str(i) for i in range(11)]
    return PairSet(
        name="toy",
        images=images,
        texts=texts,
        texts2=[f"another caption {i}" + "!" * (i % 4) for i in range(11)],
        origins=[f"toy.jsonl line {i + 1}" for i in range(11)],
    )


def expected_text(texts: Sequence[str]) -> np.ndarray:
    return torch.stack([text_vector(t) for t in texts]).numpy()


def expected_images(encoder: Encoder, pairs: PairSet) -> np.ndarray:
    rows = []
    for source in pairs.images:
        image = Image.fromarray(source) if isinstance(source, np.ndarray) else Image.open(source)
        rows.append(encoder.encode_images([image.convert("RGB")]).float())
    return torch.cat(rows).numpy()


@pytest.mark.parametrize("encoder_type", [FakePixelEncoder, FakePlainEncoder])
@pytest.mark.parametrize("batch_size", [1, 4, 11, 64])
def test_rows_follow_the_pairs_for_any_batch_size(
    pairs: PairSet, encoder_type: type[FakePixelEncoder | FakePlainEncoder], batch_size: int
) -> None:
    encoder = encoder_type()
    assert isinstance(encoder, Encoder)
    result = embed_pairs(pairs, encoder, batch_size=batch_size, num_workers=2)
    assert result.image.dtype == result.text.dtype == np.float32
    np.testing.assert_allclose(result.image, expected_images(encoder, pairs), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(result.text, expected_text(pairs.texts))
    assert result.text2 is not None
    np.testing.assert_array_equal(result.text2, expected_text(pairs.texts2 or []))


def test_texts_are_batched_by_length_and_each_distinct_text_encoded_once(pairs: PairSet) -> None:
    encoder = FakePlainEncoder()
    repeated = PairSet(
        name="toy",
        images=pairs.images,
        texts=pairs.texts,
        texts2=[pairs.texts[0]] * len(pairs),  # one caption shared by every pair
    )
    result = embed_pairs(repeated, encoder, batch_size=4, num_workers=0)
    encoded = [text for batch in encoder.text_batches for text in batch]
    assert sorted(encoded) == sorted(set(pairs.texts))
    assert all(len(batch) == 4 for batch in encoder.text_batches[:-1])
    lengths = [len(t) for t in encoded]
    assert lengths == sorted(lengths)
    assert result.text2 is not None
    np.testing.assert_array_equal(result.text2, np.repeat(result.text[:1], len(pairs), axis=0))


def test_without_texts2(pairs: PairSet) -> None:
    plain = PairSet(name="toy", images=pairs.images, texts=pairs.texts)
    result = embed_pairs(plain, FakePlainEncoder(), batch_size=5, num_workers=0)
    assert result.text2 is None and len(result) == len(plain)


@pytest.mark.parametrize("encoder_type", [FakePixelEncoder, FakePlainEncoder])
def test_workers_give_the_same_result_as_serial(
    pairs: PairSet, encoder_type: type[FakePixelEncoder | FakePlainEncoder]
) -> None:
    serial = embed_pairs(pairs, encoder_type(), batch_size=3, num_workers=0)
    threaded = embed_pairs(pairs, encoder_type(), batch_size=3, num_workers=4)
    np.testing.assert_array_equal(serial.image, threaded.image)
    np.testing.assert_array_equal(serial.text, threaded.text)


def broken(pairs: PairSet, index: int, image: Path | np.ndarray) -> PairSet:
    images = list(pairs.images)
    images[index] = image
    return PairSet(name="toy", images=images, texts=pairs.texts, origins=pairs.origins)


def bad_files(folder: Path) -> dict[str, Path]:
    good = io.BytesIO()
    Image.fromarray(picture(1, (30, 30))).save(good, format="JPEG")
    files = {
        "garbage": b"this is not an image",
        "truncated": good.getvalue()[:200],
        "empty": b"",
    }
    paths = {}
    for name, data in files.items():
        paths[name] = folder / f"{name}.jpg"
        paths[name].write_bytes(data)
    paths["missing"] = folder / "missing.png"
    return paths


@pytest.mark.parametrize("encoder_type", [FakePixelEncoder, FakePlainEncoder])
@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty", "missing"])
def test_unreadable_image_names_file_and_origin(
    pairs: PairSet,
    tmp_path: Path,
    encoder_type: type[FakePixelEncoder | FakePlainEncoder],
    kind: str,
) -> None:
    bad = bad_files(tmp_path)[kind]
    with pytest.raises(DatasetError) as info:
        embed_pairs(broken(pairs, 7, bad), encoder_type(), batch_size=4, num_workers=2)
    message = str(info.value)
    assert str(bad) in message and "toy.jsonl line 8" in message


def test_array_that_is_not_rgb_uint8_is_a_dataset_error(pairs: PairSet) -> None:
    gray = np.zeros((8, 8), dtype=np.uint8)
    with pytest.raises(DatasetError, match="toy.jsonl line 3.*HxWx3 uint8"):
        embed_pairs(broken(pairs, 2, gray), FakePlainEncoder(), batch_size=4, num_workers=0)


def pil_jpeg_decoder(data: list[torch.Tensor]) -> list[torch.Tensor]:
    """Stands in for nvJPEG on CPU; rejects a batch containing a JPEG it 'cannot' decode."""
    out = []
    for tensor in data:
        raw = tensor.numpy().tobytes()
        if b"REJECT" in raw:
            raise RuntimeError("nvjpeg: unsupported JPEG")
        out.append(torch.from_numpy(np.array(Image.open(io.BytesIO(raw)).convert("RGB"))))
    return [t.permute(2, 0, 1) for t in out]


def run_device_path(pairs: PairSet, encoder: FakePixelEncoder) -> np.ndarray:
    bar = Progress(len(pairs), "test", enabled=False)
    with ThreadPoolExecutor(2) as pool, torch.inference_mode():
        return _embed_images_on_device(pairs, encoder, 4, pool, 2, bar, pil_jpeg_decoder)


def test_device_path_matches_processor_path(pairs: PairSet) -> None:
    """The GPU path's logic (bytes in workers, batched JPEG decode, tensor resize) run on CPU."""
    encoder = FakePixelEncoder()
    on_device = run_device_path(pairs, encoder)
    with_processor = embed_pairs(pairs, encoder, batch_size=4, num_workers=2).image
    np.testing.assert_allclose(on_device, with_processor, rtol=1e-5, atol=1e-5)


def test_device_path_falls_back_to_pil_for_jpegs_the_decoder_rejects(
    pairs: PairSet, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    Image.fromarray(picture(5, (24, 24))).save(buffer, format="JPEG")
    # A JPEG comment segment (FF FE) right after SOI: valid for PIL, 'unsupported' for the fake.
    comment = b"\xff\xfe\x00\x08REJECT"
    odd = tmp_path / "odd.jpg"
    odd.write_bytes(buffer.getvalue()[:2] + comment + buffer.getvalue()[2:])
    with_odd = broken(pairs, 4, odd)
    encoder = FakePixelEncoder()
    np.testing.assert_allclose(
        run_device_path(with_odd, encoder), expected_images(encoder, with_odd), atol=1e-5
    )


def test_device_path_reports_corrupt_jpeg(pairs: PairSet, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff" + b"REJECT and not a JPEG")
    with pytest.raises(DatasetError, match=r"bad\.jpg.*toy\.jsonl line 6"):
        run_device_path(broken(pairs, 5, bad), FakePixelEncoder())


def test_pipeline_choice_on_cpu() -> None:
    assert image_pipeline(FakePixelEncoder()) == "processor"
    assert image_pipeline(FakePlainEncoder()) == "pil"
    assert isinstance(FakePixelEncoder(), PixelEncoder)


def test_encoder_returning_wrong_rows_is_an_encoder_error(pairs: PairSet) -> None:
    class Short(FakePlainEncoder):
        def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
            return super().encode_texts(texts)[:-1]

    with pytest.raises(EncoderError, match="one row per input"):
        embed_pairs(pairs, Short(), batch_size=4, num_workers=0)


def test_progress_bar_only_when_asked(pairs: PairSet, capsys: pytest.CaptureFixture[str]) -> None:
    embed_pairs(pairs, FakePlainEncoder(), batch_size=4, num_workers=0)
    assert capsys.readouterr().err == ""  # captured stderr is not a terminal
    embed_pairs(pairs, FakePlainEncoder(), batch_size=4, num_workers=0, progress=True)
    err = capsys.readouterr().err
    assert "modgap: embedding toy" in err and "33/33" in err and err.endswith("\n")


def test_cached_embedding_skips_the_encoder(pairs: PairSet, tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    first_encoder = FakePixelEncoder()
    first = embed_pairs_cached(pairs, first_encoder, cache, batch_size=4, num_workers=0)
    second_encoder = FakePixelEncoder()
    second = embed_pairs_cached(pairs, second_encoder, cache, batch_size=4, num_workers=0)
    assert first_encoder.pixel_batches == 3 and second_encoder.pixel_batches == 0
    assert isinstance(second, Embeddings)
    np.testing.assert_array_equal(first.image, second.image)
    fewer = pairs.subset(range(5))
    third_encoder = FakePixelEncoder()
    embed_pairs_cached(fewer, third_encoder, cache, batch_size=4, num_workers=0)
    assert third_encoder.pixel_batches == 2  # other data, other key


CHECKPOINT_FACTORY = """
from pathlib import Path

import numpy as np

class Model:
    def __init__(self):
        self.weights = np.load(Path(__file__).with_name("checkpoint.npy"))

    def encode_images(self, images):
        return np.stack([np.asarray(i, dtype=np.float32).mean((0, 1)) for i in images]) @ self.weights

    def encode_texts(self, texts):
        return np.array([[len(t), t.count(" "), 1.0] for t in texts], dtype=np.float32) @ self.weights

def build():
    return Model()
"""


def test_factory_loading_a_new_checkpoint_under_the_same_spec_is_embedded_again(
    pairs: PairSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A factory object without fingerprint() is never cached, so a regressed checkpoint counts."""
    (tmp_path / "checkpoint_factory.py").write_text(CHECKPOINT_FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "checkpoint_factory", raising=False)
    monkeypatch.setattr(pipeline, "_warned_uncached", set())
    cache = EmbeddingCache(tmp_path / "cache")
    runs, warned = [], []
    for seed in (1, 2):
        np.save(tmp_path / "checkpoint.npy", np.random.default_rng(seed).normal(size=(3, 4)))
        encoder = load_encoder("checkpoint_factory:build", device="cpu")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            runs.append(embed_pairs_cached(pairs, encoder, cache, batch_size=4, num_workers=0))
        warned += [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
        fresh = embed_pairs(pairs, encoder, batch_size=4, num_workers=0)
        np.testing.assert_allclose(runs[-1].image, fresh.image, err_msg="a stale cache entry")
    assert not np.allclose(runs[0].image, runs[1].image)
    assert len(warned) == 1 and "fingerprint() method" in warned[0], "one warning per spec"
    assert not list((tmp_path / "cache").glob("*.npz")), "an entry no run may ever read"


def test_progress_defaults_to_whether_stderr_is_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert progress_enabled(None, Terminal())
    assert not progress_enabled(None, io.StringIO())
    assert not progress_enabled(False, Terminal())
    assert progress_enabled(True, io.StringIO())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_path_end_to_end(pairs: PairSet) -> None:
    pytest.importorskip("torchvision.io")

    class CudaEncoder(FakePixelEncoder):
        device = torch.device("cuda")

        def forward_pixels(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return pixel_values.flatten(1) @ self.weight.to(pixel_values.device)

    encoder = CudaEncoder()
    assert image_pipeline(encoder) == "device"
    on_gpu = embed_pairs(pairs, encoder, batch_size=4, num_workers=2)
    reference = expected_images(FakePixelEncoder(), pairs)
    # nvJPEG's IDCT differs from libjpeg's by a level here and there: close, not bit-equal.
    scale = np.abs(reference).mean()
    assert np.abs(on_gpu.image - reference).mean() < 0.05 * scale
