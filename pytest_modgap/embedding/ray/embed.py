"""What runs on a Ray cluster: a measurement's embeddings (through the cache, keyed as a local run
keys them) and ``modgap embed``'s sharded folder of a whole data set.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from pytest_modgap.embedding.progress import Progress, progress_enabled
from pytest_modgap.errors import ModgapInputError

if TYPE_CHECKING:
    from pytest_modgap.data.pairset import PairSet
    from pytest_modgap.embedding.cache import EmbeddingCache
    from pytest_modgap.embedding.embeddings import Embeddings
    from pytest_modgap.embedding.ray.job import EmbeddedBatch
    from pytest_modgap.embedding.ray.plan import RayPlan
    from pytest_modgap.embedding.ray.replicas import Probe
    from pytest_modgap.models.base import Encoder
    from pytest_modgap.models.precomputed import PrecomputedEmbeddings


class _LoadOptions(Protocol):
    def _asdict(self) -> dict[str, Any]: ...


class ModelToEmbed(Protocol):
    """What the Ray path needs of a model (``measurement.LoadedModel`` is one): its spec and how
    each replica loads it, and the encoder itself for ``embed_to_folder`` without a cluster. A
    protocol, so that this package never imports the measurement that calls it."""

    @property
    def spec(self) -> str: ...

    @property
    def options(self) -> _LoadOptions | None: ...

    @property
    def encoder(self) -> Encoder | PrecomputedEmbeddings: ...


def embed_on_ray(
    model: ModelToEmbed,
    pairs: PairSet,
    cache: EmbeddingCache | None,
    address: str,
    *,
    progress: bool | None = None,
    plan: RayPlan | None = None,
) -> tuple[Embeddings, tuple[str, str] | None]:
    """The embeddings of ``pairs`` (every caption and prompt, as ``embed_pairs`` gives them) from
    the cache, else from a Ray job on the cluster at ``address``; and the (device, dtype) the
    replicas ran (or, after a cache hit, would run) in.

    The cache key is the one a local run on the replicas' device computes, found on a worker
    (``replicas.probe``), so a Ray run and a local run share entries; the driver never loads the
    model.
    """
    from pytest_modgap.embedding.pipeline import TextColumns, fits
    from pytest_modgap.embedding.ray.job import RayEmbeddingJob, gather
    from pytest_modgap.embedding.ray.replicas import probe_cache_parts

    job = RayEmbeddingJob(address, model.spec, _load_options(model), plan=plan)
    found = job.probe(load=cache is not None)
    data = pairs.fingerprint() if cache is not None else ""
    before = probe_cache_parts(found) if cache is not None else None
    if cache is not None and before is not None:
        cached = cache.get(cache.key(**before, data=data))
        if cached is not None and fits(cached, pairs):
            return cached, _where(found)
    columns = TextColumns.of(pairs)
    with (
        _bar(len(pairs) + len(columns.distinct), pairs.name, progress) as bar,
        closing(job.run(pairs, columns.distinct, found.identity)) as run,
    ):
        # closing(): a failed gather stops the job, whose actors would otherwise hold the CPUs.
        images, texts = gather(_counted(run, bar), len(pairs), len(columns.distinct))
    embeddings = columns.embeddings(images, texts)
    description = job.description()
    after = description.cache_parts(found.identity)
    if cache is not None and after is not None:
        cache.put(cache.key(**after, data=data), embeddings)
    elif cache is not None:
        from pytest_modgap.embedding.pipeline import warn_uncached

        warn_uncached(model.spec)
    return embeddings, (description.device, description.dtype_name)


def _where(found: Probe) -> tuple[str, str] | None:
    """(device, dtype) the replicas would run in, as the probe found them (for the metadata of a
    cache hit: the driver never loads the model to tell)."""
    if found.identity is not None:
        return found.identity.device, found.identity.dtype
    if found.description is not None:
        return found.description.device, found.description.dtype_name
    return None


def embed_to_folder(
    model: ModelToEmbed,
    pairs: PairSet,
    out: Path,
    *,
    address: str | None,
    metadata: Mapping[str, Any],
    progress: bool | None = None,
    plan: RayPlan | None = None,
    shard_rows: int | None = None,
) -> Path:
    """Write the image and caption (and second caption) vectors of every pair of ``pairs`` to the
    sharded folder ``out`` (``models.sharded``), read back by ``embeddings:out``.

    With ``address``, a Ray job embeds and the driver writes each batch as it arrives, holding at
    most one shard; without, the local pipeline embeds here. Nothing is cached: the folder is the
    result.
    """
    from pytest_modgap.embedding.pipeline import TextColumns
    from pytest_modgap.models.sharded import DEFAULT_SHARD_ROWS, ShardedEmbeddingsWriter

    columns = TextColumns.of(pairs, captions_only=True)
    texts = columns.distinct
    groups = None if pairs.groups is None else np.asarray(pairs.groups, np.int64)
    total = len(pairs) + len(texts)
    writer = ShardedEmbeddingsWriter(
        out,
        text_index=columns.text,
        text2_index=columns.text2,
        groups=groups,
        n_texts=len(texts),
        metadata=dict(metadata),
        shard_rows=shard_rows or DEFAULT_SHARD_ROWS,
    )
    with writer, _bar(total, pairs.name, progress) as bar:
        if address is None:
            batches = _local_batches(model, pairs, texts)
        else:
            from pytest_modgap.embedding.ray.job import RayEmbeddingJob

            job = RayEmbeddingJob(address, model.spec, _load_options(model), plan=plan)
            batches = job.run(pairs, texts, job.probe(load=False).identity)
        with closing(batches):
            for batch in _counted(batches, bar):
                writer.add(batch.kind, batch.rows, batch.vectors)  # type: ignore[arg-type]
        if address is not None:
            writer.metadata["replica"] = job.description().__dict__
    return out


def _local_batches(
    model: ModelToEmbed, pairs: PairSet, texts: list[str]
) -> Generator[EmbeddedBatch, None, None]:
    """The local pipeline's image and text vectors as two batches."""
    from pytest_modgap.embedding.pipeline import embed_images, embed_texts
    from pytest_modgap.embedding.ray.job import EmbeddedBatch
    from pytest_modgap.models.precomputed import PrecomputedEmbeddings

    encoder = model.encoder
    if isinstance(encoder, PrecomputedEmbeddings):
        raise ModgapInputError(
            f"Model spec {model.spec!r} names precomputed embeddings: there is nothing to embed. "
            f"Give a model spec to 'modgap embed'."
        )
    size = int(getattr(encoder, "batch_size", 64))
    images = embed_images(pairs, encoder, batch_size=size, progress=False)
    yield EmbeddedBatch("image", np.arange(len(pairs)), images)
    vectors = embed_texts(texts, encoder, batch_size=size)
    yield EmbeddedBatch("text", np.arange(len(texts)), vectors)


def _load_options(model: ModelToEmbed) -> dict[str, Any]:
    """How each replica loads the model: the options the model was given, or a ModgapInputError
    for an encoder object built in this process, which cannot travel to a worker."""
    if model.options is None:
        raise ModgapInputError(
            f"Model {model.spec!r} was given as an encoder object loaded in this process; a Ray "
            f"job loads one replica per worker from the spec. Give the spec as a string (or "
            f"load_model(spec, lazy=True)) together with the Ray address."
        )
    return model.options._asdict()


def _bar(total: int, name: str, progress: bool | None) -> Progress:
    return Progress(total, f"modgap: embedding {name}", enabled=progress_enabled(progress))


def _counted(batches: Iterator[EmbeddedBatch], bar: Progress) -> Iterator[EmbeddedBatch]:
    for batch in batches:
        bar.update(len(batch.rows))
        yield batch
