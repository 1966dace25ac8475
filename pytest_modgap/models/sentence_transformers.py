"""sentence-transformers image-text models (the ``clip-ViT-B-32`` layout) as an Encoder.

A folder or hub snapshot with a ``modules.json`` is a SentenceTransformer: it is embedded through the
library's own ``encode``, so every module it lists (CLIP, Dense, Normalize, ...) takes part. The
loader asks ``find_sentence_transformer`` about every spec, so this module imports torch lazily.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_modgap.errors import EncoderError, option_name
from pytest_modgap.models.device import (
    default_batch_size,
    dtype_name,
    resolve_device,
    resolve_dtype,
)
from pytest_modgap.models.source import ModelSource, hub_file, hub_snapshot

if TYPE_CHECKING:
    import torch
    from PIL import Image

RECIPE = "sentence-transformers/1"
"""Version of how this module calls ``encode``; part of every fingerprint, bump on change."""

MODULES_FILE = "modules.json"
EXTRA = "sentence-transformers"
"""The pytest-modgap extra that installs the package: ``pip install 'pytest-modgap[...]'``."""


def find_sentence_transformer(spec: str) -> ModelSource | None:
    """The model a spec names, when it is a SentenceTransformer to be embedded as one, else None.

    That is a local directory or a (possibly ``@revision``-pinned) hub id from the local cache
    whose top level holds ``modules.json``, unless its config.json maps AutoModel to the model's
    own code: jina-clip-v2 and jina-embeddings-v4 ship a ``modules.json`` too, but are driven
    through their own ``encode_text`` / ``encode_image`` (``models.remote``).
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        directory, repo_id, commit = path.resolve(), None, None
        if not (directory / MODULES_FILE).is_file():
            return None
    else:
        found = hub_file(spec, MODULES_FILE)
        if found is None:
            return None
        directory, repo_id, commit = found
        hub_file(f"{repo_id}@{commit}", "config.json")  # fetched, if it exists, to read auto_map
    config = _json_object(directory / "config.json")
    if isinstance(config.get("auto_map"), dict) and "AutoModel" in config["auto_map"]:
        return None
    if repo_id is not None and commit is not None:
        directory = _snapshot(spec, repo_id, commit)
    return ModelSource(
        spec=spec, directory=directory, config=config, repo_id=repo_id, commit=commit
    )


def _snapshot(spec: str, repo_id: str, commit: str) -> Path:
    """Every file of the hub snapshot, which sentence-transformers loads as one folder."""
    try:
        return hub_snapshot(repo_id, commit)
    except Exception as exc:  # huggingface_hub raises several types for a missing snapshot
        raise EncoderError(
            f"Model spec {spec!r} is a sentence-transformers model on the hub ({repo_id} at "
            f"{commit}), but its snapshot could not be completed in the local cache ({exc}). "
            f"Download it beforehand (huggingface-cli download {repo_id}) and run with "
            f"HF_HUB_OFFLINE=1."
        ) from exc


def _json_object(path: Path) -> dict[str, Any]:
    """A JSON file's object, or {} when the file is absent or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class SentenceTransformerEncoder:
    """A ``SentenceTransformer`` whose modules embed both images and texts, as an Encoder.

    Images and texts go through ``encode`` unchanged (its own processor, tokenizer, pooling and
    any Dense / Normalize modules), ``normalize_embeddings=False`` so the vectors are the model's
    own, ``convert_to_tensor=True`` so they stay on the model's device.
    """

    def __init__(
        self,
        source: ModelSource,
        model: Any,
        *,
        device: torch.device,
        dtype: torch.dtype,
        batch_size: int,
        library_version: str,
    ) -> None:
        self.spec = source.spec
        self.source = source
        self.model = model
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.library_version = library_version
        self.model_name = source.repo_id or source.directory.name
        self._fingerprint: str | None = None
        self.embedding_dim = int(self.encode_texts(["a"]).shape[1])

    @classmethod
    def load(
        cls,
        source: ModelSource,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int | None = None,
        trust_remote_code: bool = False,
    ) -> SentenceTransformerEncoder:
        """Load the folder with ``SentenceTransformer`` onto ``device`` in ``dtype``, offline."""
        try:
            import sentence_transformers
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EncoderError(
                f"Model {source.spec!r} is a sentence-transformers model ({MODULES_FILE} in "
                f"{source.directory}), and the sentence-transformers package is not installed "
                f"({exc}). Install it with: pip install 'pytest-modgap[{EXTRA}]'."
            ) from exc
        from pytest_modgap.models.quiet import quiet_transformers

        resolved_device = resolve_device(device)
        resolved_dtype = resolve_dtype(dtype, resolved_device)
        try:
            with quiet_transformers():
                model = SentenceTransformer(
                    str(source.directory),
                    device=str(resolved_device),
                    trust_remote_code=trust_remote_code,
                    local_files_only=True,
                )
        except Exception as exc:  # sentence-transformers raises many types while loading
            raise EncoderError(
                f"Model {source.spec!r}: sentence-transformers {sentence_transformers.__version__} "
                f"could not load {source.directory} ({type(exc).__name__}: {exc}). Check that "
                f"{MODULES_FILE} and every module folder it names are complete; a module with its "
                f"own code needs {option_name('--modgap-trust-remote-code')}."
            ) from exc
        modalities = getattr(model, "modalities", None)
        if isinstance(modalities, list) and "image" not in modalities:
            raise EncoderError(
                f"Model {source.spec!r} is a sentence-transformers model that embeds "
                f"{' and '.join(map(str, modalities))} but not images (its first module is "
                f"{type(model[0]).__name__}), so it has no image-text gap to measure. Point "
                f"{option_name('--modgap-model')} at an image-text model such as the "
                f"clip-ViT-B-32 layout."
            )
        model.to(device=resolved_device, dtype=resolved_dtype)
        model.eval()
        n_parameters = sum(parameter.numel() for parameter in model.parameters())
        return cls(
            source,
            model,
            device=resolved_device,
            dtype=resolved_dtype,
            batch_size=batch_size or default_batch_size(resolved_device, n_parameters),
            library_version=str(sentence_transformers.__version__),
        )

    def fingerprint(self) -> str:
        """Recipe, library version (its ``encode`` does the preprocessing), every file of the
        folder (or the hub commit, which pins them) and dtype."""
        if self._fingerprint is None:
            self._fingerprint = "|".join(
                (
                    RECIPE,
                    f"sentence-transformers={self.library_version}",
                    self.source.fingerprint(),
                    dtype_name(self.dtype),
                )
            )
        return self._fingerprint

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed strings with ``encode``: (len(texts), d) on the model's device."""
        return self._encode(list(texts), "texts")

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Embed RGB images with ``encode``: (len(images), d) on the model's device."""
        return self._encode([image.convert("RGB") for image in images], "images")

    def _encode(self, items: list[Any], what: str) -> torch.Tensor:
        import torch

        from pytest_modgap.models.factory import to_embedding_matrix

        if not items:
            return torch.empty((0, self.embedding_dim), device=self.device, dtype=self.dtype)
        try:
            with torch.inference_mode():
                output = self.model.encode(
                    items,
                    batch_size=self.batch_size,
                    convert_to_tensor=True,
                    normalize_embeddings=False,
                    show_progress_bar=False,
                )
        except (ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise EncoderError(
                f"Model {self.spec!r}: SentenceTransformer.encode on {len(items)} {what} failed "
                f"({type(exc).__name__}: {exc}). Check that the model's first module embeds "
                f"{what} (the clip-ViT-B-32 layout: a CLIPModel module)."
            ) from exc
        return to_embedding_matrix(output, len(items), "SentenceTransformer.encode", self.spec)
