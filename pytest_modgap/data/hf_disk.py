"""Hugging Face ``datasets`` folders written by ``save_to_disk`` (``hf:FOLDER``, ``hf:FOLDER#test``)
as a sampled data set: the Arrow files are memory-mapped, and a sample copies out only its rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_modgap.data.arrow_rows import import_pyarrow, one_line, pick_columns, rows_from_table
from pytest_modgap.data.indexed import IndexedPairs
from pytest_modgap.data.pairset import PairSet
from pytest_modgap.data.rows import FieldNames, Row, pairs_from_rows
from pytest_modgap.errors import DatasetError

BATCH_ROWS = 256
"""Sampled rows copied out of the memory-mapped table at a time."""


def _import_datasets() -> Any:
    """The ``datasets`` module, or a DatasetError naming the extra that installs it."""
    try:
        import datasets
    except ImportError as exc:
        raise DatasetError(
            "The hf: data set loader reads folders written by datasets' save_to_disk and needs "
            "the datasets package, which is not installed. Install it with "
            "pip install 'pytest-modgap[datasets]' (or pip install datasets)."
        ) from exc
    return datasets


class HfDiskPairs(IndexedPairs):
    """Pairs in a ``datasets.Dataset`` (or one split of a ``DatasetDict``) saved with
    ``save_to_disk``: one row a pair, the image an ``Image`` feature (bytes or a path), a binary
    or a path column. Rows are in the dataset's order. Nothing is decoded before ``sample``."""

    def __init__(self, folder: Path, split: str | None, fields: FieldNames | None = None) -> None:
        datasets = _import_datasets()
        self._pa = import_pyarrow("hf")
        self.folder = folder
        dataset = _split(datasets, _load(datasets, self._pa, folder), folder, split)
        label = f"{folder}" + (f"#{split}" if split else "")
        self._where = f"datasets folder {label}"
        self.columns = pick_columns(
            dataset.features.arrow_schema, fields or FieldNames(), self._where
        )
        self._table = dataset.select_columns(self.columns.names).with_format("arrow")
        self._row_prefix = f"{folder.name}{'#' + split if split else ''} row"
        if len(self._table) == 0:
            raise DatasetError(
                f"The {self._where} holds no rows. Point the spec at a dataset with one "
                f"image-caption pair per row."
            )
        super().__init__(
            name=folder.name or "datasets",
            description=f"datasets folder {label} ({len(self._table)} pairs)",
        )

    def __len__(self) -> int:
        return len(self._table)

    def read_rows(self, rows: Sequence[int]) -> PairSet:
        """The rows at ``rows``, copied out of the memory-mapped Arrow files ``BATCH_ROWS`` at a
        time; images as bytes held for these rows only (or paths)."""
        wanted = [int(row) for row in rows]
        records: list[Row] = []
        for start in range(0, len(wanted), BATCH_ROWS):
            chunk = wanted[start : start + BATCH_ROWS]
            try:
                table = self._table[chunk]
            except (self._pa.ArrowException, OSError) as exc:
                raise DatasetError(
                    f"The {self._where}: rows {chunk[0]}-{chunk[-1]} cannot be read "
                    f"({one_line(exc)}). Its Arrow files are damaged; save the dataset again with "
                    f"save_to_disk."
                ) from exc
            origins = [f"{self._row_prefix} {row}" for row in chunk]
            records.extend(rows_from_table(table, self.columns, self.folder, origins))
        return pairs_from_rows(
            records,
            name=self.name,
            description=self.description,
            labelled=self.columns.label is not None,
        )


def _load(datasets: Any, pa: Any, folder: Path) -> Any:
    """``datasets.load_from_disk(folder)`` (memory-mapped), or a DatasetError saying what the
    folder should hold."""
    try:
        return datasets.load_from_disk(str(folder))
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise DatasetError(
            f"{folder} is not a folder written by datasets' save_to_disk ({exc}). It should hold "
            f"dataset_info.json, state.json and data-*.arrow files (a Dataset), or "
            f"dataset_dict.json and one folder per split (a DatasetDict). Save the data set with "
            f"Dataset.save_to_disk, or use the parquet: loader for Parquet files."
        ) from exc
    except (pa.ArrowException, OSError, ValueError, KeyError) as exc:
        raise DatasetError(
            f"The datasets folder {folder} cannot be loaded ({type(exc).__name__}: "
            f"{one_line(exc)}). Its files are damaged or were written by an incompatible datasets "
            f"version; save the dataset again with save_to_disk."
        ) from exc


def _split(datasets: Any, loaded: Any, folder: Path, split: str | None) -> Any:
    """The Dataset that ``split`` names: a DatasetDict's split (the only one when it has one), or
    the Dataset itself."""
    if not isinstance(loaded, datasets.DatasetDict):
        if split is not None:
            raise DatasetError(
                f"Data set spec hf:{folder}#{split} asks for split {split!r}, but {folder} holds "
                f"a single Dataset, not a DatasetDict of splits. Leave out #{split}."
            )
        return loaded
    splits = list(loaded)
    if split is None and len(splits) == 1:
        return loaded[splits[0]]
    if split is None or split not in loaded:
        asked = "does not say which split to read" if split is None else f"asks for {split!r}"
        raise DatasetError(
            f"Data set spec hf:{folder}{'#' + split if split else ''} {asked}; the DatasetDict "
            f"in {folder} has the splits {', '.join(splits)}. Name one after a #, e.g. "
            f"hf:{folder}#{splits[0]}."
        )
    return loaded[split]
