"""Ray's own log lines and warnings kept out of the user's terminal on a run that goes well (a user
reads them as failures), unless ``MODGAP_RAY_LOGS=1`` asks for them.

What they were (Ray 2.60): the token-authentication warning of ``ray.init``; the core worker's
"E ... has constructor arguments in the object store and max_restarts > 0" line (Ray Data hands
its actors their work through the object store, and the job restarts them on failure on
purpose); Ray Data's DeprecationWarnings; and Ray Data's "ERROR ... the abbreviated stack trace
below" before a worker's error, which pytest-modgap re-raises as its own one-paragraph error.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

RAY_LOGS_ENV = "MODGAP_RAY_LOGS"
"""Set to 1 to see Ray's own log lines and warnings (the files under the session's log folder
have them either way)."""

_BACKEND_LOG_LEVEL_ENV = "RAY_BACKEND_LOG_LEVEL"


def ray_logs_wanted() -> bool:
    """Whether the user asked for Ray's log lines (``MODGAP_RAY_LOGS=1``)."""
    return os.environ.get(RAY_LOGS_ENV, "").strip().lower() in ("1", "true", "yes")


def ray_logging_level() -> int:
    """The ``logging_level`` for ``ray.init``: its warnings only when Ray's logs are wanted."""
    return logging.INFO if ray_logs_wanted() else logging.ERROR


def quiet_ray_data_logs() -> None:
    """Ray Data's driver-side log lines off (its ERROR line before a worker's error included): the
    error itself reaches the user as pytest-modgap's own. Kept when Ray's logs are wanted."""
    if not ray_logs_wanted():
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)


@contextmanager
def quiet_ray_start() -> Iterator[None]:
    """Around ``ray.init``: the C++ core's log lines below FATAL in this process
    (``RAY_BACKEND_LOG_LEVEL``, read when the driver's core worker starts; a value the user set
    is kept) and Ray's DeprecationWarnings off. Nothing changes when Ray's logs are wanted."""
    if ray_logs_wanted():
        yield
        return
    backend = os.environ.get(_BACKEND_LOG_LEVEL_ENV)
    if backend is None:
        os.environ[_BACKEND_LOG_LEVEL_ENV] = "fatal"
    try:
        with quiet_ray_warnings(), _without_core_lines_on_stderr():
            yield
    finally:
        if backend is None:
            os.environ.pop(_BACKEND_LOG_LEVEL_ENV, None)


_CORE_LOG_LINE = re.compile(rb"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [DIWEF] \d+ \d+\] ")
"""A line of Ray's C++ core: ``[2026-12-07 00:49:26,185 I 10058 10058] logging.cc:303: ...``."""


@contextmanager
def _without_core_lines_on_stderr() -> Iterator[None]:
    """File descriptor 2 into a temporary file while the block runs, then everything written there
    back to it but the C++ core's own lines: the core announces the level it read from
    ``RAY_BACKEND_LOG_LEVEL`` at INFO, on the descriptor, while ``ray.init`` starts it."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to keep clean
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held if not _CORE_LOG_LINE.match(line)]
            if kept:
                os.write(2, b"".join(kept))


@contextmanager
def quiet_ray_warnings() -> Iterator[None]:
    """No DeprecationWarning from Ray's own modules (Ray Data's context warns of its own renamed
    settings) while the block runs; all of them when Ray's logs are wanted."""
    with warnings.catch_warnings():
        if not ray_logs_wanted():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray(\.|$)")
        yield
