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

from pytest_modgap.errors import EncoderError, option_name
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

RECIPE = "remote/2"
"""Version of how this module calls the models' methods; part of every fingerprint.
2: the code digest reads jina-embeddings-v4's code under its PeftModel wrapper; text-matching
embeds captions with the query prompt."""

DEFAULT_PROMPT_NAME = "passage"
"""jina-embeddings-v4 prefixes texts with "Query: " or "Passage: " (``prompt_name``; its own
default is "query"). Captions describe content the way documents do, so they are embedded as
passages, except under the symmetric "text-matching" task (see ``prompt_name_for``)."""

_DYNAMIC_MODULES = "transformers_modules"
"""Package under which transformers imports the code a model ships (trust_remote_code)."""

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

    What the two jina models' code does (read in their ``modeling_clip.py`` and
    ``modeling_jina_embeddings_v4.py``; the test doubles in tests/models/tiny_models.py mirror it):

    - jina-clip-v2 (``JinaCLIPModel``): ``encode_text(sentences, task=None, batch_size=32, ...,
      convert_to_numpy=True, convert_to_tensor=False, device=None, normalize_embeddings=True,
      truncate_dim=None, **tokenizer_kwargs)`` and ``encode_image(images, batch_size=32, ...)``
      (no task). ``task`` only picks an instruction prefix from the text tower's
      ``task_instructions``; None means the config's default (none for jina-clip-v2).
      ``convert_to_tensor=True`` returns one stacked tensor on the model's device. Vectors are
      truncated to ``truncate_dim or config.truncate_dim``, then L2-normalised.
    - jina-embeddings-v4 (``JinaEmbeddingsV4Model``, returned wrapped in a peft ``PeftModel``):
      both methods take ``task`` (one of ``config.task_names``: "retrieval", "text-matching",
      "code"; it has no default, so "retrieval", the adapter of the paper's cross-modal
      evaluation, is chosen here), ``batch_size=8``, ``return_numpy=False`` and ``truncate_dim``
      (one of ``config.matryoshka_dims``, checked here at load time); ``encode_text`` takes
      ``prompt_name`` (see ``DEFAULT_PROMPT_NAME``). Each call returns a list of L2-normalised
      1-D tensors on the model's device, computed under bfloat16 autocast whatever dtype the
      weights were loaded in. Its progress bar (config ``verbosity``) is switched off.

    Only keywords a method declares are passed, so either model works.
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
        prompt_name: str | None = None,
    ) -> RemoteCodeEncoder:
        """Load the model with its own code, after checking that the user allowed running it."""
        if not trust_remote_code:
            raise EncoderError(
                f"Model {source.spec!r} ships its own Python code (config.json auto_map: "
                f"AutoModel -> {source.remote_code_class}), and running it was not allowed. Read "
                f"that code, then allow it with {option_name('--modgap-trust-remote-code')} (in "
                f"pytest's ini file modgap_trust_remote_code = true; in Python "
                f"trust_remote_code=True in load_encoder())."
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
        _check_truncate_dim(source.spec, model, truncate_dim)
        _silence_progress_bars(model)
        model.to(resolved_device)
        model.eval()
        n_parameters = sum(parameter.numel() for parameter in model.parameters())
        chosen_task = _choose_task(source.spec, model, task)
        return cls(
            source,
            model,
            device=resolved_device,
            dtype=resolved_dtype,
            batch_size=batch_size or default_batch_size(resolved_device, n_parameters),
            task=chosen_task,
            truncate_dim=truncate_dim,
            prompt_name=prompt_name if prompt_name is not None else prompt_name_for(chosen_task),
        )

    def fingerprint(self) -> str:
        """Recipe, code entry point, the code itself, weights, dtype and every option that changes
        the vectors."""
        if self._fingerprint is None:
            self._fingerprint = "|".join(
                (
                    RECIPE,
                    str(self.source.remote_code_class),
                    f"code={_code_digest(self.source.spec, _code_class(self.model))}",
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


def prompt_name_for(task: str | None) -> str:
    """The jina-embeddings-v4 prompt for captions under ``task``: "passage", but "query" under
    "text-matching". The model's own code gives every text the query prefix under text-matching
    (a symmetric task), but it reads the task from ``model.task`` for that, not from the ``task``
    argument this wrapper passes, so the prompt is chosen here to match."""
    return "query" if task == "text-matching" else DEFAULT_PROMPT_NAME


def _choose_task(spec: str, model: Any, task: str | None) -> str | None:
    """The adapter to use: the user's, checked against the model's ``task_names`` when it has them.

    jina-embeddings-v4 refuses to encode without a task; its config lists the adapters, and
    "retrieval" is the one its paper uses for image-text alignment. jina-clip-v2 has no task
    list: ``None`` (its plain text tower) unless the user names one of its text tower's
    ``task_instructions``; any other name would fail at the first encode, or be ignored with a
    warning by a tower that has no instructions, so both are refused here.
    """
    names = getattr(getattr(model, "config", None), "task_names", None)
    if not names:
        if task is None:
            return None
        instructions = getattr(getattr(model, "text_model", None), "task_instructions", None)
        if isinstance(instructions, dict) and task in instructions:
            return task
        known = sorted(instructions) if isinstance(instructions, dict) else []
        raise EncoderError(
            f"Model {spec!r} has no task {task!r}: its text tower's instruction tasks are "
            f"{known or 'none'}. Pass one of those, or no task for its plain text tower."
        )
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


def _check_truncate_dim(spec: str, model: Any, truncate_dim: int | None) -> None:
    """jina-embeddings-v4 accepts only its Matryoshka sizes (``config.matryoshka_dims``) and
    raises at the first encode otherwise; say so before any image is read."""
    sizes = getattr(getattr(model, "config", None), "matryoshka_dims", None)
    if truncate_dim is None or not isinstance(sizes, (list, tuple)) or not sizes:
        return
    if truncate_dim not in sizes:
        raise EncoderError(
            f"Model {spec!r}: truncate_dim={truncate_dim} is not one of its Matryoshka sizes "
            f"{list(sizes)} (config.json matryoshka_dims), which are the only ones its "
            f"encode_text / encode_image accept. Pass one of those, or leave truncate_dim unset."
        )


def _silence_progress_bars(model: Any) -> None:
    """jina-embeddings-v4 draws a tqdm bar on every encode call unless ``verbosity`` is 0; the
    pipeline calls it once per batch and shows its own bar. The attribute lives on the model
    under the peft wrapper, where the code reads it."""
    base = _base_model(model)
    if isinstance(getattr(base, "verbosity", None), int):
        base.verbosity = 0


def _base_model(model: Any) -> Any:
    """The model a peft ``PeftModel`` wraps (jina-embeddings-v4's ``from_pretrained`` returns
    one), or ``model`` itself."""
    get_base_model = getattr(model, "get_base_model", None)
    return get_base_model() if callable(get_base_model) else model


def _code_class(model: Any) -> type:
    """The class defined by the model's own code: the loaded object's class, or under a peft
    wrapper (a peft class, whose files say nothing about the model's code) the wrapped model's."""
    for candidate in (model, _base_model(model)):
        if type(candidate).__module__.startswith(_DYNAMIC_MODULES):
            return type(candidate)
    return type(_base_model(model))


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
