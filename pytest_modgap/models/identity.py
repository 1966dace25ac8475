"""What a model spec's embeddings depend on, computed from its files and options without loading it.

The embedding cache is keyed by it, so a cache hit builds no model, no tokenizer, no transformers.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_modgap.errors import EncoderError

if TYPE_CHECKING:
    import torch

    from pytest_modgap.models.source import ModelSource

IDENTITY_FORMAT = "model-identity/1"
"""Version of what an identity covers; part of every identity, bumped whenever that changes."""

# Libraries whose code turns the same files into the vectors: a new version may change them
# (a processor default, a model's code, image decoding), so each version is part of the identity.
_LIBRARIES = ("torch", "transformers", "pillow")

# Files that mark a directory without remote code as another family's layout (sentence-transformers,
# open_clip): the loader routes those to their own modules, which this module does not mirror.
# (jina models ship a modules.json too, but their auto_map sends them to models.remote.)
_OTHER_LAYOUTS = ("modules.json", "open_clip_config.json", "open_clip_pytorch_model.bin")

# Module of the encoder class each family loads as; the identity checks a loaded encoder against it.
_FAMILY_MODULES = {
    "hf_clip": "pytest_modgap.models.hf_clip",
    "remote": "pytest_modgap.models.remote",
}


@dataclass(frozen=True)
class ModelIdentity:
    """Everything that decides a model's vectors, known before loading it.

    ``key``: a string that changes whenever the vectors can change: the family and its recipe
    version, the weights (a local directory hashed whole, file by file; a hub snapshot by its
    commit), the device type and dtype the model would run in, the versions of torch, transformers
    and Pillow (peft for remote code; torchvision on CUDA, where it decodes the images), and the
    options of remote-code models. ``device`` and ``dtype`` are where the model would run: ``cuda`` /
    ``bfloat16`` when the spec's options leave them open and a GPU is there.
    """

    spec: str
    family: str
    key: str
    device: str
    dtype: str

    def describes(self, encoder: object) -> bool:
        """True when ``encoder`` (loaded from ``spec``) is the family, device and dtype assumed
        here: only then may its vectors be stored under ``key``."""
        from pytest_modgap.models.device import dtype_name

        module = _FAMILY_MODULES.get(self.family)
        device = getattr(encoder, "device", None)
        dtype = getattr(encoder, "dtype", None)
        return (
            type(encoder).__module__ == module
            and getattr(device, "type", None) == self.device.split(":")[0]
            and dtype is not None
            and dtype_name(dtype) == self.dtype
        )


def model_identity(
    spec: str,
    *,
    device: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
    task: str | None = None,
    truncate_dim: int | None = None,
) -> ModelIdentity | None:
    """The identity of what ``load_encoder(spec, ...)`` would load, without loading it; None when
    it cannot be known from the files (then load the model and use its own ``fingerprint()``).

    Known: a local directory or a hub id (cached snapshot) of the transformers CLIP family, and a
    remote-code model (jina-embeddings-v4 style) whose code lies in the same directory or snapshot,
    when remote code is allowed. None for ``embeddings:`` files (no model to load), ``module:factory``
    specs (only the object knows what it loads), remote code from another repository (the code's
    version is known only once transformers fetched it), other layouts (sentence-transformers,
    open_clip) and for anything the loader would refuse, so that the loader gives its own error.
    Device and dtype errors (``--device cuda`` without a GPU) are raised here, as loading would.
    """
    from pytest_modgap.models.loader import EMBEDDINGS_PREFIX, is_factory_spec

    if spec.startswith(EMBEDDINGS_PREFIX) or is_factory_spec(spec):
        return None
    source = _source(spec)
    if source is None:
        return None
    family = "hf_clip" if source.remote_code_class is None else "remote"
    if family == "hf_clip" and any((source.directory / name).exists() for name in _OTHER_LAYOUTS):
        return None  # a sentence-transformers or open_clip folder: its own loader and library
    if family == "hf_clip" and (task is not None or truncate_dim is not None):
        return None  # the loader refuses these options for this family, with its own message
    if family == "remote" and (not trust_remote_code or _code_elsewhere(source)):
        return None

    from pytest_modgap.models.device import dtype_name, resolve_device, resolve_dtype

    resolved_device = resolve_device(device)
    resolved_dtype = dtype_name(resolve_dtype(dtype, resolved_device))
    parts = [
        IDENTITY_FORMAT,
        family,
        _recipe(family),
        source.fingerprint(),
        f"device={resolved_device.type}",
        f"dtype={resolved_dtype}",
        *_versions(resolved_device, family),
    ]
    if family == "remote":
        from pytest_modgap.models.remote import prompt_name_for

        parts += [
            f"auto_map={source.remote_code_class}",
            f"task={task}",
            f"truncate_dim={truncate_dim}",
            f"prompt_name={prompt_name_for(task)}",
        ]
    return ModelIdentity(
        spec=spec,
        family=family,
        key="|".join(parts),
        device=str(resolved_device),
        dtype=resolved_dtype,
    )


def _source(spec: str) -> ModelSource | None:
    """The spec's config.json, resolved as the loader resolves it; None when it cannot be."""
    from pytest_modgap.models.source import resolve_model_source

    try:
        return resolve_model_source(spec)
    except EncoderError:
        return None  # the loader tries its other routes, or raises this error itself


def _code_elsewhere(source: ModelSource) -> bool:
    """True when an ``auto_map`` entry loads code from another repo (``org/repo--module.Class``):
    that code is fetched at whatever commit the other repo's branch is at, which neither the
    weights' commit nor the directory's hash pins."""
    auto_map = source.config.get("auto_map")
    entries = auto_map.values() if isinstance(auto_map, dict) else ()
    for entry in entries:
        names = entry if isinstance(entry, list) else [entry]
        if any(isinstance(name, str) and "--" in name for name in names):
            return True
    return False


def _recipe(family: str) -> str:
    """The version string of how the family's module feeds the model (bumped with that module)."""
    if family == "remote":
        from pytest_modgap.models.remote import RECIPE as REMOTE_RECIPE

        return REMOTE_RECIPE
    from pytest_modgap.models.hf_clip import RECIPE as HF_RECIPE

    return HF_RECIPE


def library_versions(names: tuple[str, ...] = _LIBRARIES) -> str:
    """``torch=2.13.0,transformers=...,pillow=...``: the installed versions of ``names``, for
    comparing the environments of two processes (a Ray job's workers)."""
    return ",".join(f"{name}={_version(name)}" for name in names)


def _versions(device: torch.device, family: str) -> list[str]:
    """``name=version`` of every library that turns the files into vectors on ``device``: peft
    too for remote code (jina-embeddings-v4 runs its adapters through it), torchvision on CUDA
    (the GPU decodes and resizes the images there)."""
    libraries = list(_LIBRARIES)
    if family == "remote":
        libraries.append("peft")
    if device.type == "cuda":
        libraries.append("torchvision")
    return [f"{name}={_version(name)}" for name in libraries]


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
