"""The embedding pipeline as a Ray Data job: decode and preprocess on CPU workers across the
cluster, encode in a pool of model replicas (one per GPU, or per few CPUs without GPUs), and hand
the vectors back to the driver with their row numbers.

Work items are numbered: rows ``0..N-1`` are the images of the pairs, rows ``N..N+M-1`` the distinct
texts, shortest first (so a batch of texts pads little). ``actors.ImageDecoder`` actors read and
decode the images (every format the project reads: a PairSet's images are paths, shard members or
bytes); ``actors.ReplicaEncoder`` actors load the model once each from its spec and embed. Ray
restarts an actor that dies and retries its batches, so a killed worker changes nothing but the
time taken.
"""

from __future__ import annotations

import warnings
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_modgap.embedding.ray.actors import ImageDecoder, ReplicaEncoder, Work
from pytest_modgap.embedding.ray.errors import unwrap
from pytest_modgap.embedding.ray.plan import DEFAULT_BATCH, RayPlan
from pytest_modgap.embedding.ray.replicas import Probe, ReplicaDescription, probe, replica_options
from pytest_modgap.errors import EncoderError

if TYPE_CHECKING:
    from pytest_modgap.data.pairset import PairSet
    from pytest_modgap.models.identity import ModelIdentity

ACTOR_RESTARTS = 3
"""Restarts of a dead actor, and retries of its batch, before the job fails: a worker lost to a
node failure is replaced, an input that crashes every replica stops the job instead of looping."""


@dataclass
class EmbeddedBatch:
    """Vectors of one output batch: ``kind`` "image" (rows are pair numbers) or "text" (rows are
    distinct-text numbers)."""

    kind: str
    rows: np.ndarray
    vectors: np.ndarray


class RayEmbeddingJob:
    """One model spec on one cluster: the plan, the probe and the job that embeds a PairSet."""

    def __init__(
        self,
        address: str,
        spec: str,
        options: Mapping[str, Any],
        *,
        plan: RayPlan | None = None,
    ) -> None:
        from pytest_modgap.embedding.ray.cluster import connect

        self.ray = connect(address)
        self.address = address
        self.spec = spec
        self.plan = plan or RayPlan.for_cluster(self.ray.cluster_resources(), options.get("device"))
        self.options = replica_options(options, self.plan)
        self.replicas: set[str] = set()

    def probe(self, load: bool) -> Probe:
        """``probe`` on this job's cluster and plan."""
        return probe(self.ray, self.spec, self.options, self.plan, load)

    def batch_size(self) -> int:
        given = self.options.get("batch_size")
        return int(given) if given else DEFAULT_BATCH["gpu" if self.plan.encoder_gpus else "cpu"]

    def run(
        self, pairs: PairSet, texts: Sequence[str], identity: ModelIdentity | None
    ) -> Generator[EmbeddedBatch, None, None]:
        """Embed every image of ``pairs`` and every text of ``texts``; yields the vectors as the
        replicas finish them (any order), each row exactly once."""
        import ray.data

        n, order = len(pairs), _text_order(texts)
        work = self.ray.put(Work(pairs, [texts[i] for i in order], self.spec))
        size = self.batch_size()
        total = n + len(texts)
        blocks = [
            np.arange(start, min(total, start + size), dtype=np.int64)
            for start in range(0, total, size)
        ]
        with warnings.catch_warnings():
            # Bounded restarts (ACTOR_RESTARTS) have no named parameter in Ray Data yet.
            warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated")
            dataset = self._dataset(
                ray.data, blocks, work, identity, size, self._fitted(len(blocks))
            )
        text_of_row = np.asarray(order, np.int64)
        batches = iter(dataset.iter_batches(batch_format="numpy", batch_size=None))
        while True:
            batch = unwrap(lambda: next(batches, None))
            if batch is None:
                return
            rows = np.asarray(batch["row"], np.int64)
            if not len(rows):
                continue
            self.replicas.update(str(replica) for replica in batch["replica"])
            vectors = np.asarray(batch["vector"], np.float32)
            is_image = rows < n
            if is_image.any():
                yield EmbeddedBatch("image", rows[is_image], vectors[is_image])
            if not is_image.all():
                yield EmbeddedBatch("text", text_of_row[rows[~is_image] - n], vectors[~is_image])

    def _dataset(
        self,
        data: Any,
        blocks: list[np.ndarray],
        work: Any,
        identity: ModelIdentity | None,
        size: int,
        plan: RayPlan,
    ) -> Any:
        """The Ray Data job: row numbers -> ``ImageDecoder`` actors -> ``ReplicaEncoder`` actors."""
        restarts = {"max_restarts": ACTOR_RESTARTS, "max_task_retries": ACTOR_RESTARTS}
        return (
            data.from_numpy(blocks)
            .map_batches(
                ImageDecoder,
                fn_constructor_kwargs={"work": [work]},
                batch_size=None,
                compute=data.ActorPoolStrategy(size=plan.decoders),
                num_cpus=plan.decoder_cpus,
                batch_format="numpy",
                **restarts,
            )
            .map_batches(
                ReplicaEncoder,
                fn_constructor_kwargs={
                    "spec": self.spec,
                    "options": self.options,
                    "identity": identity,
                },
                batch_size=size,
                compute=data.ActorPoolStrategy(size=plan.encoders),
                num_cpus=plan.encoder_cpus,
                num_gpus=plan.encoder_gpus,
                batch_format="numpy",
                **restarts,
            )
        )

    def _fitted(self, batches: int) -> RayPlan:
        """The plan with no more decoders or replicas than there are batches to give them: a small
        job starts (and loads the model in) only the actors it can keep busy."""
        return replace(
            self.plan,
            encoders=min(self.plan.encoders, batches),
            decoders=min(self.plan.decoders, batches),
        )

    def description(self) -> ReplicaDescription:
        """The description every replica of the job gave; an EncoderError when they differ (nodes
        with other files or library versions would mix vectors of different models)."""
        if len(self.replicas) != 1:
            raise EncoderError(
                f"The {len(self.replicas)} replicas of {self.spec!r} on the Ray cluster "
                f"{self.address!r} describe different models: {sorted(self.replicas)[:3]}. Install "
                f"the same torch, transformers and model files on every node."
            )
        return ReplicaDescription.from_json(next(iter(self.replicas)))


def gather(
    batches: Iterator[EmbeddedBatch], n_images: int, n_texts: int
) -> tuple[np.ndarray, np.ndarray]:
    """The image and text vectors of a job in row order; an EncoderError unless every row came
    exactly once."""
    arrays: dict[str, np.ndarray] = {}
    seen = {"image": np.zeros(n_images, bool), "text": np.zeros(n_texts, bool)}
    for batch in batches:
        target = arrays.get(batch.kind)
        if target is None:
            count = n_images if batch.kind == "image" else n_texts
            target = arrays[batch.kind] = np.empty((count, batch.vectors.shape[1]), np.float32)
        if batch.vectors.shape[1] != target.shape[1]:
            raise EncoderError(
                f"The replicas returned {batch.kind} vectors of widths {target.shape[1]} and "
                f"{batch.vectors.shape[1]}; every batch must have the same embedding dimension."
            )
        if seen[batch.kind][batch.rows].any():
            raise EncoderError(f"{batch.kind} rows came back twice from the Ray job.")
        seen[batch.kind][batch.rows] = True
        target[batch.rows] = batch.vectors
    for kind, present in seen.items():
        if not present.all():
            raise EncoderError(
                f"{int((~present).sum())} {kind} rows never came back from the Ray job."
            )
    return arrays["image"], arrays["text"]


def _text_order(texts: Sequence[str]) -> list[int]:
    """Texts shortest first, as the local pipeline batches them (less padding)."""
    return sorted(range(len(texts)), key=lambda i: len(texts[i]))
