"""Errors from a Ray cluster's workers, re-raised on the driver as the pytest-modgap errors they were:
Ray wraps them in its own exception types, whose message buries the one that says what to do.
"""

from __future__ import annotations

import re
from typing import Any

from pytest_modgap import errors
from pytest_modgap.errors import ModgapError


def unwrap(call: Any) -> Any:
    """``call()``, with a pytest-modgap error raised in a worker re-raised here as itself: Ray
    wraps it in its own exception types, whose message buries the one that says what to do."""
    try:
        return call()
    except Exception as exc:
        if isinstance(exc, ModgapError) and type(exc).__module__ == errors.__name__:
            raise  # raised here, not in a worker (Ray's copies subclass both)
        cause = worker_error(exc)
        if cause is None:
            raise
        raise cause from exc


_WORKER_ERROR = re.compile(r"^pytest_modgap\.errors\.(\w+): (.+)$", re.MULTILINE)


def worker_error(exc: BaseException) -> ModgapError | None:
    """The pytest-modgap error a worker raised, from a Ray exception: found in its chain of causes,
    else as the last error of the worker's traceback that Ray carries as text (Ray Data's
    ``UserCodeException`` travels without its cause), when no other error broke out while it was
    handled. None when a worker raised anything else."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ModgapError) and type(current).__module__ == errors.__name__:
            return current
        cause = getattr(current, "cause", None)
        current = cause if isinstance(cause, BaseException) else current.__cause__
    text = str(exc)
    found = list(_WORKER_ERROR.finditer(text))
    if not found:
        return None
    last = found[-1]
    if "During handling of the above exception" in text[last.end() :]:
        return None  # another error broke out while this one was handled: that one matters
    kind = getattr(errors, last.group(1), None)
    if isinstance(kind, type) and issubclass(kind, ModgapError):
        error: ModgapError = kind(last.group(2))
        return error
    return None
