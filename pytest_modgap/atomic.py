"""Atomic file writes: a temporary file in the target's folder, flushed, then renamed over the target.

A killed run or two concurrent writers (xdist workers) never leave a half-written file behind.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

if sys.platform != "win32":
    import fcntl


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces ``path`` only when the block ends without error;
    readers see the old file or the new one, never a mix.

    The temp file lives in the target's folder because ``os.replace`` is atomic only within one file
    system. A ``path`` that is a symlink is written where it points (the link stays a link, and
    the shared file it names gets the new content).
    """
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep the old file's permissions, else rw-r--r--: mkstemp's private 0600 would surprise a team
    # that commits its baselines or publishes its reports.
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see ``atomic_writer``)."""
    with atomic_writer(path) as handle:
        handle.write(data)


def write_text_atomic(path: Path, text: str) -> None:
    """``write_bytes_atomic`` for UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"))


def locked_temp_folder(target: Path) -> tuple[Path, int]:
    """A new folder ``.<target name>.<random>.tmp`` beside ``target``, to fill and then rename to
    ``target``, and an open descriptor holding an exclusive flock on it.

    The OS drops the lock when its holder dies (SIGKILL too), so ``remove_orphaned_temp_files``
    with ``folders=True`` removes a killed writer's folder but never a live one, however long the
    writer goes without writing (it may embed for hours before its first shard). Close the
    descriptor after renaming or removing the folder. Without flock (Windows, some network file
    systems) the descriptor is -1 and the folder is never swept.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    if sys.platform == "win32":
        return temp, -1
    fd = os.open(temp, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new and young: no sweeper takes it first
    except OSError:  # a file system without flock (some network mounts): as on Windows
        os.close(fd)
        return temp, -1
    return temp, fd


def _remove_unlocked_folder(path: str) -> bool:
    """Remove the folder ``path`` if no live process holds its flock (``locked_temp_folder``)."""
    if sys.platform == "win32":
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its writer is alive (or flock cannot tell: keep it)
            return False
        shutil.rmtree(path)
        return True
    finally:
        os.close(fd)


def remove_orphaned_temp_files(
    folder: Path, targets: str, older_than_s: float, *, folders: bool = False
) -> list[Path]:
    """Delete the temp files ``atomic_writer`` left in ``folder`` for targets whose name matches the
    regular expression ``targets``, when last written more than ``older_than_s`` seconds ago; with
    ``folders``, also the temp folders of ``locked_temp_folder`` whose writer is gone (no lock).

    A killed writer (SIGKILL, power loss) leaves its ``.<target>.<random>.tmp`` behind. A live
    writer's file is younger, since every write moves its mtime; should a writer stall longer than
    ``older_than_s`` and lose its file, its rename fails with FileNotFoundError and the target keeps
    its old content. Best effort: a file that cannot be listed or removed is left where it is.
    Returns the files removed.
    """
    name = re.compile(rf"\.(?:{targets})\.[a-z0-9_]+\.tmp")
    cutoff = time.time() - older_than_s
    removed: list[Path] = []
    try:
        with os.scandir(folder) as scan:
            entries = [entry for entry in scan if name.fullmatch(entry.name)]
    except OSError:
        return removed
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
            if info.st_mtime >= cutoff:
                continue
            if stat.S_ISREG(info.st_mode):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            elif folders and stat.S_ISDIR(info.st_mode) and _remove_unlocked_folder(entry.path):
                removed.append(Path(entry.path))
        except OSError:  # removed by another process meanwhile, or not ours to remove
            continue
    return removed
