"""Exception types of pytest-modgap.

Every error a user can cause is a ``ModgapError``: one paragraph that names the argument, file or option
at fault and says how to fix it. The plugin turns these into short pytest errors, never tracebacks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

_OPTION_NAMES: ContextVar[Mapping[str, str]] = ContextVar(
    "pytest_modgap_option_names", default=MappingProxyType({})
)


def option_name(pytest_option: str) -> str:
    """The option a message should name for what pytest calls ``pytest_option``.

    The loaders serve pytest, the ``modgap`` command and Python callers alike; a message that
    tells the user which option to change must name the one they typed. Under ``option_names``
    (the command sets it) that is the command's own (``--model``), else the pytest option.
    """
    return _OPTION_NAMES.get().get(pytest_option, pytest_option)


@contextmanager
def option_names(names: Mapping[str, str]) -> Iterator[None]:
    """Within the block, messages name ``names[pytest_option]`` instead of the pytest option."""
    token = _OPTION_NAMES.set(MappingProxyType({**_OPTION_NAMES.get(), **names}))
    try:
        yield
    finally:
        _OPTION_NAMES.reset(token)


class ModgapError(ValueError):
    """Bad input to pytest-modgap: the message names what is wrong and how to fix it."""


class ModgapInputError(ModgapError):
    """Embeddings or pair metadata that the metrics cannot use (shape, NaN, zero rows, lengths)."""


class DatasetError(ModgapError):
    """A data set spec, manifest or image that cannot be read."""


class EncoderError(ModgapError):
    """A model spec that cannot be loaded, or a model that cannot encode images and texts."""


class BaselineError(ModgapError):
    """A baseline file that is missing, malformed or does not fit the report it is checked against."""
