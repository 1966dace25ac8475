"""``measure``: a model spec and a data set spec in, a Report out (load, sample, embed or read, measure).

The one function that joins data/, encoders/, the embedding pipeline and cache, and the metric engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pytest_modgap.data.pairset import PairSet, sample_rows
from pytest_modgap.data.specs import DEFAULT_DATASET, load_dataset
from pytest_modgap.metrics.engine import measure_embeddings
from pytest_modgap.metrics.inputs import EmbeddingSet
from pytest_modgap.metrics.report import Report

if TYPE_CHECKING:
    from pytest_modgap.models.base import Encoder
    from pytest_modgap.models.precomputed import PrecomputedEmbeddings


@dataclass(frozen=True)
class LoadedModel:
    """A loaded encoder (or precomputed embeddings) with the spec it came from."""

    spec: str
    encoder: Encoder | PrecomputedEmbeddings


def load_model(
    model: str,
    *,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
    trust_remote_code: bool = False,
    task: str | None = None,
    truncate_dim: int | None = None,
) -> LoadedModel:
    """Load ``model`` once so several measurements can share it (the plugin does, per session)."""
    from pytest_modgap.models.loader import load_encoder

    encoder = load_encoder(
        model,
        device=device,
        dtype=dtype,
        trust_remote_code=trust_remote_code,
        batch_size=batch_size,
        task=task,
        truncate_dim=truncate_dim,
    )
    return LoadedModel(spec=model, encoder=encoder)


def sample_indices(
    n: int, samples: int | None, seed: int, source: str = "the embeddings"
) -> np.ndarray:
    """The rows ``PairSet.sample`` keeps: ``samples`` drawn without replacement with ``seed``, sorted.

    More rows than ``n`` is a DatasetError naming ``source`` (``sample_rows``), never a clamp.
    """
    rows = sample_rows(n, samples, seed, source)
    return np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)


def embed_sample(
    model: LoadedModel,
    dataset: str | PairSet,
    *,
    samples: int | None,
    seed: int,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    batch_size: int | None = None,
    progress: bool | None = None,
    truncate_dim: int | None = None,
) -> tuple[EmbeddingSet, str]:
    """The embeddings of ``samples`` pairs of ``dataset`` drawn with ``seed`` (read from the cache
    when embedded before), and the data set's label.

    Precomputed ``embeddings:`` models give their own rows (``sample_indices`` of them) and ignore
    ``dataset``. Two models embedded with the same ``samples`` and ``seed`` see the same pairs.
    ``truncate_dim`` keeps the Matryoshka prefix of every vector (the cache holds full vectors).
    """
    embedded, label = _embed_sample(
        model,
        dataset,
        samples=samples,
        seed=seed,
        cache_dir=cache_dir,
        use_cache=use_cache,
        batch_size=batch_size,
        progress=progress,
    )
    if truncate_dim is None:
        return embedded, label
    from pytest_modgap.metrics.truncation import truncate

    image, text, text2, groups = embedded
    text2 = None if text2 is None else truncate(text2, truncate_dim)
    return (truncate(image, truncate_dim), truncate(text, truncate_dim), text2, groups), label


def _embed_sample(
    model: LoadedModel,
    dataset: str | PairSet,
    *,
    samples: int | None,
    seed: int,
    cache_dir: str | Path | None,
    use_cache: bool,
    batch_size: int | None,
    progress: bool | None,
) -> tuple[EmbeddingSet, str]:
    from pytest_modgap.models.precomputed import PrecomputedEmbeddings

    encoder = model.encoder
    if isinstance(encoder, PrecomputedEmbeddings):
        image, text, text2, groups = encoder.load()
        rows = sample_indices(len(image), samples, seed, f"embeddings file {encoder.path}")
        embedded: EmbeddingSet = (
            image[rows],
            text[rows],
            None if text2 is None else text2[rows],
            None if groups is None else groups[rows],
        )
        return embedded, f"embeddings:{encoder.path}"

    from pytest_modgap.embedding.cache import EmbeddingCache
    from pytest_modgap.embedding.pipeline import embed_pairs_cached

    pairs = load_dataset(dataset) if isinstance(dataset, str) else dataset
    pairs = pairs.sample(samples, seed)
    cache = (
        EmbeddingCache(Path(cache_dir) if cache_dir is not None else None) if use_cache else None
    )
    embeddings = embed_pairs_cached(
        pairs,
        encoder,
        cache,
        batch_size=batch_size or int(getattr(encoder, "batch_size", 64)),
        progress=progress,
    )
    groups = None if pairs.groups is None else np.asarray(pairs.groups)
    label = dataset if isinstance(dataset, str) else pairs.name
    return (embeddings.image, embeddings.text, embeddings.text2, groups), label


def measure(
    model: str | LoadedModel,
    dataset: str | PairSet = DEFAULT_DATASET,
    *,
    samples: int | None = None,
    seed: int = 0,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    trust_remote_code: bool = False,
    ci: float | None = 0.95,
    n_boot: int = 1000,
    progress: bool | None = None,
    truncate_dim: int | None = None,
) -> Report:
    """Embed ``samples`` random pairs of ``dataset`` with ``model`` and measure every metric.

    ``model``: a Hugging Face id or local directory (``@revision`` pins one), ``module:factory``,
    ``embeddings:file.npz`` (precomputed vectors; ``dataset`` is then not read), or a model loaded
    with ``load_model``. ``dataset``: a built-in name (default ``shapes``), ``loader:path``
    (flickr8k, flickr30k, coco, cifar100, jsonl) or a ``.jsonl`` manifest, or a PairSet.
    ``samples`` pairs are drawn without replacement with ``seed`` (the paper: 1,000); ``None`` keeps
    all. ``device`` ``None`` is CUDA when available; ``dtype`` ``None`` is bfloat16 on CUDA and
    float32 on CPU. Embeddings are cached under ``cache_dir`` (default ``$MODGAP_CACHE_DIR`` or
    ``~/.cache/pytest-modgap``) unless ``use_cache=False``. Remote model code runs only with
    ``trust_remote_code=True``. ``truncate_dim`` measures the Matryoshka prefix of that many
    dimensions (the same vectors jina-embeddings-v4's ``truncate_dim`` gives; the cache keeps the
    full vectors, so a sweep encodes once). The report's ``metadata`` records what was measured.
    """
    started = time.perf_counter()
    loaded = (
        model
        if isinstance(model, LoadedModel)
        else load_model(
            model,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            trust_remote_code=trust_remote_code,
        )
    )
    (image, text, text2, groups), label = embed_sample(
        loaded,
        dataset,
        samples=samples,
        seed=seed,
        cache_dir=cache_dir,
        use_cache=use_cache,
        batch_size=batch_size,
        progress=progress,
        truncate_dim=truncate_dim,
    )
    report = measure_embeddings(
        image, text, text2=text2, groups=groups, ci=ci, n_boot=n_boot, seed=seed
    )
    encoder = loaded.encoder
    extra = {} if truncate_dim is None else {"truncate_dim": truncate_dim}
    return report.with_metadata(
        model=loaded.spec,
        dataset=label,
        samples=samples,
        seed=seed,
        device=str(getattr(encoder, "device", "cpu")),
        dtype=str(getattr(encoder, "dtype", "float32")).replace("torch.", ""),
        seconds=round(time.perf_counter() - started, 3),
        **extra,
    )
