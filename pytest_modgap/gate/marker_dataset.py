"""A modgap marker's ``dataset=``: relative paths taken from the test file's folder, and the
warning when markers override ``--modgap-dataset``.

Imported when a modgap test runs or a run gives --modgap-dataset, never at pytest start-up.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import pytest

# "loader:path": a loader name, a colon, the rest (a one-letter "loader" is a Windows drive).
_LOADER_SPEC = re.compile(r"^([A-Za-z][\w-]+):(.+)$")


class ModgapWarning(UserWarning):
    """Something in the modgap setup that is allowed but probably not meant (shown once per run)."""


def resolve_marker_dataset(spec: str, test_dir: Path) -> str:
    """A marker's ``dataset=`` with a relative path taken from the test file's folder, so that a
    test finds its data wherever pytest is started (``jsonl:data/pairs.jsonl`` next to the test).

    The path is the part after ``loader:``, or the whole spec when it ends in ``.jsonl``; absolute
    paths, ``~`` paths, URLs and built-in names (``shapes``) are kept as they are.
    """
    stripped = spec.strip()
    match = _LOADER_SPEC.match(stripped)
    if match is not None:
        prefix, path = match.group(1), match.group(2).strip()
    elif stripped.endswith(".jsonl"):
        prefix, path = None, stripped
    else:
        return spec
    if "://" in path or path.startswith("~") or Path(path).is_absolute():
        return spec
    resolved = str(test_dir / path)
    return resolved if prefix is None else f"{prefix}:{resolved}"


def warn_dataset_overrides(dataset: str, items: Sequence[pytest.Item]) -> None:
    """Warn once when --modgap-dataset (or its ini twin) is given and markers' ``dataset=`` win."""
    overridden = [
        item.nodeid
        for item in items
        if any(marker.kwargs.get("dataset") is not None for marker in item.iter_markers("modgap"))
    ]
    if not overridden:
        return
    shown = ", ".join(overridden[:3]) + (", ..." if len(overridden) > 3 else "")
    warnings.warn(
        ModgapWarning(
            f"--modgap-dataset={dataset} (or modgap_dataset in the ini file) does not apply to "
            f"{len(overridden)} modgap test(s) whose @pytest.mark.modgap(dataset=...) names "
            f"their own data set ({shown}): the marker wins. Remove dataset= from those markers "
            f"to measure them on {dataset}."
        ),
        stacklevel=2,
    )
