"""Turn a data set spec (``shapes``, ``flickr8k:/data/flickr8k``, ``pairs.jsonl``,
``wds:shards/{000..099}.tar``) into a PairSet, or an index that reads the sampled pairs.

The one place that knows the spec grammar and the loader names; the loaders know the file layouts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_modgap.data.cifar import load_cifar100
from pytest_modgap.data.coco import load_coco
from pytest_modgap.data.flickr import load_flickr
from pytest_modgap.data.indexed import DataSet
from pytest_modgap.data.manifest import load_manifest
from pytest_modgap.data.pairset import PairSet
from pytest_modgap.data.rows import FieldNames
from pytest_modgap.errors import DatasetError

DEFAULT_DATASET = "shapes"
"""The data set used when a test names none: generated, so it needs no download."""


@dataclass(frozen=True)
class _Loader:
    """A ``loader:path`` spec prefix: its names, what its path is, and how to load it."""

    name: str
    aliases: tuple[str, ...]
    argument: str
    summary: str
    load: Callable[[str], DataSet]


def _existing_path(text: str, loader: str) -> Path:
    """The path part of a spec, with ``~`` expanded; a DatasetError when nothing is there."""
    path = Path(text).expanduser()
    if not path.exists():
        raise DatasetError(
            f"Data set spec {loader}:{text} names {path}, which does not exist. Check the path "
            f"(a relative path is taken from the current directory, {Path.cwd()}; in a "
            f"@pytest.mark.modgap(dataset=...) from the test file's folder)."
        )
    return path


def _flickr(name: str) -> Callable[[str], PairSet]:
    """The loader function of one Flickr set: same layouts, its own data set name."""
    return lambda text: load_flickr(_existing_path(text, name), name=name)


def _coco(text: str) -> PairSet:
    """``<folder>`` of the MSCOCO download, or one ``captions_<split>.json`` in it."""
    return load_coco(_existing_path(text, "coco"))


def _cifar100(text: str) -> PairSet:
    """``<folder>`` for the test split, ``<folder>#train`` / ``<folder>#test`` to choose."""
    base, hash_sign, split = text.rpartition("#")
    # A folder whose own name contains "#" is still taken as a plain path.
    if not hash_sign or Path(text).expanduser().exists():
        return load_cifar100(_existing_path(text, "cifar100"))
    if split not in ("train", "test"):
        raise DatasetError(
            f"Data set spec cifar100:{text} asks for split {split!r}; the split suffix must be "
            f"#train or #test (the default, when there is no suffix)."
        )
    return load_cifar100(_existing_path(base, "cifar100"), split=split)


def _jsonl(text: str) -> PairSet:
    """A JSONL manifest file."""
    return load_manifest(_existing_path(text, "jsonl"))


_FIELD_OPTIONS = ("image", "text", "label")
_OPTIONS = re.compile(r"[A-Za-z_]+=[^&=]*(&[A-Za-z_]+=[^&=]*)*")


def _fields(text: str, loader: str) -> tuple[str, FieldNames]:
    """Split ``path?image=img&text=alt&label=cls`` into the path and the named fields.

    The part after the last ``?`` is options only when it reads as ``key=value&...``; otherwise the
    ``?`` belongs to the path (a glob's one-character wildcard).
    """
    path, question, query = text.rpartition("?")
    if not question or not _OPTIONS.fullmatch(query):
        return text, FieldNames()
    options: dict[str, str] = {}
    for option in query.split("&"):
        key, _, value = option.partition("=")
        if key not in _FIELD_OPTIONS:
            raise DatasetError(
                f"Data set spec {loader}:{text} has the unknown option {key!r}; the options are "
                f"{', '.join(_FIELD_OPTIONS)} (e.g. {loader}:{path}?image=img&text=alt), naming "
                f"the column or member key that holds each field."
            )
        if key in options:
            raise DatasetError(f"Data set spec {loader}:{text} gives the option {key!r} twice.")
        if not value and key != "label":
            raise DatasetError(
                f"Data set spec {loader}:{text} leaves ?{key}= empty; name the {key} column or "
                f"member key, or leave the option out (only ?label= may be empty: no labels)."
            )
        options[key] = value
    return path, FieldNames(**options)


def _wds(text: str) -> DataSet:
    """WebDataset ``.tar`` shards: a brace / glob pattern, a shard, or a folder of shards."""
    from pytest_modgap.data.webdataset import WebDatasetPairs

    pattern, fields = _fields(text, "wds")
    return WebDatasetPairs(pattern, fields)


def _parquet(text: str) -> DataSet:
    """Parquet files: a brace / glob pattern, a file, or a folder of them."""
    from pytest_modgap.data.parquet import ParquetPairs

    pattern, fields = _fields(text, "parquet")
    return ParquetPairs(pattern, fields)


def _hf(text: str) -> DataSet:
    """A ``save_to_disk`` folder, ``#split`` for one split of a DatasetDict."""
    from pytest_modgap.data.hf_disk import HfDiskPairs

    question, hash_at = text.rfind("?"), text.rfind("#")
    if 0 <= question < hash_at and _OPTIONS.fullmatch(text[question + 1 : hash_at]):
        # FOLDER?options#split, the URL order: read as FOLDER#split?options.
        text = text[:question] + text[hash_at:] + text[question:hash_at]
    path, fields = _fields(text, "hf")
    base, hash_sign, split = path.rpartition("#")
    # A folder whose own name contains "#" is still taken as a plain path.
    if not hash_sign or Path(path).expanduser().exists():
        return HfDiskPairs(_existing_path(path, "hf"), None, fields)
    if not split:
        raise DatasetError(f"Data set spec hf:{text} has no split name after the #.")
    return HfDiskPairs(_existing_path(base, "hf"), split, fields)


def _csv(text: str) -> DataSet:
    """A CSV file of ``filepath`` and ``title`` columns (clip_benchmark / open_clip)."""
    from pytest_modgap.data.csv_pairs import load_csv

    path, fields = _fields(text, "csv")
    return load_csv(_existing_path(path, "csv"), fields)


_LOADERS = (
    _Loader(
        "flickr8k",
        (),
        "<folder>",
        "Flickr8k: captions.txt (or Flickr8k.token.txt) and Images/",
        _flickr("flickr8k"),
    ),
    _Loader(
        "flickr30k",
        (),
        "<folder>",
        "Flickr30K: captions.txt or results.csv, and Images/ or flickr30k_images/",
        _flickr("flickr30k"),
    ),
    _Loader(
        "coco",
        ("mscoco",),
        "<folder|json>",
        "MSCOCO: annotations/captions_<split>.json and <split>/, val2017 first",
        _coco,
    ),
    _Loader(
        "cifar100",
        (),
        "<folder>[#train]",
        "CIFAR-100 python version (cifar-100-python/); test split unless #train",
        _cifar100,
    ),
    _Loader(
        "jsonl",
        ("manifest",),
        "<file>",
        'JSONL manifest, {"image", "text" or "texts", "label"?} per line',
        _jsonl,
    ),
    _Loader(
        "wds",
        ("webdataset",),
        "<shards>",
        "WebDataset .tar shards (brace range, glob or folder): jpg/png/webp, txt/json, cls",
        _wds,
    ),
    _Loader(
        "parquet",
        (),
        "<files>",
        "Parquet (file, glob or folder): image bytes or path, caption, label? columns",
        _parquet,
    ),
    _Loader(
        "hf",
        (),
        "<folder>[#split]",
        "a datasets save_to_disk folder (pip install 'pytest-modgap[datasets]')",
        _hf,
    ),
    _Loader(
        "csv",
        (),
        "<file>",
        "clip_benchmark / open_clip CSV: filepath and title columns, tab or comma separated",
        _csv,
    ),
)

_LOADER_BY_NAME = {name: loader for loader in _LOADERS for name in (loader.name, *loader.aliases)}


def _builtin_datasets() -> dict[str, Callable[[], PairSet]]:
    """The built-in sets, imported only when a spec needs them (they draw their images)."""
    from pytest_modgap.data.builtin import BUILTIN_DATASETS

    return BUILTIN_DATASETS


def load_dataset(spec: str) -> DataSet:
    """The PairSet a data set spec names, or for large formats an index that reads only what
    ``sample`` draws (``IndexedPairs``; both have ``len`` and ``sample(samples, seed)``).

    A spec is ``loader:path`` (``flickr8k``, ``flickr30k``, ``coco`` / ``mscoco``, ``cifar100``,
    ``jsonl`` / ``manifest``, ``wds`` / ``webdataset``, ``parquet``, ``hf``, ``csv``; loader names
    are case-insensitive and ``~`` in the path is expanded), a bare path ending in ``.jsonl`` (a
    manifest), or the name of a built-in set such as ``DEFAULT_DATASET``.
    ``cifar100:<folder>#train`` picks the train split (test by default), ``hf:<folder>#test`` a
    split of a DatasetDict. ``wds``, ``parquet``, ``hf`` and ``csv`` take ``?image=&text=&label=``
    after the path to name the columns (or member keys) that hold each field.
    """
    spec = spec.strip()
    prefix, colon, rest = spec.partition(":")
    loader = _LOADER_BY_NAME.get(prefix.lower()) if colon else None
    if loader is not None:
        if not rest.strip():
            raise DatasetError(
                f"Data set spec {spec!r} has no path after the colon; write "
                f"{loader.name}:{loader.argument}."
            )
        return loader.load(rest.strip())
    if spec.endswith(".jsonl"):
        return _jsonl(spec)

    builtins = _builtin_datasets()
    if spec in builtins:
        return builtins[spec]()
    if spec.lower() in _LOADER_BY_NAME:
        known = _LOADER_BY_NAME[spec.lower()]
        raise DatasetError(
            f"Data set spec {spec!r} names a loader but no data; write "
            f"{known.name}:{known.argument}."
        )
    if colon:
        problem = f"Data set spec {spec!r} has an unknown loader {prefix!r}."
    elif not spec:
        problem = "The data set spec is empty."
    else:
        problem = f"Data set spec {spec!r} is not a built-in data set."
        if Path(spec).expanduser().exists():
            problem += f" It is a path: name its loader, e.g. {_likely_loader(spec)}:{spec}."
    loaders = ", ".join(f"{loader.name}:{loader.argument}" for loader in _LOADERS)
    aliases = ", ".join(
        f"{alias} = {loader.name}" for loader in _LOADERS for alias in loader.aliases
    )
    raise DatasetError(
        f"{problem} Known loaders: {loaders} (aliases: {aliases}; a bare *.jsonl path is a "
        f"manifest). Built-in data sets: {', '.join(sorted(builtins))}."
    )


def _likely_loader(path: str) -> str:
    """The loader a bare path probably wants, from its suffix or its files."""
    suffix = Path(path).suffix.lower()
    by_suffix = {".tar": "wds", ".parquet": "parquet", ".csv": "csv", ".tsv": "csv"}
    if suffix in by_suffix:
        return by_suffix[suffix]
    folder = Path(path).expanduser()
    if (folder / "dataset_info.json").exists() or (folder / "dataset_dict.json").exists():
        return "hf"
    return "flickr8k"


def describe_dataset_specs() -> str:
    """A short help text on data set specs: the built-in names and every ``loader:path`` form."""
    rows = [
        (name, "built-in: ships with the package, no download")
        for name in sorted(_builtin_datasets())
    ]
    for loader in _LOADERS:
        alias = f" (alias: {', '.join(loader.aliases)})" if loader.aliases else ""
        rows.append((f"{loader.name}:{loader.argument}", loader.summary + alias))
    width = max(len(left) for left, _ in rows)
    lines = ["Data set specs (loader:path, a *.jsonl path, or a built-in name):"]
    lines += [f"  {left.ljust(width)}  {right}" for left, right in rows]
    return "\n".join(lines)
