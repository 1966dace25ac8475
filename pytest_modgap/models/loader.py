"""Load a model spec (hub id, directory, ``open_clip:``, ``module:factory``, ``embeddings:``) into an
Encoder. It parses the spec, finds the model's files offline, and hands over to the family's module.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_modgap.errors import EncoderError
from pytest_modgap.models.source import resolve_model_source

if TYPE_CHECKING:
    from pytest_modgap.models.base import Encoder
    from pytest_modgap.models.hf_clip import ProcessorPixels
    from pytest_modgap.models.precomputed import PrecomputedEmbeddings

EMBEDDINGS_PREFIX = "embeddings:"
OPEN_CLIP_PREFIX = "open_clip:"

MODEL_SPEC_FORMS: tuple[tuple[str, str], ...] = (
    ("org/name[@revision]", "a Hugging Face id (local cache); @ pins a branch, tag or commit"),
    ("DIR", "a folder: save_pretrained() output or a sentence-transformers model"),
    (f"{OPEN_CLIP_PREFIX}ARCH@PRETRAINED", "an open_clip model: a pretrained tag or a checkpoint"),
    (f"{OPEN_CLIP_PREFIX}hf-hub:org/name", "an open_clip model repo (local-dir:DIR for a folder)"),
    (f"{EMBEDDINGS_PREFIX}FILE.npz", "precomputed vectors: image and text arrays"),
    (f"{EMBEDDINGS_PREFIX}DIR", "precomputed vectors: a folder written by `modgap embed`"),
    ("module.path:factory", "factory() returns an object with encode_images and encode_texts"),
)
"""Every form ``load_encoder`` takes, one line each: the help of the ``modgap`` command lists these,
so a new family added here cannot be missing from it."""

# A dotted Python module path, a colon, then an attribute path: "my_pkg.models:build".
_FACTORY_SPEC = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def load_encoder(
    spec: str,
    *,
    device: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
    batch_size: int | None = None,
    task: str | None = None,
    truncate_dim: int | None = None,
) -> Encoder | PrecomputedEmbeddings:
    """Load what ``spec`` names, ready to embed.

    Spec grammar, tried in this order (README "Model specs" shows one example of each):

    - ``embeddings:path.npz``: precomputed vectors (device, dtype and batch size do not apply).
    - ``open_clip:ARCH@PRETRAINED``: an open_clip model; PRETRAINED is a pretrained tag or a
      checkpoint file; ``open_clip:hf-hub:org/name`` and ``open_clip:local-dir:/path`` name a repo
      or folder that holds architecture and weights (``models.open_clip``).
    - ``module.path:factory``: a colon, the left part a dotted module name and not an existing path;
      ``factory()`` returns an object with ``encode_images`` and ``encode_texts``.
    - a sentence-transformers model: a directory or cached hub id whose top level holds
      ``modules.json`` (the clip-ViT-B-32 layout), embedded with ``SentenceTransformer.encode``.
    - an existing local directory with a config.json (an ``@`` inside it is part of the path).
    - a Hugging Face id, optionally pinned: ``org/name@revision`` (branch, tag or commit), read from
      the local cache; the hub itself is only asked when HF_HUB_OFFLINE is not set.

    Models whose config.json maps AutoModel to their own code (jina-clip-v2, jina-embeddings-v4)
    need ``trust_remote_code=True``; ``task`` and ``truncate_dim`` apply to those models only.
    Every failure is an ``EncoderError`` that names the spec and the fix.
    """
    from pytest_modgap.models.device import check_batch_size

    batch_size = check_batch_size(batch_size)
    if spec.startswith(EMBEDDINGS_PREFIX):
        from pytest_modgap.models.precomputed import PrecomputedEmbeddings

        return PrecomputedEmbeddings(spec, Path(spec[len(EMBEDDINGS_PREFIX) :]).expanduser())
    if spec.startswith(OPEN_CLIP_PREFIX):
        _refuse_remote_options(spec, task, truncate_dim, "an open_clip model")
        from pytest_modgap.models.open_clip import OpenClipEncoder

        return OpenClipEncoder.load(spec, device=device, dtype=dtype, batch_size=batch_size)
    if is_factory_spec(spec):
        _refuse_remote_options(spec, task, truncate_dim, "a module:factory encoder")
        from pytest_modgap.models.factory import load_factory_encoder

        return load_factory_encoder(spec, device=device, batch_size=batch_size)

    from pytest_modgap.models.sentence_transformers import find_sentence_transformer

    sentence_transformer = find_sentence_transformer(spec)
    if sentence_transformer is not None:
        _refuse_remote_options(spec, task, truncate_dim, "a sentence-transformers model")
        from pytest_modgap.models.sentence_transformers import SentenceTransformerEncoder

        return SentenceTransformerEncoder.load(
            sentence_transformer,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            trust_remote_code=trust_remote_code,
        )
    source = resolve_model_source(spec)
    if source.remote_code_class is not None:
        from pytest_modgap.models.remote import RemoteCodeEncoder

        return RemoteCodeEncoder.load(
            source,
            trust_remote_code=trust_remote_code,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            task=task,
            truncate_dim=truncate_dim,
        )
    _refuse_remote_options(spec, task, truncate_dim, "a transformers CLIP-family model")
    from pytest_modgap.models.hf_clip import load_hf_clip

    return load_hf_clip(source, device=device, dtype=dtype, batch_size=batch_size)


def load_image_preprocessor(spec: str) -> ProcessorPixels | None:
    """The image processor that ``load_encoder(spec)``'s ``preprocess`` runs, loaded without the
    weights, for CPU workers that preprocess for a model replica elsewhere (a Ray job's decoders).

    Only the transformers CLIP family has one (a fixed resize / crop / normalise recipe); None for
    every other spec, whose images are then decoded on those workers and preprocessed by the
    replica itself.
    """
    if spec.startswith((EMBEDDINGS_PREFIX, OPEN_CLIP_PREFIX)) or is_factory_spec(spec):
        return None
    from pytest_modgap.models.sentence_transformers import find_sentence_transformer

    if find_sentence_transformer(spec) is not None:
        return None
    source = resolve_model_source(spec)
    if source.remote_code_class is not None:
        return None
    from pytest_modgap.models.hf_clip import load_processor_pixels

    return load_processor_pixels(source)


def is_factory_spec(spec: str) -> bool:
    """True for ``module.path:factory`` specs (not ``embeddings:`` or ``open_clip:``, not an
    existing path)."""
    if spec.startswith((EMBEDDINGS_PREFIX, OPEN_CLIP_PREFIX)) or not _FACTORY_SPEC.match(spec):
        return False
    return not Path(spec).exists()


def _refuse_remote_options(
    spec: str, task: str | None, truncate_dim: int | None, family: str
) -> None:
    """``task`` and ``truncate_dim`` mean something to jina models; never drop them quietly."""
    options = (("task", task), ("truncate_dim", truncate_dim))
    given = [name for name, value in options if value is not None]
    if given:
        raise EncoderError(
            f"Model spec {spec!r} is {family}, which takes no {' or '.join(given)} "
            f"(those options are for jina-clip-v2 and jina-embeddings-v4). Remove them for this "
            f"model."
        )
