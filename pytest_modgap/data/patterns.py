"""File patterns of sharded data sets: brace ranges as webdataset writes them (``{000..099}``,
``{a,b}``), globs (``*``, ``?``, ``[...]``) and folders, expanded to files in natural name order.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from pathlib import Path

from pytest_modgap.errors import DatasetError

MAX_EXPANSION = 1_000_000
"""More names than this from one brace pattern is surely a typo ({0..99999999})."""

_RANGE = re.compile(r"(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?")
_DIGITS = re.compile(r"(\d+)")


def natural_key(path: Path | str) -> tuple[tuple[tuple[int, int | str], ...], str]:
    """Sort key that orders ``shard-2`` before ``shard-10`` (and ``shard-002`` before ``shard-010``
    as plain sorting does): digit runs compare as numbers. Names whose numbers are equal
    (``s-1``, ``s-01``, ``s-001``) are then ordered by the full name, so that no order is left to
    chance (a set's hash order changes with PYTHONHASHSEED, and the sample with it)."""
    name = str(path)
    # split() puts the digit runs at odd places; str.isdigit() would also take "²", which int()
    # refuses.
    runs = tuple(
        (0, int(part)) if place % 2 else (1, part)
        for place, part in enumerate(_DIGITS.split(name))
        if part
    )
    return runs, name


def expand_braces(pattern: str) -> list[str]:
    """Every name ``pattern`` spells, in order: ``{a,b}`` alternatives and ``{N..M}`` /
    ``{N..M..STEP}`` integer ranges (zero-padded to the wider end when an end has a leading zero),
    nested or several. Braces that hold neither a comma nor a range are kept as they are."""
    names = _expand(pattern, 0)
    if len(names) > MAX_EXPANSION:
        raise DatasetError(
            f"The pattern {pattern!r} expands to {len(names):,} names (more than "
            f"{MAX_EXPANSION:,}). Check its {{N..M}} ranges."
        )
    return names


def _expand(pattern: str, start: int) -> list[str]:
    """Expand the first brace group at or after ``start``, then the rest of each result."""
    opening = pattern.find("{", start)
    if opening < 0:
        return [pattern]
    closing, commas = _group(pattern, opening)
    if closing < 0:
        return [pattern]
    inside = pattern[opening + 1 : closing]
    if commas:
        edges = [opening, *commas, closing]
        options = [pattern[edges[k] + 1 : edges[k + 1]] for k in range(len(edges) - 1)]
    else:
        match = _RANGE.fullmatch(inside)
        if match is None:
            return _expand(pattern, opening + 1)
        options = _range(match, pattern)
    head, tail = pattern[:opening], pattern[closing + 1 :]
    names: list[str] = []
    for option in options:
        # From the option on: its own (nested) groups, then the groups after it.
        names.extend(_expand(head + option + tail, len(head)))
        if len(names) > MAX_EXPANSION:
            break
    return names


def _group(pattern: str, opening: int) -> tuple[int, list[int]]:
    """The index of the brace closing the group at ``opening`` (-1 if none) and of its top-level
    commas."""
    depth = 0
    commas: list[int] = []
    for index in range(opening, len(pattern)):
        char = pattern[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index, commas
        elif char == "," and depth == 1:
            commas.append(index)
    return -1, []


def _range(match: re.Match[str], pattern: str) -> list[str]:
    first, last, step_text = match.group(1), match.group(2), match.group(3)
    step = abs(int(step_text)) if step_text else 1
    if step == 0:
        raise DatasetError(f"The pattern {pattern!r} has a range step of 0; use a positive step.")
    low, high = int(first), int(last)
    if abs(high - low) // step + 1 > MAX_EXPANSION:
        raise DatasetError(
            f"The pattern {pattern!r} has the range {match.group(0)}, more than {MAX_EXPANSION:,} "
            f"names. Check the range."
        )
    padded = any(
        len(end.lstrip("-")) > 1 and end.lstrip("-").startswith("0") for end in (first, last)
    )
    width = max(len(first), len(last)) if padded else 0
    direction = step if high >= low else -step
    return [f"{value:0{width}d}" for value in range(low, high + direction, direction)]


def expand_files(pattern: str, loader: str, suffixes: Sequence[str]) -> list[Path]:
    """The files ``pattern`` names, deduplicated, in natural name order.

    ``pattern`` is a file, a folder (its files ending in one of ``suffixes``), or a brace and / or
    glob pattern (``~`` expanded). A name without glob characters must exist, and a folder it names
    must hold such files; a folder named like such a file (``x.tar/``) must hold some too, however
    it was found. Either would otherwise drop out of the set unseen. A pattern that matches
    nothing is a DatasetError naming the spec ``loader:pattern``.
    """
    found: set[Path] = set()
    spec = f"{loader}:{pattern}"
    for name in expand_braces(str(Path(pattern).expanduser()) if pattern else pattern):
        if glob.has_magic(name):
            matches = [Path(match) for match in glob.glob(name)]
            found.update(path for path in matches if path.is_file())
            found.update(
                file
                for path in matches
                if path.is_dir()
                for file in _folder_files(path, spec, suffixes, named=False)
            )
            continue
        path = Path(name)
        if path.is_dir():
            found.update(_folder_files(path, spec, suffixes, named=True))
        elif path.is_file():
            found.add(path)
        else:
            raise DatasetError(
                f"Data set spec {loader}:{pattern} names {path}, which does not exist. Check the "
                f"path or the pattern's ranges (relative paths are taken from the current "
                f"directory, {Path.cwd()})."
            )
    if not found:
        raise DatasetError(
            f"Data set spec {loader}:{pattern} matches no {' or '.join(suffixes)} file. Check the "
            f"pattern: a folder, a file, a glob such as shards/*{suffixes[0]}, or a brace range "
            f"such as shards/{{000..099}}{suffixes[0]}."
        )
    return sorted(found, key=natural_key)


def _folder_files(folder: Path, spec: str, suffixes: Sequence[str], *, named: bool) -> list[Path]:
    """The files in ``folder`` ending in one of ``suffixes``; a DatasetError when there are none
    and the folder was ``named`` by the pattern or is named like such a file."""
    files = [
        path
        for path in folder.iterdir()
        if path.is_file() and path.name.lower().endswith(tuple(suffixes))
    ]
    if files:
        return files
    wanted = " or ".join(suffixes)
    if folder.name.lower().endswith(tuple(suffixes)):
        raise DatasetError(
            f"Data set spec {spec} names {folder}, which is a folder, not a {wanted} file, and "
            f"holds no {wanted} file. Point the pattern at the files (rename or remove the "
            f"folder if a file of that name is what should be there)."
        )
    if named:
        raise DatasetError(
            f"Data set spec {spec} names the folder {folder}, which holds no {wanted} file. Check "
            f"the path, or leave the folder out of the pattern."
        )
    return []
