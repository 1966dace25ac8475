"""open_clip models (LAION, DataComp, MetaCLIP checkpoints) as an Encoder: ``open_clip:ARCH@PRETRAINED``.

The model, its validation transform and its tokenizer all come from open_clip itself
(``create_model_and_transforms``, ``get_tokenizer``), so images and texts are prepared as in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from pytest_modgap.errors import EncoderError
from pytest_modgap.models.content_hash import file_digest
from pytest_modgap.models.device import (
    default_batch_size,
    dtype_name,
    resolve_device,
    resolve_dtype,
)
from pytest_modgap.models.factory import to_embedding_matrix
from pytest_modgap.models.source import ModelSource, hub_file

if TYPE_CHECKING:
    from PIL import Image

PREFIX = "open_clip:"
RECIPE = "open_clip/1"
"""Version of how this module calls open_clip; part of every fingerprint, bump on change."""

EXTRA = "open-clip"
"""The pytest-modgap extra that installs the package: ``pip install 'pytest-modgap[...]'``."""

HF_HUB = "hf-hub:"
LOCAL_DIR = "local-dir:"
_SCHEMAS = (HF_HUB, LOCAL_DIR)

HUB_CONFIG = "open_clip_config.json"
"""The file open_clip reads from an ``hf-hub:`` repo for the architecture and preprocessing."""

# open_clip's own precision names (factory._set_model_device_and_precision): "pure_*" casts every
# weight, so the image batch is cast to the same dtype (model.get_input_dtype).
_PRECISION = {"float32": "fp32", "bfloat16": "pure_bf16", "float16": "pure_fp16"}


@dataclass(frozen=True)
class OpenClipSpec:
    """A parsed ``open_clip:`` spec: what ``create_model_and_transforms`` receives.

    ``model_name`` is a built-in architecture (``ViT-B-32``) or carries open_clip's own schema
    (``hf-hub:org/name``, ``local-dir:/path``), in which case the repo or folder holds the
    architecture and the weights and ``pretrained`` is None (open_clip ignores it then).
    """

    spec: str
    model_name: str
    pretrained: str | None

    @property
    def weights_file(self) -> Path | None:
        """The local checkpoint file ``pretrained`` names, if it names one."""
        if self.pretrained is None:
            return None
        path = Path(self.pretrained).expanduser()
        return path if path.is_file() else None


def parse_open_clip_spec(spec: str) -> OpenClipSpec:
    """``open_clip:ARCH@TAG``, ``open_clip:ARCH@/path/to/checkpoint.pt``,
    ``open_clip:hf-hub:org/name`` (or ``open_clip:ARCH@hf-hub:org/name``) or
    ``open_clip:local-dir:/path``; anything else is an EncoderError naming the forms."""
    body = spec[len(PREFIX) :]
    if body.startswith(_SCHEMAS):
        model_name, pretrained = body, None
    elif "@" in body:
        arch, pretrained_part = body.split("@", 1)
        if not arch or not pretrained_part:
            raise _grammar_error(spec, "the architecture or the weights after '@' is empty")
        if pretrained_part.startswith(HF_HUB):
            # The hub repo's open_clip_config.json defines the architecture; ARCH is a label.
            model_name, pretrained = pretrained_part, None
        else:
            model_name, pretrained = arch, pretrained_part
    else:
        raise _grammar_error(
            spec,
            "no weights are named, and a randomly initialised open_clip model gives different "
            "vectors on every load",
        )
    if model_name in _SCHEMAS:
        raise _grammar_error(spec, f"nothing follows {model_name!r}")
    return OpenClipSpec(spec=spec, model_name=model_name, pretrained=pretrained)


def _grammar_error(spec: str, problem: str) -> EncoderError:
    return EncoderError(
        f"Model spec {spec!r}: {problem}. Write open_clip:ARCH@TAG (a pretrained tag, e.g. "
        f"open_clip:ViT-B-32@laion2b_s34b_b79k), open_clip:ARCH@/path/to/checkpoint.pt, "
        f"open_clip:hf-hub:org/name or open_clip:local-dir:/path/to/folder."
    )


class OpenClipEncoder:
    """An open_clip model with ``encode_image`` / ``encode_text``, as an Encoder.

    Images go through the validation transform ``create_model_and_transforms`` returns (resize,
    crop, normalise as the checkpoint was trained), texts through ``get_tokenizer(model_name)``;
    both towers run with ``normalize=False`` (the model's own vectors) on the model's device.
    """

    def __init__(
        self,
        parsed: OpenClipSpec,
        model: Any,
        preprocess: Any,
        tokenizer: Any,
        *,
        device: torch.device,
        dtype: torch.dtype,
        input_dtype: torch.dtype | None,
        batch_size: int,
        library_version: str,
        weights: str,
    ) -> None:
        self.spec = parsed.spec
        self.parsed = parsed
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.dtype = dtype
        self.input_dtype = input_dtype
        self.batch_size = batch_size
        self.library_version = library_version
        self.weights = weights
        self.model_name = parsed.model_name
        self.embedding_dim = int(self.encode_texts(["a"]).shape[1])

    @classmethod
    def load(
        cls,
        spec: str,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int | None = None,
    ) -> OpenClipEncoder:
        """Create the model with its pretrained weights on ``device`` in ``dtype``."""
        parsed = parse_open_clip_spec(spec)
        try:
            import open_clip
        except Exception as exc:  # ImportError, or torchvision failing to load its compiled ops
            raise EncoderError(
                f"Model {spec!r} needs the open_clip package, which cannot be imported here "
                f"({type(exc).__name__}: {exc}). Install it with: pip install "
                f"'pytest-modgap[{EXTRA}]' (open_clip needs a torchvision built for this torch)."
            ) from exc
        resolved_device = resolve_device(device)
        resolved_dtype = resolve_dtype(dtype, resolved_device)
        precision = _PRECISION[dtype_name(resolved_dtype)]
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                parsed.model_name,
                pretrained=parsed.pretrained,
                precision=precision,
                device=resolved_device,
            )
            tokenizer = open_clip.get_tokenizer(parsed.model_name)
        except Exception as exc:  # open_clip raises RuntimeError, ValueError, OSError by case
            raise EncoderError(
                f"Model {spec!r}: open_clip {open_clip.__version__} could not create "
                f"{parsed.model_name!r} with pretrained={parsed.pretrained!r} "
                f"({type(exc).__name__}: {exc}). Check the architecture name "
                f"(open_clip.list_models()), the tag (open_clip.list_pretrained()) or the "
                f"checkpoint path; offline, the weights must already be in the cache."
            ) from exc
        missing = [
            name
            for name in ("encode_image", "encode_text")
            if not callable(getattr(model, name, None))
        ]
        if missing or not callable(preprocess):
            raise EncoderError(
                f"Model {spec!r}: open_clip built a {type(model).__name__} without "
                f"{' / '.join(missing) or 'a per-image transform'} (an audio or NaFlex model), "
                f"so it cannot embed images and texts one by one. Use an image-text model."
            )
        model.eval()
        n_parameters = sum(parameter.numel() for parameter in model.parameters())
        return cls(
            parsed,
            model,
            preprocess,
            tokenizer,
            device=resolved_device,
            dtype=resolved_dtype,
            input_dtype=open_clip.get_input_dtype(precision),
            batch_size=batch_size or default_batch_size(resolved_device, n_parameters),
            library_version=str(open_clip.__version__),
            weights=_weights_fingerprint(open_clip, parsed),
        )

    def fingerprint(self) -> str:
        """Recipe, open_clip version (its transforms and tokenizer), architecture, the weights'
        content (file hash, or the hub commit that pins them) and dtype."""
        return "|".join(
            (
                RECIPE,
                f"open_clip={self.library_version}",
                self.parsed.model_name,
                self.weights,
                dtype_name(self.dtype),
            )
        )

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Embed RGB images: open_clip's validation transform, then ``encode_image``."""
        chunks = []
        for start in range(0, len(images), self.batch_size):
            batch = [image.convert("RGB") for image in images[start : start + self.batch_size]]
            pixels = torch.stack([self.preprocess(image) for image in batch])
            pixels = pixels.to(self.device, dtype=self.input_dtype or pixels.dtype)
            with torch.inference_mode():
                output = self.model.encode_image(pixels, normalize=False)
            chunks.append(to_embedding_matrix(output, len(batch), "encode_image", self.spec))
        return self._concat(chunks)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed strings: open_clip's tokenizer (its context length), then ``encode_text``."""
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            tokens = self.tokenizer(batch).to(self.device)
            with torch.inference_mode():
                output = self.model.encode_text(tokens, normalize=False)
            chunks.append(to_embedding_matrix(output, len(batch), "encode_text", self.spec))
        return self._concat(chunks)

    def _concat(self, chunks: list[torch.Tensor]) -> torch.Tensor:
        if not chunks:
            return torch.empty((0, self.embedding_dim), device=self.device, dtype=self.dtype)
        return torch.cat(chunks) if len(chunks) > 1 else chunks[0]


def _weights_fingerprint(open_clip: Any, parsed: OpenClipSpec) -> str:
    """What pins the weights: a hash of the checkpoint file (a path, or the file a pretrained tag
    downloads to), the commit of an ``hf-hub:`` snapshot, or a hash of a ``local-dir:`` folder."""
    spec = parsed.spec
    if parsed.model_name.startswith(HF_HUB):
        repo_id = parsed.model_name[len(HF_HUB) :]
        found = hub_file(repo_id, HUB_CONFIG)
        if found is None:
            raise EncoderError(
                f"Model {spec!r}: open_clip loaded {repo_id!r}, but its {HUB_CONFIG} is not in "
                f"the local hub cache, so the snapshot cannot be pinned for the embedding cache. "
                f"Download the repo (huggingface-cli download {repo_id}) and run again."
            )
        _, repo, commit = found
        return f"hub:{repo}@{commit}"
    if parsed.model_name.startswith(LOCAL_DIR):
        directory = Path(parsed.model_name[len(LOCAL_DIR) :]).expanduser()
        return ModelSource(spec=spec, directory=directory, config={}).fingerprint()
    path = parsed.weights_file
    if path is None:
        # A pretrained tag: the file open_clip downloaded it to (cached, so no second download).
        config = open_clip.get_pretrained_cfg(parsed.model_name, parsed.pretrained)
        downloaded = open_clip.download_pretrained(config) if config else ""
        if not downloaded:
            raise EncoderError(
                f"Model {spec!r}: open_clip knows no weights file for tag "
                f"{parsed.pretrained!r} of {parsed.model_name!r}, so they cannot be pinned for "
                f"the embedding cache. Name a tag from open_clip.list_pretrained() or a file."
            )
        path = Path(downloaded)
    try:
        return f"file-sha256:{file_digest(path)}"
    except OSError as exc:
        raise EncoderError(
            f"Model {spec!r}: cannot read the checkpoint {path} to fingerprint it for the "
            f"embedding cache ({exc.strerror or exc}). Make it readable."
        ) from exc
