"""Models that ship their own code (jina-clip-v2, jina-embeddings-v4) as an Encoder.

Loaded with trust_remote_code (only when allowed) and driven by their encode_image / encode_text.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from collections.abc import Callable, Sequence
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
from pytest_modgap.models.hf_clip import from_pretrained_dtype

if TYPE_CHECKING:
    from PIL import Image

    from pytest_modgap.models.source import ModelSource

RECIPE = "remote/1"
"""Version of how this module calls the models' methods; part of every fingerprint."""

DEFAULT_PROMPT_NAME = "passage"
"""jina-embeddings-v4 prefixes texts with a query or passage prompt; captions describe content the
way documents do, so they are embedded as passages (the query prompt is for search queries)."""

# The models' return-type switches, set so that every call returns tensors, one vector per input.
_OUTPUT_SWITCHES: dict[str, object] = {
    "convert_to_tensor": True,
    "convert_to_numpy": False,
    "return_numpy": False,
    "return_multivector": False,
    "show_progress_bar": False,
}


class RemoteCodeEncoder:
    """A model whose own code has ``encode_image(images, ...)`` and ``encode_text(texts, ...)``.

    jina-clip-v2: ``encode_text(sentences, task=None, ..., truncate_dim=None)`` and
    ``encode_image(images, ..., truncate_dim=None)``; no task means the plain text tower.
    jina-embeddings-v4: both methods take ``task`` ("retrieval", "text-matching", "code"; default
    here "retrieval", the adapter of the paper's cross-modal evaluation) and ``truncate_dim``
    (Matryoshka), and ``encode_text`` takes ``prompt_name`` ("passage" here, see
    ``DEFAULT_PROMPT_NAME``). Only keywords a method declares are passed, so either model works.
    """

    def __init__(
        self,
        source: ModelSource,
        model: Any,
        *,
        device: torch.device,
        dtype: torch.dtype,
        batch_size: int,
        task: str | None,
        truncate_dim: int | None,
        prompt_name: str | None,
    ) -> None:
        self.spec = source.spec
        self.source = source
        self.model = model
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.task = task
        self.truncate_dim = truncate_dim
        self.prompt_name = prompt_name
        self.model_name = source.repo_id or source.directory.name
        self._fingerprint: str | None = None
        self.embedding_dim = int(self.encode_texts(["a"]).shape[1])

    @classmethod
    def load(
        cls,
        source: ModelSource,
        *,
        trust_remote_code: bool,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int | None = None,
        task: str | None = None,
        truncate_dim: int | None = None,
        prompt_name: str | None = DEFAULT_PROMPT_NAME,
    ) -> RemoteCodeEncoder:
        """Load the model with its own code, after checking that the user allowed running it."""
        if not trust_remote_code:
            raise EncoderError(
                f"Model {source.spec!r} ships its own Python code (config.json auto_map: "
                f"AutoModel -> {source.remote_code_class}), and running it was not allowed. Read "
                f"that code, then allow it with --modgap-trust-remote-code on the pytest command "
                f"line (modgap_trust_remote_code = true in the ini file) or "
                f"trust_remote_code=True in load_encoder()."
            )
        if truncate_dim is not None and (isinstance(truncate_dim, bool) or truncate_dim < 1):
            raise EncoderError(
                f"Model {source.spec!r}: truncate_dim={truncate_dim!r} is not a positive number "
                f"of dimensions. Use one the model supports (jina-embeddings-v4: 128, 256, 512, "
                f"1024, 2048; jina-clip-v2: 64 to 1024), or leave it unset for full vectors."
            )
        from transformers import AutoModel

        from pytest_modgap.models.quiet import quiet_transformers

        resolved_device = resolve_device(device)
        resolved_dtype = resolve_dtype(dtype, resolved_device)
        try:
            with quiet_transformers():
                model = AutoModel.from_pretrained(
                    source.load_path,
                    revision=source.revision,
                    trust_remote_code=True,
                    **from_pretrained_dtype(resolved_dtype),
                )
        except Exception as exc:  # remote code can raise anything while building itself
            raise EncoderError(
                f"Model {source.spec!r}: loading it with its own code failed "
                f"({type(exc).__name__}: {exc}). Check that every file its config.json auto_map "
                f"names is in the directory or the hub cache, and that its code supports this "
                f"transformers version."
            ) from exc
        missing = [
            name
            for name in ("encode_image", "encode_text")
            if not callable(getattr(model, name, None))
        ]
        if missing:
            raise EncoderError(
                f"Model {source.spec!r} loads as {type(model).__name__}, which has no "
                f"{' / '.join(missing)}: no image or no text tower to embed with. pytest-modgap "
                f"needs encode_image and encode_text (jina-clip-v2, jina-embeddings-v4) or "
                f"get_image_features and get_text_features (CLIP family); wrap anything else as "
                f"'module:factory'."
            )
        declared = _keywords(model.encode_text) | _keywords(model.encode_image)
        for option, value in (("task", task), ("truncate_dim", truncate_dim)):
            if value is not None and option not in declared:
                raise EncoderError(
                    f"Model {source.spec!r}: its encode_text / encode_image take no {option}, so "
                    f"{option}={value!r} cannot be applied. Remove it for this model."
                )
        model.to(resolved_device)
        model.eval()
        n_parameters = sum(parameter.numel() for parameter in model.parameters())
        return cls(
            source,
            model,
            device=resolved_device,
            dtype=resolved_dtype,
            batch_size=batch_size or default_batch_size(resolved_device, n_parameters),
            task=_choose_task(source.spec, model, task),
            truncate_dim=truncate_dim,
            prompt_name=prompt_name,
        )

    def fingerprint(self) -> str:
        """Recipe, code entry point, the code itself, weights, dtype and every option that changes
        the vectors."""
        if self._fingerprint is None:
            self._fingerprint = "|".join(
                (
                    RECIPE,
                    str(self.source.remote_code_class),
                    f"code={_code_digest(self.source.spec, type(self.model))}",
                    self.source.fingerprint(),
                    dtype_name(self.dtype),
                    f"task={self.task}",
                    f"truncate_dim={self.truncate_dim}",
                    f"prompt_name={self.prompt_name}",
                )
            )
        return self._fingerprint

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed strings with the model's ``encode_text``: (len(texts), d) tensor."""
        return self._encode(self.model.encode_text, list(texts), "encode_text")

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Embed RGB images with the model's ``encode_image``: (len(images), d) tensor."""
        return self._encode(
            self.model.encode_image, [image.convert("RGB") for image in images], "encode_image"
        )

    def _encode(self, method: Callable[..., Any], items: list[Any], name: str) -> torch.Tensor:
        """Call ``method`` per batch with the keywords it declares and stack the results."""
        options: dict[str, object] = {
            **_OUTPUT_SWITCHES,
            "batch_size": self.batch_size,
            "task": self.task,
            "truncate_dim": self.truncate_dim,
            "prompt_name": self.prompt_name,
        }
        accepted = _keywords(method)
        kwargs = {
            key: value for key, value in options.items() if key in accepted and value is not None
        }
        chunks = []
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            try:
                with torch.inference_mode():
                    output = method(batch, **kwargs)
            except (ValueError, TypeError, KeyError) as exc:
                raise EncoderError(
                    f"Model {self.spec!r}: {name}(..., {_describe(kwargs)}) failed "
                    f"({type(exc).__name__}: {exc}). Check the task and truncate_dim given to "
                    f"load_encoder() against what the model supports."
                ) from exc
            chunks.append(to_embedding_matrix(output, len(batch), name, self.spec))
        if not chunks:
            return torch.empty((0, self.embedding_dim), device=self.device, dtype=self.dtype)
        return torch.cat(chunks) if len(chunks) > 1 else chunks[0]


def _choose_task(spec: str, model: Any, task: str | None) -> str | None:
    """The adapter to use: the user's, checked against the model's ``task_names`` when it has them.

    jina-embeddings-v4 refuses to encode without a task; its config lists the adapters, and
    "retrieval" is the one its paper uses for image-text alignment. Models without a task list
    (jina-clip-v2) keep ``None`` unless the user names one.
    """
    names = getattr(getattr(model, "config", None), "task_names", None)
    if not names:
        return task
    available = [str(name) for name in names]
    if task is None:
        if "retrieval" in available:
            return "retrieval"
        raise EncoderError(
            f"Model {spec!r} needs a task, one of {available}. Pass task=... to load_encoder()."
        )
    if task not in available:
        raise EncoderError(
            f"Model {spec!r} has no task {task!r}; its tasks are {available}. Pass one of those."
        )
    return task


def _code_digest(spec: str, model_class: type) -> str:
    """sha256 of the Python files beside the module that defines ``model_class``.

    The weights' fingerprint does not pin the code: an auto_map entry ``org/repo--module.Class``
    (jina-clip-v2's) loads code from another repo at whatever commit its main branch is at. The
    files are hashed where transformers put the code it ran (its modules cache), whatever it came
    from.
    """
    module = sys.modules.get(model_class.__module__)
    module_file = getattr(module, "__file__", None)
    if module_file is None:
        return "unknown"
    digest = hashlib.sha256()
    for path in sorted(Path(module_file).parent.glob("*.py")):
        try:
            digest.update(f"{path.name}\0{file_digest(path)}\0".encode())
        except OSError as exc:
            raise EncoderError(
                f"Model {spec!r}: cannot read its code {path} to fingerprint the model for the "
                f"embedding cache ({exc.strerror or exc}). Make the file readable."
            ) from exc
    return digest.hexdigest()


def _keywords(method: Callable[..., Any]) -> set[str]:
    """The keywords a bound method declares by name (its first argument, the inputs, excluded)."""
    parameters = list(inspect.signature(method).parameters.values())[1:]
    return {
        parameter.name
        for parameter in parameters
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }


def _describe(kwargs: dict[str, object]) -> str:
    """The keywords of a call, for error messages."""
    return ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
