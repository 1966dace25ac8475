"""The embedding pipeline as a Ray Data job: decode and preprocess on CPU workers across the
cluster, encode in a pool of model replicas (one per GPU, or per CPU worker without GPUs), and hand
the vectors back to the driver with their row numbers.

Work items are numbered: rows ``0..N-1`` are the images of the pairs, rows ``N..N+M-1`` the distinct
texts, shortest first (so a batch of texts pads little). ``ImageDecoder`` actors read and decode the
images (every format the project reads: a PairSet's images are paths, shard members or bytes) and,
for a transformers CLIP-family model, run its image processor; ``ReplicaEncoder`` actors load the
model once each from its spec and embed. Ray restarts an actor that dies and retries its batches,
so a killed worker changes nothing but the time taken.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_modgap.errors import EncoderError, ModgapError, ModgapInputError

if TYPE_CHECKING:
    from pytest_modgap.data.pairset import PairSet
    from pytest_modgap.models.identity import ModelIdentity

ACTOR_RESTARTS = 3
"""Restarts of a dead actor, and retries of its batch, before the job fails: a worker lost to a
node failure is replaced, an input that crashes every replica stops the job instead of looping."""

CPU_REPLICA_THREADS = 4
"""CPUs (torch threads) of each replica on a cluster without GPUs: a quarter of the model copies
that one replica per CPU would hold in memory, at nearly the same throughput."""

DEFAULT_BATCH = {"gpu": 256, "cpu": 32}
"""Images or texts per replica call when no batch size is given."""

_PIXELS, _RGB, _TEXT = 0, 1, 2
"""What a decoded item carries: preprocessed pixels, decoded RGB pixels, or a text."""


@dataclass(frozen=True)
class RayPlan:
    """How a job uses the cluster: ``encoders`` model replicas, each with ``encoder_gpus`` GPUs and
    ``encoder_cpus`` CPUs, and ``decoders`` CPU workers with ``decoder_cpus`` CPUs each."""

    encoders: int
    decoders: int
    encoder_gpus: float = 0.0
    encoder_cpus: float = 1.0
    decoder_cpus: float = 1.0

    @property
    def device(self) -> str:
        """Where the replicas run: ``cuda`` (each sees its own GPU as ``cuda:0``) or ``cpu``."""
        return "cuda" if self.encoder_gpus else "cpu"

    @classmethod
    def for_cluster(cls, resources: Mapping[str, float], device: str | None) -> RayPlan:
        """One replica per GPU and every other CPU decoding (a cluster with no CPU to spare gives
        the replicas fractions of all but one); without GPUs (or with ``device="cpu"``), one
        decoder per eight CPUs (at least one) and a replica on each ``CPU_REPLICA_THREADS`` of the
        others (torch threads; one model copy per replica). ``device="cuda"`` on a cluster without
        GPUs is a ModgapInputError. The plan never asks for more CPUs than the cluster has."""
        cpus = int(resources.get("CPU", 0))
        gpus = int(resources.get("GPU", 0))
        wants_cpu = device is not None and device.strip().lower() == "cpu"
        if device is not None and not wants_cpu and not device.strip().lower().startswith("cuda"):
            raise ModgapInputError(
                f"device={device!r} with a Ray address: the replicas run on 'cuda' (one GPU each) "
                f"or 'cpu'; leave the device unset to use the cluster's GPUs when it has some."
            )
        if device is not None and not wants_cpu and gpus == 0:
            raise ModgapInputError(
                f"device={device!r} with a Ray address, but the cluster has no GPUs (resources: "
                f"{dict(resources)}). Add GPU nodes, or leave the device unset to encode on CPUs."
            )
        if cpus < 2:
            raise ModgapInputError(
                f"The Ray cluster has {cpus} CPU(s); a job needs at least 2 (one decodes, one "
                f"encodes or feeds a GPU). Start the cluster with more CPUs."
            )
        if gpus and not wants_cpu:
            if cpus > gpus:
                return cls(encoders=gpus, decoders=cpus - gpus, encoder_gpus=1.0)
            # As many GPUs as CPUs (KubeRay pods of 1 CPU + 1 GPU): keep one CPU for decoding.
            share = (cpus - 1) / gpus
            return cls(encoders=gpus, decoders=1, encoder_gpus=1.0, encoder_cpus=share)
        decoders = max(1, cpus // 8)
        per_replica = min(CPU_REPLICA_THREADS, cpus - decoders)
        return cls(
            encoders=max(1, (cpus - decoders) // per_replica),
            decoders=decoders,
            encoder_cpus=float(per_replica),
        )


@dataclass(frozen=True)
class Probe:
    """What the cache needs to know before the job, found where the replicas will run: the model's
    identity from its files, or (for specs without one) the description of a replica loaded there."""

    identity: ModelIdentity | None
    description: ReplicaDescription | None


@dataclass(frozen=True)
class ReplicaDescription:
    """What decides a replica's vectors, as the embedding cache keys them (``cache_parts``)."""

    describes_identity: bool
    fingerprint: str | None
    preprocessing: str
    dtype: str
    pipeline: str
    device: str
    versions: str
    """The replica's torch, transformers and Pillow: replicas that differ do not make one model's
    vectors (``RayEmbeddingJob.description`` refuses to mix them)."""

    def cache_parts(self, identity: ModelIdentity | None) -> dict[str, str] | None:
        """The cache key's parts for this replica's vectors, as a local run would key them; None
        when nothing tells when its vectors change (no identity, no fingerprint).

        """
        if self.describes_identity and identity is not None:
            return identity_cache_parts(identity)
        if self.fingerprint is None:
            return None
        parts = {
            "encoder": self.fingerprint,
            "preprocessing": self.preprocessing,
            "dtype": self.dtype,
            "pipeline": self.pipeline,
        }
        if self.device != "cpu":
            # A fingerprint names no device: a local run's key never has this part, so a GPU
            # replica's vectors are never read back as a local CPU run's.
            parts["device"] = self.device
        return parts

    @property
    def dtype_name(self) -> str:
        """The dtype as a report's metadata names it ("bfloat16"); "float32" for an encoder without
        a dtype attribute, as a local run's metadata says."""
        return self.dtype.replace("torch.", "") or "float32"

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ReplicaDescription:
        return cls(**json.loads(text))


def identity_cache_parts(identity: ModelIdentity) -> dict[str, str]:
    """The cache key's parts for a replica that is what ``identity`` describes: the local run's
    (``model=identity.key``), and on CUDA a mark that the images went through the CPU processor,
    where a local CUDA run decodes and resizes them on the GPU (the two never share an entry)."""
    parts = {"model": identity.key}
    if identity.device.startswith("cuda"):
        parts["images"] = "cpu-processor"
    return parts


def probe_cache_parts(found: Probe) -> dict[str, str] | None:
    """The cache key's parts known before the job (``ReplicaDescription.cache_parts``)."""
    if found.identity is not None:
        return identity_cache_parts(found.identity)
    return None if found.description is None else found.description.cache_parts(None)


def describe_replica(
    encoder: object,
    identity: ModelIdentity | None,
    device: str,
    own_identity: ModelIdentity | None = None,
) -> ReplicaDescription:
    """How a loaded replica makes its vectors: the local pipeline's cache key parts, for the
    processor path the Ray job takes (``pixels`` through the model's own processor, or PIL images
    for encoders without a pixel path). ``identity`` (the probe's) describes it only when the
    replica's ``own_identity``, computed from the files on its own node, has the same key."""
    from pytest_modgap.models.base import PixelEncoder
    from pytest_modgap.models.identity import library_versions

    pixel = isinstance(encoder, PixelEncoder)
    fingerprint = getattr(encoder, "fingerprint", lambda: None)()
    same_files = (
        own_identity is not None and identity is not None and own_identity.key == identity.key
    )
    return ReplicaDescription(
        describes_identity=same_files and identity is not None and identity.describes(encoder),
        fingerprint=fingerprint,
        preprocessing=encoder.preprocessing.key() if isinstance(encoder, PixelEncoder) else "",
        dtype=str(getattr(encoder, "dtype", "")),
        pipeline="processor" if pixel else "pil",
        device=device,
        versions=library_versions(),
    )


def replica_options(options: Mapping[str, Any], plan: RayPlan) -> dict[str, Any]:
    """``load_encoder`` keywords for a replica: the user's, on the plan's device."""
    return {**options, "device": plan.device}


def probe(ray: Any, spec: str, options: Mapping[str, Any], plan: RayPlan, load: bool) -> Probe:
    """Run ``_probe`` on a worker with a replica's resources (its GPU, its files, its libraries)."""
    task = ray.remote(
        num_cpus=min(1.0, plan.encoder_cpus), num_gpus=plan.encoder_gpus, max_retries=1
    )(_probe)
    found: Probe = _unwrap(lambda: ray.get(task.remote(spec, replica_options(options, plan), load)))
    return found


def _identity(spec: str, options: Mapping[str, Any]) -> ModelIdentity | None:
    """``model_identity`` of the spec with a replica's load options, from this node's files."""
    from pytest_modgap.models.identity import model_identity

    return model_identity(
        spec,
        device=options["device"],
        dtype=options.get("dtype"),
        trust_remote_code=bool(options.get("trust_remote_code")),
        task=options.get("task"),
        truncate_dim=options.get("truncate_dim"),
    )


def _recipe(preprocessor: object) -> str:
    """The image recipe of a processor (a decoder's) or an encoder (a replica's), with the versions
    of the libraries that run it: decoders and replicas must agree on both."""
    from pytest_modgap.models.identity import library_versions

    preprocessing = getattr(preprocessor, "preprocessing", None)
    key = preprocessing.key() if preprocessing is not None else "none"
    return f"{key}|{library_versions(('transformers', 'pillow'))}"


def _probe(spec: str, options: Mapping[str, Any], load: bool) -> Probe:
    """The model's identity (from its files, nothing loaded); without one and when ``load``, the
    description of a replica loaded here."""
    from pytest_modgap.models.loader import load_encoder

    identity = _identity(spec, options)
    if identity is not None or not load:
        return Probe(identity, None)
    encoder = load_encoder(spec, **options)
    return Probe(None, describe_replica(encoder, None, options["device"]))


@dataclass(frozen=True)
class Work:
    """What the decoders read: the pairs (images unloaded) and the texts in row order."""

    pairs: PairSet
    texts: Sequence[str]
    spec: str


class ImageDecoder:
    """A Ray Data stage on CPU workers: reads and decodes the images of a batch of rows (the model's
    image processor too, for the transformers CLIP family) and passes the texts through."""

    def __init__(self, work: list[Any]) -> None:
        import ray

        from pytest_modgap.models.loader import load_image_preprocessor

        self.work: Work = ray.get(work[0])
        self.preprocess = load_image_preprocessor(self.work.spec)
        self.recipe = _recipe(self.preprocess)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from pytest_modgap.embedding.pipeline import open_rgb

        rows = np.asarray(batch["data"], np.int64)  # the one column of ray.data.from_numpy
        n = len(self.work.pairs)
        kinds = np.where(rows < n, _RGB if self.preprocess is None else _PIXELS, _TEXT)
        payloads: list[bytes] = [b""] * len(rows)
        images = [int(row) for row in rows if row < n]
        if images:
            decoded = [open_rgb(self.work.pairs, row) for row in images]
            if self.preprocess is not None:
                arrays = list(self.preprocess(decoded).numpy())
            else:
                arrays = [np.asarray(image) for image in decoded]
            for position, array in zip(np.flatnonzero(rows < n), arrays, strict=True):
                payloads[position] = _pack(array)
        for position in np.flatnonzero(rows >= n):
            payloads[position] = self.work.texts[int(rows[position]) - n].encode("utf-8")
        return {
            "row": rows,
            "kind": kinds.astype(np.int8),
            "payload": np.array(payloads, dtype=object),
            "recipe": np.full(len(rows), self.recipe, dtype=object),
        }


class ReplicaEncoder:
    """A Ray Data stage in the actor pool: one model replica, loaded once from its spec, embeds
    every batch it is given (images and texts) and tags the vectors with its description."""

    def __init__(self, spec: str, options: dict[str, Any], identity: ModelIdentity | None) -> None:
        from pytest_modgap.models.loader import load_encoder

        encoder = load_encoder(spec, **options)
        if not hasattr(encoder, "encode_texts"):
            raise EncoderError(f"Model spec {spec!r} names precomputed embeddings: nothing to run.")
        self.encoder: Any = encoder
        own = None if identity is None else _identity(spec, options)
        self.description = describe_replica(encoder, identity, options["device"], own).to_json()
        self.recipe = _recipe(encoder)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        from pytest_modgap.embedding.pipeline import one_row_per_input

        rows = np.asarray(batch["row"], np.int64)
        kinds = np.asarray(batch["kind"])
        payloads = batch["payload"]
        outputs: dict[int, torch.Tensor] = {}
        with torch.inference_mode():
            for kind, positions in _groups(kinds):
                items = [payloads[position] for position in positions]
                if kind == _TEXT:
                    texts = [bytes(item).decode("utf-8") for item in items]
                    output = self.encoder.encode_texts(texts)
                elif kind == _PIXELS:
                    self._check_recipe({str(batch["recipe"][p]) for p in positions}, whole=True)
                    pixels = torch.from_numpy(np.stack([_unpack(item) for item in items]))
                    output = self.encoder.forward_pixels(pixels)
                else:
                    self._check_recipe({str(batch["recipe"][p]) for p in positions}, whole=False)
                    output = self._embed_rgb([_unpack(item) for item in items])
                what = "text" if kind == _TEXT else "image"
                output = one_row_per_input(output, len(positions), what).float().cpu()
                for position, vector in zip(positions, output, strict=True):
                    outputs[int(position)] = vector
        if not outputs:
            vectors = np.zeros((0, 0), np.float32)
        else:
            vectors = torch.stack([outputs[p] for p in range(len(rows))]).numpy()
        return {
            "row": rows,
            "vector": vectors,
            "replica": np.full(len(rows), self.description, dtype=object),
        }

    def _embed_rgb(self, arrays: list[np.ndarray]) -> Any:
        from PIL import Image

        from pytest_modgap.models.base import PixelEncoder

        images = [Image.fromarray(array) for array in arrays]
        if isinstance(self.encoder, PixelEncoder):
            return self.encoder.forward_pixels(self.encoder.preprocess(images))
        return self.encoder.encode_images(images)

    def _check_recipe(self, recipes: set[str], *, whole: bool) -> None:
        """Refuse images that decoders prepared otherwise than this replica would: the whole
        recipe for preprocessed pixels, the decoding libraries' versions for decoded pixels."""

        def part(recipe: str) -> str:
            return recipe if whole else recipe.partition("|")[2]

        if {part(recipe) for recipe in recipes} != {part(self.recipe)}:
            raise EncoderError(
                f"Model {self.encoder.spec!r}: the decoders preprocessed images with "
                f"{sorted(recipes)}, but this replica's own processor and libraries are "
                f"{self.recipe}. Install the same transformers and Pillow on every node, and give "
                f"every node the same model files (a shared folder or one hub revision)."
            )


def _groups(kinds: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    for kind in (_PIXELS, _RGB, _TEXT):
        positions = np.flatnonzero(kinds == kind)
        if len(positions):
            yield kind, positions


def _pack(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _unpack(data: bytes) -> np.ndarray:
    array: np.ndarray = np.load(io.BytesIO(bytes(data)), allow_pickle=False)
    return array


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
        from pytest_modgap.embedding.ray_cluster import connect

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
            batch = _unwrap(lambda: next(batches, None))
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


def _unwrap(call: Any) -> Any:
    """``call()``, with a pytest-modgap error raised in a worker re-raised here as itself: Ray
    wraps it in its own exception types, whose message buries the one that says what to do."""
    from pytest_modgap import errors

    try:
        return call()
    except Exception as exc:
        if isinstance(exc, ModgapError) and type(exc).__module__ == errors.__name__:
            raise  # raised here, not in a worker (Ray's copies subclass both)
        cause = worker_error(exc)
        if cause is None:
            raise
        raise cause from exc


_WORKER_ERROR = re.compile(r"^pytest_modgap\.errors\.(\w+): (.+)$", re.MULTILINE)


def worker_error(exc: BaseException) -> ModgapError | None:
    """The pytest-modgap error a worker raised, from a Ray exception: found in its chain of causes,
    else as the last error of the worker's traceback that Ray carries as text (Ray Data's
    ``UserCodeException`` travels without its cause), when no other error broke out while it was
    handled. None when a worker raised anything else."""
    from pytest_modgap import errors

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ModgapError) and type(current).__module__ == errors.__name__:
            return current
        cause = getattr(current, "cause", None)
        current = cause if isinstance(cause, BaseException) else current.__cause__
    text = str(exc)
    found = list(_WORKER_ERROR.finditer(text))
    if not found:
        return None
    last = found[-1]
    if "During handling of the above exception" in text[last.end() :]:
        return None  # another error broke out while this one was handled: that one matters
    kind = getattr(errors, last.group(1), None)
    if isinstance(kind, type) and issubclass(kind, ModgapError):
        error: ModgapError = kind(last.group(2))
        return error
    return None
