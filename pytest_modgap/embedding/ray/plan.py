"""How a Ray job uses a cluster: how many model replicas and decoders, and what each asks for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pytest_modgap.errors import ModgapInputError

CPU_REPLICA_THREADS = 4
"""CPUs (torch threads) of each replica on a cluster without GPUs: a quarter of the model copies
that one replica per CPU would hold in memory, at nearly the same throughput."""

DEFAULT_BATCH = {"gpu": 256, "cpu": 32}
"""Images or texts per replica call when no batch size is given."""


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
