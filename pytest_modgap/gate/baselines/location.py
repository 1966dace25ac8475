"""Where baselines live: names, the user's folder and the shipped ``paper/`` files, and the key a
data set is recorded under."""

from __future__ import annotations

import difflib
import importlib.resources
import re
from pathlib import Path

from pytest_modgap.errors import BaselineError
from pytest_modgap.gate.baselines.parsing import parse
from pytest_modgap.gate.baselines.schema import SHIPPED_PREFIX, Baseline
from pytest_modgap.gate.baselines.yaml_loader import _read_text

_NAME = re.compile(r"^[A-Za-z0-9_][\w.-]*(/[A-Za-z0-9_][\w.-]*)*$")


PUBLISHED_SETS = ("flickr8k", "flickr30k", "coco", "cifar100")
"""Loaders of one public data set each: recorded under the loader's name wherever it is stored."""
_PATTERN_CHARACTERS = frozenset("{}*?[]")


def dataset_key(spec: str) -> str:
    """The entry key a data set spec is recorded under, unique per data set.

    A public data set goes under its loader's name wherever it is stored (``flickr30k:/data/f30k``
    -> ``flickr30k``, ``mscoco:...`` -> ``coco``); a JSONL manifest under its file stem; a built-in
    set under its name; any other ``loader:path`` under the loader and the path's last file or
    folder name, with a ``#split`` kept: ``wds:/data/setA/{0..9}.tar`` -> ``wds:setA``,
    ``parquet:/d/train.parquet`` -> ``parquet:train.parquet``, ``hf:/d/coco#test`` ->
    ``hf:coco#test``. Precomputed ``embeddings:FILE`` vectors go under ``embeddings`` (the file
    is the model measured, not the data set). Two data sets whose names still meet are refused when recorded; name an
    entry yourself with ``entry=`` (``check``, ``assert_no_regression``).
    """
    spec = spec.strip()
    prefix, colon, rest = spec.partition(":")
    loader = prefix.lower()
    if colon and loader in ("jsonl", "manifest"):
        return Path(rest.strip()).stem
    if colon and loader == "mscoco":
        return "coco"
    if colon and loader == "embeddings":
        return loader  # precomputed vectors: the file is the model; its pairs are not known here
    if colon and loader in PUBLISHED_SETS:
        split = rest.rpartition("#")[2] if "#" in rest else ""
        return f"{loader}#{split}" if split else loader
    if colon and re.fullmatch(r"[a-z][a-z0-9_]*", loader) and len(loader) > 1:
        return f"{loader}:{_path_name(rest.strip())}"
    if spec.endswith(".jsonl"):
        return Path(spec).stem
    return spec


def legacy_dataset_key(spec: str) -> str:
    """The key format 1 recorded a data set under: the loader's name alone for every
    ``loader:path`` (so two shard sets met under ``wds``); read-only, for format-1 files."""
    key = dataset_key(spec).partition("#")[0]
    loader, colon, _ = key.partition(":")
    return loader if colon and re.fullmatch(r"[a-z][a-z0-9_]*", loader) else key


def _path_name(path: str) -> str:
    """The last file or folder name of a spec's path (its folder when the name is a pattern), with
    its ``#split`` and without its ``?field=`` options."""
    path, _, _ = path.partition("?")
    path, hash_sign, split = path.partition("#")
    parts = [part for part in re.split(r"[/\\]", path) if part not in ("", ".")]
    while len(parts) > 1 and _PATTERN_CHARACTERS.intersection(parts[-1]):
        parts.pop()
    name = parts[-1] if parts else path
    return f"{name}{hash_sign}{split}"


def shipped_dir() -> Path:
    """The folder of the shipped baselines (``pytest_modgap/baselines``, also in the wheel)."""
    return Path(str(importlib.resources.files("pytest_modgap") / "baselines"))


def shipped_names() -> list[str]:
    """Every shipped baseline name, e.g. ``paper/openai-clip``."""
    root = shipped_dir()
    return sorted(
        path.relative_to(root).with_suffix("").as_posix() for path in root.rglob("*.yaml")
    )


def similar_names(name: str, baseline_dir: str | Path, most: int = 3) -> list[str]:
    """Existing baseline names (the user's folder and the shipped ones) close to ``name``: the
    names a typo most likely meant (``relase-3`` -> ``release-3``)."""
    root = Path(baseline_dir)
    try:
        mine = [p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml")]
    except OSError:
        mine = []
    bare = name[: -len(".yaml")] if name.endswith(".yaml") else name
    return difflib.get_close_matches(bare, [*mine, *shipped_names()], n=most, cutoff=0.75)


def _check_name(name: str) -> str:
    """``name`` without a ``.yaml`` suffix; a BaselineError for absolute paths or ``..``."""
    __tracebackhide__ = True
    bare = name[: -len(".yaml")] if name.endswith(".yaml") else name
    if not _NAME.match(bare) or ".." in bare.split("/"):
        raise BaselineError(
            f"Baseline name {name!r} is not a valid name: use letters, digits, '.', '_', '-' and "
            f"'/' for subfolders of the baseline directory (e.g. 'release-3' or 'team/clip-b32'), "
            f"no absolute path and no '..'."
        )
    return bare


def resolve(name: str, baseline_dir: str | Path) -> tuple[Path, bool]:
    """Where baseline ``name`` lives: ``(path, shipped)``; the user's folder wins over the shipped.

    The path may not exist yet (a baseline to record); the caller decides whether that is an error.
    """
    __tracebackhide__ = True
    bare = _check_name(name)
    user_path = Path(baseline_dir) / f"{bare}.yaml"
    if user_path.is_file():
        return user_path, False
    shipped_path = shipped_dir() / f"{bare}.yaml"
    if shipped_path.is_file():
        return shipped_path, True
    return user_path, bare.startswith(SHIPPED_PREFIX)


def load(name: str, baseline_dir: str | Path) -> Baseline:
    """Read and validate baseline ``name``; a one-paragraph BaselineError when it is not usable."""
    __tracebackhide__ = True
    path, shipped = resolve(name, baseline_dir)
    _refuse_non_file(path)
    if not path.is_file():
        raise BaselineError(
            f"Baseline {name!r} not found: {path} does not exist and no shipped baseline has that "
            f"name (shipped: {', '.join(shipped_names())})."
        )
    return parse(_read_text(path), path, name=_check_name(name), shipped=shipped)


def _refuse_non_file(path: Path) -> None:
    """A BaselineError when something that is not a file (a folder) sits where a baseline goes."""
    __tracebackhide__ = True
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise BaselineError(
            f"Baseline file {path} is {kind}, not a baseline file. Move it out of the way, or use "
            f"another baseline name."
        )
