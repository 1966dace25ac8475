"""Where a run will write its artefacts (JSON, report folder, baselines): checked before any work.

A path that cannot be written should cost a usage error at the start, not a traceback after an
hour of encoding. No pytest here: ``modgap measure`` runs the same checks.
"""

from __future__ import annotations

import os
from pathlib import Path


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be written as a file (missing folders above it are created), or None."""
    if path.is_dir():
        return f"it is a folder; give a file path, e.g. {path / 'modgap.json'}"
    if path.exists() and not path.is_file():
        # The write replaces the path with a new file: never do that to a device or a pipe.
        return "it exists and is not a regular file; give the path of a file"
    return folder_problem(path.parent)


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be written into or created (with its parents), or None."""
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            return f"{folder} cannot be created: no part of its path exists"
        existing = existing.parent
    if not existing.is_dir():
        if existing == folder:
            return f"{folder} is a file, not a folder"
        return f"{folder} cannot be created: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None
