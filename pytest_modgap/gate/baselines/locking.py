"""The lock a baseline file is read and replaced under, so xdist workers never lose an update."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pytest_modgap.errors import BaselineError
from pytest_modgap.gate.baselines.quoting import short

if sys.platform != "win32":
    import fcntl

# Two xdist workers updating one file wait for each other this long before giving up. The lock is
# an flock on <file>.lock, which the OS drops when its holder dies: a killed run blocks no one.
# Without flock (Windows), a lock file older than _STALE_LOCK_S was left by a killed run.
_LOCK_TIMEOUT_S = 60.0
_STALE_LOCK_S = 120.0


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the lock of ``path`` (``<path>.lock``) while reading and replacing it."""
    __tracebackhide__ = True
    lock = path.with_name(path.name + ".lock")
    if sys.platform == "win32":
        with _exclusive_lock(lock, path):
            yield
    else:
        with _flock(lock, path):
            yield


if sys.platform != "win32":

    @contextmanager
    def _flock(lock: Path, path: Path) -> Iterator[None]:
        """An flock on ``lock``: the OS releases it when its holder exits or is killed, so a lock
        file left behind by a killed run is simply taken (no timeout, no age rule).

        The holder deletes the file before letting go, so the folder is left clean. A waiter may
        then win the lock of the deleted file, which protects nothing: after taking it, check
        that the path still names the locked file, and start again if not.
        """
        __tracebackhide__ = True
        deadline = time.monotonic() + _LOCK_TIMEOUT_S
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() > deadline:
                    raise BaselineError(_busy(lock, path)) from None
                time.sleep(0.05)
                continue
            except BaseException:
                os.close(fd)
                raise
            if _same_file(lock, fd):
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, _owner().encode("utf-8"))
            yield
        finally:
            lock.unlink(missing_ok=True)
            os.close(fd)

    def _same_file(lock: Path, fd: int) -> bool:
        """Whether the path ``lock`` still names the open file ``fd``."""
        try:
            linked = os.stat(lock)
        except FileNotFoundError:
            return False
        opened = os.fstat(fd)
        return (linked.st_dev, linked.st_ino) == (opened.st_dev, opened.st_ino)


@contextmanager
def _exclusive_lock(lock: Path, path: Path) -> Iterator[None]:
    """Where there is no flock (Windows): ``lock`` created exclusively, holding its owner; one
    older than _STALE_LOCK_S was left by a killed run and is taken over."""
    __tracebackhide__ = True
    deadline = time.monotonic() + _LOCK_TIMEOUT_S
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                if time.time() - lock.stat().st_mtime > _STALE_LOCK_S:
                    lock.unlink(missing_ok=True)
                    continue
            except FileNotFoundError:
                continue
            if time.monotonic() > deadline:
                raise BaselineError(_busy(lock, path)) from None
            time.sleep(0.05)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(_owner())
        break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _owner() -> str:
    """What a lock file holds: who is recording, for the message of a run that waits too long."""
    return f"pid {os.getpid()} on {socket.gethostname()}\n"


def _busy(lock: Path, path: Path) -> str:
    """The message of a run that waited _LOCK_TIMEOUT_S for the lock of ``path``."""
    try:
        holder = lock.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        holder = ""
    held = f" by {short(holder)}" if holder else ""
    return (
        f"Baseline {path} is locked{held} (lock file {lock}) and was not released within "
        f"{_LOCK_TIMEOUT_S:.0f} s. Another pytest run is recording it: let it finish, or stop it."
    )
