"""Exception types of pytest-modgap.

Every error a user can cause is a ``ModgapError``: one paragraph that names the argument, file or option
at fault and says how to fix it. The plugin turns these into short pytest errors, never tracebacks.
"""

from __future__ import annotations


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
