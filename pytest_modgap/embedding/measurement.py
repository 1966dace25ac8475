"""``measure``: a model spec and a data set spec in, a Report out (load, sample, embed or read, measure).

The one function that joins data/, encoders/, the embedding pipeline and cache, and the metric engine.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from pytest_modgap.data.pairset import PairSet, sample_rows
from pytest_modgap.data.specs import DEFAULT_DATASET, load_dataset
from pytest_modgap.metrics.engine import measure_embeddings
from pytest_modgap.metrics.inputs import EmbeddingSet
from pytest_modgap.metrics.measured import MeasuredPairs
from pytest_modgap.metrics.report import Report

if TYPE_CHECKING:
    from pytest_modgap.embedding.cache import EmbeddingCache
    from pytest_modgap.embedding.embeddings import Embeddings
    from pytest_modgap.models.base import Encoder
    from pytest_modgap.models.identity import ModelIdentity
    from pytest_modgap.models.precomputed import PrecomputedEmbeddings


class LoadOptions(NamedTuple):
    """How to load a model spec: the arguments of ``models.loader.load_encoder`` besides the spec."""

    device: str | None = None
    dtype: str | None = None
    batch_size: int | None = None
    trust_remote_code: bool = False
    task: str | None = None
    truncate_dim: int | None = None


class LoadedModel:
    """A model spec, how to load it, and its encoder, loaded on first use.

    ``load_model(spec, lazy=True)`` gives one that loads nothing until an embedding is missing
    from the cache: a cache hit is looked up by the model's identity from its files
    (``models.identity``), so a cached measurement builds no model and imports no transformers.
    ``LoadedModel(spec, encoder)`` wraps an encoder loaded elsewhere (always used as it is).
    """

    def __init__(
        self,
        spec: str,
        encoder: Encoder | PrecomputedEmbeddings | None = None,
        *,
        options: LoadOptions | None = None,
    ) -> None:
        if encoder is None and options is None:
            options = LoadOptions()
        self.spec = spec
        self.options = options
        self._encoder = encoder
        self._identity: ModelIdentity | None = None
        self._identity_known = False

    @property
    def encoder(self) -> Encoder | PrecomputedEmbeddings:
        """The encoder (or precomputed embeddings), loaded now if it was not yet."""
        if self._encoder is None:
            from pytest_modgap.models.loader import load_encoder

            options = self.options or LoadOptions()
            self._encoder = load_encoder(self.spec, **options._asdict())
        return self._encoder

    @property
    def loaded(self) -> bool:
        """Whether the encoder has been loaded (a cache hit never loads it)."""
        return self._encoder is not None

    @property
    def precomputed(self) -> bool:
        """Whether the spec names precomputed ``embeddings:`` vectors rather than a model."""
        from pytest_modgap.models.loader import EMBEDDINGS_PREFIX
        from pytest_modgap.models.precomputed import PrecomputedEmbeddings

        if self._encoder is not None:
            return isinstance(self._encoder, PrecomputedEmbeddings)
        return self.spec.startswith(EMBEDDINGS_PREFIX)

    def identity(self) -> ModelIdentity | None:
        """The model's identity from its files and load options (memoised), or None when only the
        loaded model can tell (``module:factory``, precomputed vectors, an encoder given as is)."""
        if not self._identity_known:
            options = self.options
            if options is not None and not self.precomputed:
                from pytest_modgap.models.identity import model_identity

                self._identity = model_identity(
                    self.spec,
                    device=options.device,
                    dtype=options.dtype,
                    trust_remote_code=options.trust_remote_code,
                    task=options.task,
                    truncate_dim=options.truncate_dim,
                )
            self._identity_known = True
        return self._identity

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "not loaded"
        return f"<LoadedModel {self.spec!r} ({state})>"


def load_model(
    model: str,
    *,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
    trust_remote_code: bool = False,
    task: str | None = None,
    truncate_dim: int | None = None,
    lazy: bool = False,
) -> LoadedModel:
    """Load ``model`` once so several measurements can share it (the plugin does, per session).

    ``lazy=True`` loads nothing now: the model is loaded by the first measurement whose embeddings
    are not in the cache, and never when every one is (errors in the spec surface then too).
    """
    options = LoadOptions(
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        trust_remote_code=trust_remote_code,
        task=task,
        truncate_dim=truncate_dim,
    )
    loaded = LoadedModel(model, options=options)
    if not lazy:
        loaded.encoder  # noqa: B018 (loading is the point: errors surface here, not later)
    return loaded


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
    ray_address: str | None = None,
) -> tuple[EmbeddingSet, str]:
    """The embeddings of ``samples`` pairs of ``dataset`` drawn with ``seed`` (read from the cache
    when embedded before), and the data set's label.

    Precomputed ``embeddings:`` models give their own rows (``sample_indices`` of them) and ignore
    ``dataset``. Two models embedded with the same ``samples`` and ``seed`` see the same pairs.
    ``truncate_dim`` keeps the Matryoshka prefix of every vector (the cache holds full vectors).
    Only each image's first (and second) caption: ``sample_embeddings`` gives every one.
    ``ray_address``: embed on that Ray cluster when not in the cache (``measure``).
    """
    sample, label = sample_embeddings(
        model,
        dataset,
        samples=samples,
        seed=seed,
        cache_dir=cache_dir,
        use_cache=use_cache,
        batch_size=batch_size,
        progress=progress,
        truncate_dim=truncate_dim,
        ray_address=ray_address,
    )
    return sample.pair_set(), label


@dataclass(frozen=True)
class Sample:
    """The embeddings of one sample of a data set, with everything the metric engine takes.

    ``extra_text[m]`` is a further caption of image ``extra_text_image[m]``; ``class_embeddings``
    (C, T, d) the zero-shot prompts of each class (``groups`` index them); ``slices`` a label per
    pair; ``retrieval`` False for class-prompt captions.
    """

    image: np.ndarray
    text: np.ndarray
    text2: np.ndarray | None = None
    groups: np.ndarray | None = None
    extra_text: np.ndarray | None = None
    extra_text_image: np.ndarray | None = None
    class_embeddings: np.ndarray | None = None
    slices: Sequence[str] | None = None
    retrieval: bool = True
    ran_on: tuple[str, str] | None = None
    """(device, dtype) of the Ray replicas that embedded it (None: this process, or the cache)."""
    pairs: PairSet | None = None
    """The sampled pairs (with their zero-shot prompts) these vectors embed; None for precomputed
    embeddings."""
    fingerprint: str | None = None
    """``pairs.fingerprint()``: the content of the pairs and their prompts, read once."""
    templates: tuple[str, ...] | None = None
    """The zero-shot prompt templates used (data sets with class names)."""

    def pair_set(self) -> EmbeddingSet:
        """(image, text, text2, groups): the pairs alone."""
        return self.image, self.text, self.text2, self.groups

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``measure_embeddings`` that describe this sample."""
        return {
            "text2": self.text2,
            "groups": self.groups,
            "extra_captions": self.extra_text,
            "extra_caption_image": self.extra_text_image,
            "class_embeddings": self.class_embeddings,
            "slices": self.slices,
            "retrieval": self.retrieval,
        }

    def truncated(self, dim: int) -> Sample:
        """Every vector cut to its first ``dim`` components (a Matryoshka prefix)."""
        from pytest_modgap.metrics.truncation import truncate

        def cut(array: np.ndarray | None) -> np.ndarray | None:
            if array is None:
                return None
            if array.ndim == 3:
                return np.stack([truncate(part, dim) for part in array])
            return truncate(array, dim)

        return replace(
            self,
            image=truncate(self.image, dim),
            text=truncate(self.text, dim),
            text2=cut(self.text2),
            extra_text=cut(self.extra_text),
            class_embeddings=cut(self.class_embeddings),
        )


def sample_embeddings(
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
    templates: str | Sequence[str] | None = None,
    ray_address: str | None = None,
) -> tuple[Sample, str]:
    """``embed_sample`` with every caption, the zero-shot prompts and the slices.

    ``templates``: the zero-shot prompt templates for a data set with class names (a list with
    ``{c}``, or a name such as "cifar100"; default: the data set's published list, else one
    template). The slices are the data set's own (a manifest's ``slice``), else its class names.
    ``ray_address``: embed on that Ray cluster (``embedding.ray.job``) when not in the cache.
    """
    if model.precomputed:
        (image, text, text2, groups), label = _precomputed_sample(model, samples, seed)
        sample = Sample(image, text, text2, groups)
    else:
        sample, label = _embed_sample(
            model,
            dataset,
            samples=samples,
            seed=seed,
            cache_dir=cache_dir,
            use_cache=use_cache,
            batch_size=batch_size,
            progress=progress,
            templates=templates,
            ray_address=ray_address,
        )
    return (sample if truncate_dim is None else sample.truncated(truncate_dim)), label


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
    templates: str | Sequence[str] | None,
    ray_address: str | None,
) -> tuple[Sample, str]:
    from pytest_modgap.data.templates import with_class_texts
    from pytest_modgap.embedding.cache import EmbeddingCache

    pairs = load_dataset(dataset) if isinstance(dataset, str) else dataset
    pairs = with_class_texts(pairs.sample(samples, seed), templates)
    fingerprint = pairs.fingerprint()
    cache = (
        EmbeddingCache(Path(cache_dir) if cache_dir is not None else None) if use_cache else None
    )
    where = None
    if ray_address is None:
        embeddings = _embeddings(
            model, pairs, cache, fingerprint, batch_size=batch_size, progress=progress
        )
    else:
        from pytest_modgap.embedding.ray.embed import embed_on_ray

        embeddings, where = embed_on_ray(model, pairs, cache, ray_address, progress=progress)
    groups = None if pairs.groups is None else np.asarray(pairs.groups)
    label = dataset if isinstance(dataset, str) else pairs.name
    classes = None
    if embeddings.class_text is not None and pairs.class_names is not None:
        count = len(pairs.class_names)
        classes = embeddings.class_text.reshape(count, -1, embeddings.class_text.shape[1])
    slices = pairs.slices
    if slices is None and pairs.class_names is not None and pairs.groups is not None:
        slices = [pairs.class_names[int(group)] for group in pairs.groups]
    sample = Sample(
        image=embeddings.image,
        text=embeddings.text,
        text2=embeddings.text2,
        groups=groups,
        extra_text=embeddings.extra_text,
        extra_text_image=embeddings.extra_text_image,
        class_embeddings=classes,
        slices=slices,
        retrieval=not pairs.class_prompts,
        ran_on=where,
        pairs=pairs,
        fingerprint=fingerprint,
        templates=_templates_used(pairs, templates),
    )
    return sample, label


def _templates_used(
    pairs: PairSet, templates: str | Sequence[str] | None
) -> tuple[str, ...] | None:
    """The prompt templates ``with_class_texts`` chose for ``pairs`` (None without class names)."""
    from pytest_modgap.data.templates import resolve_templates

    if pairs.class_names is None:
        return None
    return tuple(resolve_templates(templates, pairs.name))


def _precomputed_sample(
    model: LoadedModel, samples: int | None, seed: int
) -> tuple[EmbeddingSet, str]:
    """The sampled rows of an ``embeddings:`` file (the data set spec does not apply)."""
    from pytest_modgap.models.precomputed import PrecomputedEmbeddings

    encoder = model.encoder
    assert isinstance(encoder, PrecomputedEmbeddings)
    image, text, text2, groups = encoder.load()
    rows = sample_indices(len(image), samples, seed, f"embeddings file {encoder.path}")
    embedded: EmbeddingSet = (
        image[rows],
        text[rows],
        None if text2 is None else text2[rows],
        None if groups is None else groups[rows],
    )
    return embedded, f"embeddings:{encoder.path}"


def _embeddings(
    model: LoadedModel,
    pairs: PairSet,
    cache: EmbeddingCache | None,
    fingerprint: str,
    *,
    batch_size: int | None,
    progress: bool | None,
) -> Embeddings:
    """The embeddings of ``pairs``: from the cache under the model's identity when they are there
    (the model is not loaded), else embedded by the loaded model and stored under that identity.

    Without an identity (``module:factory``, an encoder given as is) the loaded encoder's own
    ``fingerprint()`` keys the cache (``embed_pairs_cached``). So does a loaded encoder that is not
    what its identity assumed (another family, device or dtype): its vectors never go under a key
    that does not describe them. ``fingerprint``: ``pairs.fingerprint()``, read once per sample.
    """
    from pytest_modgap.embedding.pipeline import embed_pairs, embed_pairs_cached, fits
    from pytest_modgap.models.precomputed import PrecomputedEmbeddings

    identity = model.identity() if cache is not None else None
    key = None
    if cache is not None and identity is not None:
        key = cache.key(model=identity.key, data=fingerprint)
        cached = cache.get(key)
        if cached is not None and fits(cached, pairs):
            return cached
    encoder = model.encoder
    assert not isinstance(encoder, PrecomputedEmbeddings)  # handled by _precomputed_sample
    size = batch_size or int(getattr(encoder, "batch_size", 64))
    if cache is None or key is None or identity is None or not identity.describes(encoder):
        return embed_pairs_cached(pairs, encoder, cache, batch_size=size, progress=progress)
    embeddings = embed_pairs(pairs, encoder, batch_size=size, progress=progress)
    cache.put(key, embeddings)
    return embeddings


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
    templates: str | Sequence[str] | None = None,
    ray_address: str | None = None,
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
    full vectors, so a sweep encodes once). ``templates``: the zero-shot prompt templates for a data
    set with class names (a list with ``{c}`` where the class name goes, or a name: "default",
    "cifar100"; default: the data set's published list, else "a photo of a {c}."). Every caption of
    an image is embedded (retrieval ranks them all); a data set's slices (a manifest's ``slice``, or
    its class names) get their own reports in ``report.slices``. ``ray_address`` (``local``,
    ``auto``, ``ray://host:port``) embeds on a Ray cluster: CPU workers decode, one model replica
    per GPU (or per CPU worker) encodes, and the cache is shared with local runs (README, "Past
    one machine"). The report's ``metadata`` records what was measured.
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
            lazy=True,
        )
    )
    sample, label = sample_embeddings(
        loaded,
        dataset,
        samples=samples,
        seed=seed,
        cache_dir=cache_dir,
        use_cache=use_cache,
        batch_size=batch_size,
        progress=progress,
        truncate_dim=truncate_dim,
        templates=templates,
        ray_address=ray_address,
    )
    report = measure_embeddings(
        sample.image, sample.text, **sample.arguments(), ci=ci, n_boot=n_boot, seed=seed
    )
    device, dtype_used = sample.ran_on or _device_and_dtype(loaded)
    extra: dict[str, Any] = {} if truncate_dim is None else {"truncate_dim": truncate_dim}
    if ray_address is not None:
        extra["ray_address"] = ray_address
    if sample.templates is not None:
        extra["templates"] = list(sample.templates)
    measured = _measured_pairs(sample)
    return replace(
        report.with_metadata(
            model=loaded.spec,
            dataset=label,
            samples=samples,
            seed=seed,
            device=device,
            dtype=dtype_used,
            pairs=sample.fingerprint,  # None for precomputed vectors: their pairs are unknown
            seconds=round(time.perf_counter() - started, 3),
            **extra,
        ),
        measured=measured,
    )


def _measured_pairs(sample: Sample) -> MeasuredPairs | None:
    """The sample's vectors with its pairs' ids and names (None for precomputed embeddings, which
    come without their pairs)."""
    if sample.pairs is None:
        return None
    from pytest_modgap.embedding.pair_identity import measured_pairs

    return measured_pairs(
        sample.pairs,
        image=sample.image,
        text=sample.text,
        text2=sample.text2,
        groups=sample.groups,
        extra_text=sample.extra_text,
        extra_text_image=sample.extra_text_image,
        class_embeddings=sample.class_embeddings,
        slices=None if sample.slices is None else [str(label) for label in sample.slices],
        retrieval=sample.retrieval,
    )


def _device_and_dtype(model: LoadedModel) -> tuple[str, str]:
    """Where the model ran (or, after a cache hit, would have run): for the report's metadata."""
    if not model.loaded:
        identity = model.identity()
        if identity is not None:
            return identity.device, identity.dtype
    encoder = model.encoder
    device = str(getattr(encoder, "device", "cpu"))
    return device, str(getattr(encoder, "dtype", "float32")).replace("torch.", "")
