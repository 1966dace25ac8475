"""What a Ray job's model replicas are: how each loads and describes itself, how its vectors are
keyed in the embedding cache (as a local run keys them), and the probe that finds the key before
the job, where the replicas will run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_modgap.embedding.ray.errors import unwrap
from pytest_modgap.embedding.ray.plan import RayPlan

if TYPE_CHECKING:
    from pytest_modgap.models.identity import ModelIdentity


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
    found: Probe = unwrap(lambda: ray.get(task.remote(spec, replica_options(options, plan), load)))
    return found


def identity_of(spec: str, options: Mapping[str, Any]) -> ModelIdentity | None:
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


def recipe_of(preprocessor: object) -> str:
    """The image recipe of a processor (a decoder's) or an encoder (a replica's) and the class that
    runs it (transformers picks a torchvision-backed "Fast" processor where torchvision imports),
    then, after a ``|``, the versions of the libraries that decode and process: decoders and
    replicas must agree on all of it."""
    from pytest_modgap.models.identity import library_versions

    preprocessing = getattr(preprocessor, "preprocessing", None)
    key = preprocessing.key() if preprocessing is not None else "none"
    runner = type(getattr(preprocessor, "image_processor", None)).__name__
    return f"{key} by {runner}|{library_versions(('transformers', 'pillow'))}"


def _probe(spec: str, options: Mapping[str, Any], load: bool) -> Probe:
    """The model's identity (from its files, nothing loaded); without one and when ``load``, the
    description of a replica loaded here."""
    from pytest_modgap.models.loader import load_encoder

    identity = identity_of(spec, options)
    if identity is not None or not load:
        return Probe(identity, None)
    encoder = load_encoder(spec, **options)
    return Probe(None, describe_replica(encoder, None, options["device"]))
