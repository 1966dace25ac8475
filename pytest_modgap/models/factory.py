"""Wrap the object a user's ``module:factory`` builds (anything with encode_images / encode_texts).

The escape hatch for models no built-in family covers; also converts what such objects return.

Caching: the spec names code, not weights, so a factory that loads a new checkpoint under the same
spec would be served the old checkpoint's embeddings. Its embeddings are therefore cached only when
the object has a ``fingerprint()`` method returning a string that changes with everything that
changes its vectors (a hash of the checkpoint file, a commit or a version tag); without one every
run embeds again and the pipeline warns once per spec.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pytest_modgap.errors import EncoderError
from pytest_modgap.models.device import resolve_device

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_BATCH_SIZE = 64
"""Inputs per call to the wrapped object when the user sets no batch size."""


def load_factory_encoder(
    spec: str, *, device: str | None = None, batch_size: int | None = None
) -> FactoryEncoder:
    """Import ``module.path``, call ``factory`` and wrap what it returns.

    ``factory`` may be a dotted attribute path (``pkg.mod:Class.create``). When it declares a
    ``device`` parameter (or ``**kwargs``) it receives the resolved device name ("cpu", "cuda").
    """
    module_name, attribute_path = spec.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EncoderError(
            f"Model spec {spec!r}: module {module_name!r} cannot be imported ({exc}). Install the "
            f"package that provides it, or put its folder on sys.path (PYTHONPATH, or pytest's "
            f"pythonpath ini option)."
        ) from exc
    except Exception as exc:  # the user's module failed while running its top level
        raise EncoderError(
            f"Model spec {spec!r}: importing module {module_name!r} raised "
            f"{type(exc).__name__}: {exc}. Fix the module so that it imports cleanly."
        ) from exc
    factory: Any = module
    for part in attribute_path.split("."):
        if not hasattr(factory, part):
            raise EncoderError(
                f"Model spec {spec!r}: {module_name!r} has no attribute {attribute_path!r}. "
                f"Name a function or class in that module after the colon."
            )
        factory = getattr(factory, part)
    if not callable(factory):
        raise EncoderError(
            f"Model spec {spec!r}: {attribute_path!r} is a {type(factory).__name__}, not a "
            f"callable. Name a function or class that returns an encoder."
        )
    kwargs = {"device": str(resolve_device(device))} if _accepts_device(factory) else {}
    try:
        wrapped = factory(**kwargs)
    except Exception as exc:  # whatever the user's factory raises, report it in one paragraph
        raise EncoderError(
            f"Model spec {spec!r}: calling {attribute_path}({_describe(kwargs)}) raised "
            f"{type(exc).__name__}: {exc}."
        ) from exc
    missing = [
        name
        for name in ("encode_images", "encode_texts")
        if not callable(getattr(wrapped, name, None))
    ]
    if missing:
        raise EncoderError(
            f"Model spec {spec!r}: {attribute_path}() returned a {type(wrapped).__name__}, which "
            f"has no {' / '.join(missing)}. Return an object with encode_images(list of PIL "
            f"images) and encode_texts(list of str), each giving an (n, d) array or tensor."
        )
    return FactoryEncoder(spec, wrapped, batch_size=batch_size or DEFAULT_BATCH_SIZE)


class FactoryEncoder:
    """An Encoder around a user's object; results become (n, d) float tensors, checked for shape."""

    def __init__(self, spec: str, wrapped: Any, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.spec = spec
        self.wrapped = wrapped
        self.batch_size = batch_size

    def fingerprint(self) -> str | None:
        """The spec plus the object's own ``fingerprint()``; None (never cached) without one.

        The spec alone cannot identify the vectors: the factory may load other weights under it.
        An object whose ``fingerprint()`` returns None cannot tell either.
        """
        own = getattr(self.wrapped, "fingerprint", None)
        if not callable(own):
            return None
        try:
            value = own()
        except Exception as exc:  # whatever the user's method raises, report it in one paragraph
            raise EncoderError(
                f"Model spec {self.spec!r}: {type(self.wrapped).__name__}.fingerprint() raised "
                f"{type(exc).__name__}: {exc}. Fix the method, or remove it to run uncached."
            ) from exc
        if value is None:
            return None
        if not isinstance(value, str):
            raise EncoderError(
                f"Model spec {self.spec!r}: {type(self.wrapped).__name__}.fingerprint() returned "
                f"an object of type {type(value).__name__}, not a str. Return a str that changes "
                f"whenever the weights change (or None: the embeddings are then not cached)."
            )
        return f"factory:{self.spec}|{value}"

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The wrapped ``encode_images`` on RGB images, in batches of ``batch_size``."""
        rgb = [image.convert("RGB") for image in images]
        return self._encode("encode_images", rgb)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """The wrapped ``encode_texts``, in batches of ``batch_size``."""
        return self._encode("encode_texts", list(texts))

    def _encode(self, name: str, items: list[Any]) -> torch.Tensor:
        """Call the wrapped method per batch and stack the checked results."""
        method = getattr(self.wrapped, name)
        chunks = []
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            chunks.append(to_embedding_matrix(method(batch), len(batch), name, self.spec))
        if not chunks:
            # Nothing was asked, so the wrapped object was never called and d is unknown.
            return torch.empty((0, 0))
        return torch.cat([chunk.to(chunks[0].device) for chunk in chunks])


def to_embedding_matrix(output: object, n: int, method: str, spec: str) -> torch.Tensor:
    """Turn what an encode method returned into an (n, d) floating tensor, or explain why not.

    Accepts a tensor, a numpy array, or a list of per-item vectors (either kind).
    """
    matrix: torch.Tensor
    if isinstance(output, torch.Tensor):
        matrix = output
    elif isinstance(output, np.ndarray):
        matrix = _from_numpy(output, method, spec)
    elif isinstance(output, (list, tuple)) and output:
        rows = [
            row if isinstance(row, torch.Tensor) else _from_numpy(np.asarray(row), method, spec)
            for row in output
        ]
        try:
            matrix = torch.stack([row.to(rows[0].device) for row in rows])
        except RuntimeError as exc:
            raise EncoderError(
                f"Model {spec!r}: {method} returned {n} vectors of different lengths ({exc}). "
                f"Every vector must have the same dimension d."
            ) from exc
    else:
        raise EncoderError(
            f"Model {spec!r}: {method} returned {type(output).__name__}. Return an (n, d) numpy "
            f"array or torch tensor, one row per input."
        )
    if matrix.ndim != 2 or matrix.shape[0] != n:
        raise EncoderError(
            f"Model {spec!r}: {method} returned shape {tuple(matrix.shape)} for {n} inputs. "
            f"Return one d-dimensional row per input: shape ({n}, d)."
        )
    if not matrix.is_floating_point():
        raise EncoderError(
            f"Model {spec!r}: {method} returned {matrix.dtype} values. Embeddings must be "
            f"floating point (float16, bfloat16, float32 or float64)."
        )
    return matrix


def _from_numpy(array: np.ndarray, method: str, spec: str) -> torch.Tensor:
    """A numpy array as a tensor; object arrays (ragged or non-numeric) are refused."""
    if array.dtype == object:
        raise EncoderError(
            f"Model {spec!r}: {method} returned a numpy object array (ragged rows or Python "
            f"objects). Return a numeric (n, d) array."
        )
    return torch.from_numpy(np.ascontiguousarray(array))


def _accepts_device(factory: Any) -> bool:
    """Whether ``factory`` declares a ``device`` parameter or takes ``**kwargs``."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # builtins and some C extensions have no signature
        return False
    return any(
        parameter.kind is parameter.VAR_KEYWORD
        or (parameter.name == "device" and parameter.kind is not parameter.POSITIONAL_ONLY)
        for parameter in parameters
    )


def _describe(kwargs: dict[str, str]) -> str:
    """Keyword arguments as they appear in a call, for error messages."""
    return ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
