"""The embedding pipeline: a PairSet and an Encoder in, float32 image and text embeddings out.

Images are read, decoded and preprocessed in worker threads ahead of the model; on CUDA, JPEGs are
decoded and resized on the GPU. torch is imported on first use, so importing this module is cheap.
"""

from __future__ import annotations

import io
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from PIL import Image

from pytest_modgap.data.caption_bound import bounded_caption
from pytest_modgap.data.pairset import EncodedImage, PairSet
from pytest_modgap.embedding.cache import CacheWarning
from pytest_modgap.embedding.embeddings import Embeddings
from pytest_modgap.embedding.progress import Progress, progress_enabled
from pytest_modgap.embedding.rgb import exif_orientation, orient_tensor, to_rgb
from pytest_modgap.errors import DatasetError, EncoderError
from pytest_modgap.models.base import Encoder, PixelEncoder

if TYPE_CHECKING:
    import torch

    from pytest_modgap.embedding.cache import EmbeddingCache

T = TypeVar("T")

PREFETCH_BATCHES = 2
"""Batches loaded ahead of the one the model is working on."""

_JPEG_MAGIC = b"\xff\xd8\xff"
_PIL_READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
"""What PIL raises for missing, truncated, corrupt or unsupported files."""


def default_num_workers() -> int:
    """Worker threads for reading and decoding images: one per core, at most 16."""
    return min(16, os.cpu_count() or 1)


def image_pipeline(encoder: Encoder) -> str:
    """Which image path ``embed_pairs`` takes for ``encoder`` (part of cache keys).

    ``"device"``: bytes read on CPU, JPEGs decoded and everything resized on the encoder's CUDA
    device. ``"processor"``: the encoder's own processor on CPU, then ``forward_pixels``.
    ``"pil"``: decoded PIL images handed to ``encode_images``.
    """
    if not isinstance(encoder, PixelEncoder):
        return "pil"
    from pytest_modgap.embedding import gpu_preprocess

    if encoder.device.type == "cuda" and gpu_preprocess.supports(encoder.preprocessing):
        try:
            import torchvision.io  # noqa: F401
        except ImportError:
            return "processor"
        return "device"
    return "processor"


def embed_pairs(
    pairs: PairSet,
    encoder: Encoder,
    *,
    batch_size: int,
    num_workers: int | None = None,
    progress: bool | None = None,
) -> Embeddings:
    """Embed every image and text of ``pairs`` with ``encoder``, in the pairs' order.

    ``num_workers`` threads (default: one per core) read and decode images ``PREFETCH_BATCHES``
    batches ahead of the model; 0 does everything in the calling thread. Texts are encoded in
    batches of similar length (less padding) and put back in order; every distinct text is
    encoded once, so equal texts (class prompts) get identical rows. Besides ``texts`` (and
    ``texts2``), the further captions ``extra_texts`` and the zero-shot prompts ``class_texts``
    are embedded. ``progress`` shows a bar on stderr (``None``: only when stderr is a terminal). An
    image that cannot be read raises ``DatasetError`` naming the file and ``pairs.origin(i)``.
    """
    columns = TextColumns.of(pairs)
    total = len(pairs) + len(columns.distinct)
    with _run(pairs, total, batch_size, num_workers, progress) as (pool, parts, bar):
        images = _embed_images(pairs, encoder, batch_size, pool, parts, bar)
        vectors = _embed_texts(columns.distinct, encoder, batch_size, bar)
    return columns.embeddings(images, vectors)


@dataclass(frozen=True)
class TextColumns:
    """Every text a PairSet embeds, in one list of distinct strings, and where each column's
    rows are in it: ``texts``, ``texts2``, the further captions (with their images) and the
    zero-shot prompts."""

    distinct: list[str]
    text: np.ndarray
    text2: np.ndarray | None
    extra: np.ndarray | None
    extra_image: np.ndarray | None
    class_text: np.ndarray | None

    @classmethod
    def of(cls, pairs: PairSet, *, captions_only: bool = False) -> TextColumns:
        """The distinct texts of ``pairs``, in order of first appearance, and every column's rows;
        ``captions_only``: only ``texts`` and ``texts2`` (what an ``embeddings:`` file holds).
        Every text is cut to ``bounded_caption`` here, where all of them pass on their way to an
        encoder (local, Ray or ``modgap embed``): tokenizers truncate only after tokenizing."""
        index: dict[str, int] = {}

        def rows(texts: Sequence[str]) -> np.ndarray:
            return np.fromiter(
                (index.setdefault(bounded_caption(text), len(index)) for text in texts),
                np.int64,
                len(texts),
            )

        text = rows(pairs.texts)
        text2 = None if pairs.texts2 is None else rows(pairs.texts2)
        extra = extra_image = None
        if pairs.extra_texts is not None and not captions_only:
            flat = [caption for captions in pairs.extra_texts for caption in captions]
            counts = [len(captions) for captions in pairs.extra_texts]
            extra = rows(flat)
            extra_image = np.repeat(np.arange(len(pairs), dtype=np.int64), counts)
        prompts = None if captions_only else pairs.class_texts
        class_text = None if prompts is None else rows(prompts)
        return cls(list(index), text, text2, extra, extra_image, class_text)

    def embeddings(self, images: np.ndarray, vectors: np.ndarray) -> Embeddings:
        """The Embeddings of the pairs from their image rows and the distinct texts' rows."""

        def take(rows: np.ndarray | None) -> np.ndarray | None:
            return None if rows is None else vectors[rows]

        text = vectors[self.text]
        return Embeddings(
            image=images,
            text=text,
            text2=take(self.text2),
            extra_text=take(self.extra),
            extra_text_image=self.extra_image,
            class_text=take(self.class_text),
        )


def embed_images(
    pairs: PairSet,
    encoder: Encoder,
    *,
    batch_size: int,
    num_workers: int | None = None,
    progress: bool | None = None,
) -> np.ndarray:
    """Only the image column of ``embed_pairs``: (N, d) float32, row i for ``pairs.images[i]``."""
    with _run(pairs, len(pairs), batch_size, num_workers, progress) as (pool, parts, bar):
        return _embed_images(pairs, encoder, batch_size, pool, parts, bar)


@contextmanager
def _run(
    pairs: PairSet,
    total: int,
    batch_size: int,
    num_workers: int | None,
    progress: bool | None,
) -> Iterator[tuple[Executor, int, Progress]]:
    """The worker pool, progress bar and inference mode that one embedding run holds."""
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    workers = default_num_workers() if num_workers is None else num_workers
    if workers < 0:
        raise ValueError(f"num_workers must be 0 or more, got {workers}.")
    bar = Progress(
        total,
        f"modgap: embedding {pairs.name}",
        enabled=progress_enabled(progress),
    )
    pool: Executor = ThreadPoolExecutor(workers) if workers > 0 else _InlineExecutor()
    with bar, pool, torch.inference_mode():
        yield pool, max(1, workers), bar


def embed_pairs_cached(
    pairs: PairSet,
    encoder: Encoder,
    cache: EmbeddingCache | None,
    *,
    batch_size: int,
    num_workers: int | None = None,
    progress: bool | None = None,
    key_parts: Mapping[str, str] | None = None,
) -> Embeddings:
    """``embed_pairs``, read from ``cache`` when this model, recipe and data were embedded before.

    The key covers the encoder fingerprint, its preprocessing recipe and dtype, the image pipeline,
    the content of every pair (so sampling with another seed is another key) and ``key_parts``.
    ``cache=None`` always embeds, and so does an encoder whose fingerprint is None (a
    ``module:factory`` object without ``fingerprint()``), with a ``CacheWarning`` once per spec.
    """
    if cache is None:
        return embed_pairs(
            pairs, encoder, batch_size=batch_size, num_workers=num_workers, progress=progress
        )
    fingerprint = encoder.fingerprint()
    if fingerprint is None:
        warn_uncached(encoder.spec)
        return embed_pairs(
            pairs, encoder, batch_size=batch_size, num_workers=num_workers, progress=progress
        )
    preprocessing = encoder.preprocessing.key() if isinstance(encoder, PixelEncoder) else ""
    key = cache.key(
        encoder=fingerprint,
        preprocessing=preprocessing,
        dtype=str(getattr(encoder, "dtype", "")),
        pipeline=image_pipeline(encoder),
        data=pairs.fingerprint(),
        **dict(key_parts or {}),
    )
    cached = cache.get(key)
    if cached is not None and fits(cached, pairs):
        return cached
    embeddings = embed_pairs(
        pairs, encoder, batch_size=batch_size, num_workers=num_workers, progress=progress
    )
    cache.put(key, embeddings)
    return embeddings


def fits(embeddings: Embeddings, pairs: PairSet) -> bool:
    """Whether ``embeddings`` (read from the cache) have a row for every text of ``pairs``."""
    extra = 0 if pairs.extra_texts is None else sum(len(texts) for texts in pairs.extra_texts)
    rows = 0 if embeddings.extra_text is None else len(embeddings.extra_text)
    classes = 0 if embeddings.class_text is None else len(embeddings.class_text)
    return (
        len(embeddings) == len(pairs)
        and (embeddings.text2 is None) == (pairs.texts2 is None)
        and rows == extra
        and classes == len(pairs.class_texts or ())
    )


_warned_uncached: set[str] = set()


def warn_uncached(spec: str) -> None:
    """Say once per process and spec that this model's embeddings are computed on every run."""
    if spec in _warned_uncached:
        return
    _warned_uncached.add(spec)
    warnings.warn(
        f"Model {spec!r} is embedded on every run, never cached: its encoder has no fingerprint, "
        f"so nothing would tell the cache that its weights changed. To cache it, give the object "
        f"its factory returns a fingerprint() method returning a str that changes with the "
        f"weights, such as a hash of the checkpoint file (README, 'Models').",
        CacheWarning,
        stacklevel=3,
    )


class _InlineExecutor(Executor):
    """An executor that runs each task at submit time, in the calling thread (num_workers=0)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller by future.result(), as a pool would
            future.set_exception(exc)
        return future


def _batches(n: int, batch_size: int) -> list[list[int]]:
    return [list(range(start, min(n, start + batch_size))) for start in range(0, n, batch_size)]


def _split(indices: list[int], parts: int) -> list[list[int]]:
    """``indices`` in at most ``parts`` contiguous, nearly equal chunks (one per worker)."""
    size = -(-len(indices) // parts)
    return [indices[start : start + size] for start in range(0, len(indices), size)]


def _prefetched(
    pool: Executor,
    batches: Sequence[list[int]],
    load: Callable[[list[int]], list[T]],
    parts: int,
) -> Iterator[tuple[list[int], list[T]]]:
    """Yield ``(batch, loaded items)`` in order while the next batches load in ``pool``.

    Each batch is split into ``parts`` chunks so that all workers share even a single batch.
    """
    pending: deque[tuple[list[int], list[Future[list[T]]]]] = deque()
    upcoming = iter(batches)

    def submit_next() -> None:
        batch = next(upcoming, None)
        if batch is not None:
            pending.append((batch, [pool.submit(load, chunk) for chunk in _split(batch, parts)]))

    try:
        for _ in range(PREFETCH_BATCHES + 1):
            submit_next()
        while pending:
            batch, futures = pending.popleft()
            submit_next()
            yield batch, [item for future in futures for item in future.result()]
    finally:
        # Stop loading after an error (or an abandoned iteration); running tasks just finish.
        for _, futures in pending:
            for future in futures:
                future.cancel()


def _read_error(pairs: PairSet, index: int, exc: BaseException) -> DatasetError:
    source = pairs.images[index]
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return DatasetError(
        f"Cannot read image {source} ({pairs.origin(index)}): {reason}. Check that the file "
        f"exists, is readable and is a complete image file (JPEG, PNG, ...); re-download or "
        f"remove the pair from the data set."
    )


def _checked_array(pairs: PairSet, index: int, array: np.ndarray) -> np.ndarray:
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise DatasetError(
            f"Image of {pairs.origin(index)} is a {array.dtype} array of shape {array.shape}; "
            f"in-memory images must be HxWx3 uint8 RGB arrays."
        )
    return np.ascontiguousarray(array)


def _where(pairs: PairSet, index: int) -> str:
    """Pair ``index``'s image and origin, for error messages."""
    return f"{pairs.images[index]} ({pairs.origin(index)})"


def _decode_bytes(pairs: PairSet, index: int, data: bytes) -> Image.Image:
    """An image file's bytes as upright 8-bit RGB (``rgb.to_rgb``'s rules), or a DatasetError."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return to_rgb(image, _where(pairs, index))
    except DatasetError:  # a ValueError too, but already names the image and says what to do
        raise
    except _PIL_READ_ERRORS as exc:
        raise _read_error(pairs, index, exc) from exc


def _read_bytes(pairs: PairSet, index: int, source: Path | EncodedImage) -> bytes:
    """An image file's bytes: the file at a path, or a member / row of a shard or table."""
    try:
        return source.read() if isinstance(source, EncodedImage) else Path(source).read_bytes()
    except OSError as exc:
        raise _read_error(pairs, index, exc) from exc


def open_rgb(pairs: PairSet, index: int) -> Image.Image:
    """Pair ``index``'s image as an upright 8-bit RGB PIL image (``rgb.to_rgb``'s rules: every PIL
    mode scaled or refused, EXIF orientation applied, transparency on white), or a DatasetError
    that names it."""
    source = pairs.images[index]
    if isinstance(source, np.ndarray):
        return Image.fromarray(_checked_array(pairs, index, source))
    if isinstance(source, EncodedImage):
        return _decode_bytes(pairs, index, _read_bytes(pairs, index, source))
    try:
        with Image.open(source) as image:
            return to_rgb(image, _where(pairs, index))
    except DatasetError:  # a ValueError too, but already names the image and says what to do
        raise
    except _PIL_READ_ERRORS as exc:
        raise _read_error(pairs, index, exc) from exc


def one_row_per_input(output: torch.Tensor, expected: int, what: str) -> torch.Tensor:
    """Check that an encoder returned one embedding row per input."""
    if output.dim() != 2 or output.shape[0] != expected:
        raise EncoderError(
            f"The encoder returned {what} embeddings of shape {tuple(output.shape)} for "
            f"{expected} inputs; it must return one row per input, shape ({expected}, d)."
        )
    return output


def _to_numpy(outputs: list[torch.Tensor], what: str) -> np.ndarray:
    import torch

    widths = {int(out.shape[1]) for out in outputs}
    if len(widths) > 1:
        raise EncoderError(
            f"The encoder returned {what} embeddings of different widths {sorted(widths)} across "
            f"batches; every batch must have the same embedding dimension."
        )
    # One concatenation and one transfer at the end: no per-batch device sync stalls the model.
    stacked = torch.cat([out.to(outputs[0].device) for out in outputs]).float().cpu()
    return stacked.numpy()


def embed_texts(texts: Sequence[str], encoder: Encoder, *, batch_size: int) -> np.ndarray:
    """Only the texts: (len(texts), d) float32, row i for ``texts[i]``, batched as ``embed_pairs``
    batches them."""
    import torch

    with torch.inference_mode():
        return _embed_texts(texts, encoder, batch_size, Progress(len(texts), "", enabled=False))


def _embed_texts(
    texts: Sequence[str], encoder: Encoder, batch_size: int, bar: Progress
) -> np.ndarray:
    """Encode texts in batches of similar length (less padding) and restore the original order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs = []
    for batch in _batches(len(order), batch_size):
        chunk = [texts[order[k]] for k in batch]
        outputs.append(one_row_per_input(encoder.encode_texts(chunk), len(chunk), "text"))
        bar.update(len(chunk))
    by_length = _to_numpy(outputs, "text")
    result = np.empty_like(by_length)
    result[np.asarray(order)] = by_length
    return result


def _embed_images(
    pairs: PairSet,
    encoder: Encoder,
    batch_size: int,
    pool: Executor,
    parts: int,
    bar: Progress,
) -> np.ndarray:
    if not isinstance(encoder, PixelEncoder):
        return _embed_pil_images(pairs, encoder, batch_size, pool, parts, bar)
    if image_pipeline(encoder) == "device":
        decoder = _nvjpeg_decoder(encoder.device)
        return _embed_images_on_device(pairs, encoder, batch_size, pool, parts, bar, decoder)
    return _embed_images_with_processor(pairs, encoder, batch_size, pool, parts, bar)


def _embed_pil_images(
    pairs: PairSet,
    encoder: Encoder,
    batch_size: int,
    pool: Executor,
    parts: int,
    bar: Progress,
) -> np.ndarray:
    """Generic encoders: decode in workers, hand PIL batches to ``encode_images``."""

    def load(chunk: list[int]) -> list[Image.Image]:
        return [open_rgb(pairs, i) for i in chunk]

    outputs = []
    for batch, images in _prefetched(pool, _batches(len(pairs), batch_size), load, parts):
        outputs.append(one_row_per_input(encoder.encode_images(images), len(batch), "image"))
        bar.update(len(batch))
    return _to_numpy(outputs, "image")


def _embed_images_with_processor(
    pairs: PairSet,
    encoder: PixelEncoder,
    batch_size: int,
    pool: Executor,
    parts: int,
    bar: Progress,
) -> np.ndarray:
    """Pixel encoders on CPU: decode and run the model's processor in workers, then the tower."""
    pin = encoder.device.type == "cuda"

    def load(chunk: list[int]) -> list[torch.Tensor]:
        pixels = encoder.preprocess([open_rgb(pairs, i) for i in chunk])
        # Pinned memory lets the copy to the GPU overlap with the previous batch's forward.
        return [pixels.pin_memory() if pin else pixels]

    import torch

    outputs = []
    for batch, chunks in _prefetched(pool, _batches(len(pairs), batch_size), load, parts):
        pixels = torch.cat(chunks).to(encoder.device, non_blocking=True)
        outputs.append(one_row_per_input(encoder.forward_pixels(pixels), len(batch), "image"))
        bar.update(len(batch))
    return _to_numpy(outputs, "image")


JpegDecoder = Callable[[list["torch.Tensor"]], list["torch.Tensor"]]
"""Decodes a list of 1-D uint8 tensors of JPEG bytes into (3, H, W) uint8 RGB tensors."""


def _nvjpeg_decoder(device: torch.device) -> JpegDecoder:
    from torchvision.io import ImageReadMode, decode_jpeg

    def decode(data: list[torch.Tensor]) -> list[torch.Tensor]:
        decoded = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
        return list(decoded)

    return decode


@dataclass
class _Encoded:
    """One image as read by a worker: JPEG bytes for the device decoder, or decoded RGB pixels."""

    index: int
    data: bytes | None
    pixels: torch.Tensor | None
    orientation: int = 1
    """EXIF orientation of ``data``, applied after decoding (nvJPEG ignores it)."""


_DEVICE_JPEG_MODES = ("L", "RGB")
"""JPEG colour modes (as PIL reads the header) that the device decoder turns into RGB as PIL does.
CMYK and YCCK JPEGs are decoded by PIL, whose Adobe-inverted CMYK handling nvJPEG lacks."""


def _jpeg_header(pairs: PairSet, index: int, data: bytes) -> tuple[str, int]:
    """The colour mode and EXIF orientation of a JPEG, read from its header without decoding."""
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
            return image.mode, exif_orientation(image)
    except _PIL_READ_ERRORS as exc:
        raise _read_error(pairs, index, exc) from exc


def _read_for_device(pairs: PairSet, index: int) -> _Encoded:
    import torch

    source = pairs.images[index]
    if isinstance(source, np.ndarray):
        array = _checked_array(pairs, index, source)
        return _Encoded(index, None, torch.from_numpy(array).permute(2, 0, 1))
    data = _read_bytes(pairs, index, source)
    if data.startswith(_JPEG_MAGIC):
        mode, orientation = _jpeg_header(pairs, index, data)
        if mode in _DEVICE_JPEG_MODES:
            return _Encoded(index, data, None, orientation)
    array = np.array(_decode_bytes(pairs, index, data))
    return _Encoded(index, None, torch.from_numpy(array).permute(2, 0, 1))


def _decode_jpegs(
    pairs: PairSet, items: list[_Encoded], decode_jpegs: JpegDecoder
) -> list[torch.Tensor]:
    """Decode every item to (3, H, W) uint8: JPEGs with ``decode_jpegs`` in one call.

    The batched decoder gives no partial result on error, so on failure each JPEG is retried alone,
    and one the device decoder rejects (unusual sampling) goes through PIL; only a file PIL cannot
    read either is an error. The decoder's output is turned upright by each JPEG's EXIF
    orientation, as PIL-decoded images are (nvJPEG ignores EXIF).
    """
    import torch

    jpegs = {item.index: item.data for item in items if item.data is not None}
    tensors = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in jpegs.values()]
    decoded: dict[int, torch.Tensor] = {}
    if jpegs:
        try:
            decoded = dict(zip(jpegs, decode_jpegs(tensors), strict=True))
        except RuntimeError:
            for index, tensor in zip(jpegs, tensors, strict=True):
                try:
                    decoded[index] = decode_jpegs([tensor])[0]
                except RuntimeError:
                    pass
    images = []
    for item in items:
        if item.pixels is not None:
            images.append(item.pixels)
        elif item.index in decoded:
            images.append(orient_tensor(decoded[item.index], item.orientation))
        else:  # rejected by the device decoder: PIL decodes and turns it upright itself
            array = np.array(_decode_bytes(pairs, item.index, jpegs[item.index]))
            images.append(torch.from_numpy(array).permute(2, 0, 1))
    return images


def _embed_images_on_device(
    pairs: PairSet,
    encoder: PixelEncoder,
    batch_size: int,
    pool: Executor,
    parts: int,
    bar: Progress,
    decode_jpegs: JpegDecoder,
) -> np.ndarray:
    """Workers read bytes (and decode non-JPEGs); JPEG decode and resizing run batched on device."""
    from pytest_modgap.embedding.gpu_preprocess import preprocess_batch

    def load(chunk: list[int]) -> list[_Encoded]:
        return [_read_for_device(pairs, i) for i in chunk]

    outputs = []
    for batch, items in _prefetched(pool, _batches(len(pairs), batch_size), load, parts):
        images = _decode_jpegs(pairs, items, decode_jpegs)
        pixels = preprocess_batch(images, encoder.preprocessing, encoder.device)
        outputs.append(one_row_per_input(encoder.forward_pixels(pixels), len(batch), "image"))
        bar.update(len(batch))
    return _to_numpy(outputs, "image")
