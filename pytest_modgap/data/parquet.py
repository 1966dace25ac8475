"""Parquet files (``parquet:data/*.parquet``) as a sampled data set: the index is each file's row
groups, from the footers; a sample reads only the row groups that hold sampled rows, and of those
only the image, caption and label columns, streamed page by page up to the last sampled row.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pytest_modgap.data.arrow_rows import (
    ArrowColumns,
    import_pyarrow,
    one_line,
    pick_columns,
    rows_from_table,
)
from pytest_modgap.data.indexed import IndexedPairs
from pytest_modgap.data.pairset import PairSet
from pytest_modgap.data.patterns import expand_files
from pytest_modgap.data.rows import FieldNames, Row, pairs_from_rows
from pytest_modgap.errors import DatasetError

BATCH_ROWS = 256
"""Rows decoded at a time within a row group: memory holds one batch of the columns, whatever the
row group's size, plus the sampled rows' image bytes."""
STREAM_BUFFER_BYTES = 1 << 20
"""Column chunks are read through a buffer of this size, page by page. Pyarrow's default instead
reads every column chunk of a row group whole before decoding it ("pre-buffering"): sampling 2
rows of one 40,000-row group then held all of its image bytes. Streaming bounds memory by one
data page per column (the writer's page size, 1 MB by default) plus one batch; the bytes before
the last sampled row of a group are still read from disk, since Parquet pages can only be
decoded in order."""

_FIX = "re-create the file, or leave it out of the pattern"


class ParquetPairs(IndexedPairs):
    """Pairs in Parquet files: one row a pair, the image as bytes or as a path relative to the file.

    Rows are the files in natural name order, then each file's rows in order. The index is the
    files' row group sizes, read from their footers (no data); every file must have the chosen
    columns with types that fit.
    """

    def __init__(self, pattern: str, fields: FieldNames | None = None) -> None:
        pa = import_pyarrow("parquet")
        import pyarrow.parquet as pq

        self._pa = pa
        self.files = expand_files(pattern, "parquet", (".parquet", ".pq"))
        fields = fields or FieldNames()
        chosen: ArrowColumns | None = None
        starts = [0]
        group_file: list[int] = []
        group_number: list[int] = []
        for number, path in enumerate(self.files):
            parquet = _open(pa, pq, path)
            metadata, schema = parquet.metadata, parquet.schema_arrow
            columns = pick_columns(schema, fields, f"Parquet file {path}")
            if chosen is not None and columns != chosen:
                raise DatasetError(
                    f"Parquet file {path} has other columns than {self.files[0]} (image, caption, "
                    f"label: {columns.names} against {chosen.names}). Give every file the same "
                    f"columns, or name them with ?image=&text=&label= in the data set spec."
                )
            chosen = columns
            for group in range(metadata.num_row_groups):
                rows = metadata.row_group(group).num_rows
                if rows:
                    starts.append(starts[-1] + rows)
                    group_file.append(number)
                    group_number.append(group)
        assert chosen is not None  # expand_files found at least one file
        self.columns = chosen
        self._starts = np.asarray(starts, dtype=np.int64)
        self._group_file = group_file
        self._group_number = group_number
        if len(self) == 0:
            raise DatasetError(
                f"Data set spec parquet:{pattern}: its {len(self.files)} file(s) hold no rows. "
                f"Point the spec at Parquet files with one image-caption pair per row."
            )
        only = self.files[0] if len(self.files) == 1 else None
        super().__init__(
            name=(only.stem if only else Path(pattern).parent.name) or "parquet",
            description=f"Parquet {pattern} ({len(self.files)} files, {len(self)} pairs)",
        )

    def __len__(self) -> int:
        return int(self._starts[-1])

    def read_rows(self, rows: Sequence[int]) -> PairSet:
        """The sampled rows, read one row group at a time (only groups that hold one), in
        ``BATCH_ROWS`` batches of the three columns; images as bytes held for these rows only."""
        import pyarrow.parquet as pq

        wanted = np.asarray(rows, dtype=np.int64)
        order = np.argsort(wanted, kind="stable")
        ordered = wanted[order]
        groups = np.searchsorted(self._starts, ordered, side="right") - 1
        read: list[Row] = []
        handle: tuple[int, Any] | None = None
        for group in np.unique(groups):
            in_group = ordered[groups == group]
            file_number = self._group_file[group]
            if handle is None or handle[0] != file_number:
                handle = (file_number, _open(self._pa, pq, self.files[file_number]))
            read.extend(self._read_group(handle[1], int(group), in_group))
        # read[k] is row ordered[k] = wanted[order[k]]: put each back where ``rows`` asked for it.
        records = [read[int(k)] for k in np.argsort(order, kind="stable")]
        return pairs_from_rows(
            records,
            name=self.name,
            description=self.description,
            labelled=self.columns.label is not None,
        )

    def _read_group(self, parquet: Any, group: int, rows: np.ndarray) -> list[Row]:
        path = self.files[self._group_file[group]]
        number = self._group_number[group]
        first_row = int(self._starts[group])
        local = rows - first_row
        file_start = first_row - int(self._starts[self._group_file.index(self._group_file[group])])
        read: list[Row] = []
        batch_start = 0
        last = int(local.max())
        try:
            for batch in parquet.iter_batches(
                batch_size=BATCH_ROWS,
                row_groups=[number],
                columns=self.columns.names,
                use_threads=False,
            ):
                batch_end = batch_start + batch.num_rows
                inside = local[(local >= batch_start) & (local < batch_end)]
                if inside.size:
                    taken = batch.take(self._pa.array(inside - batch_start))
                    origins = [f"{path.name} row {file_start + int(k)}" for k in inside]
                    read.extend(rows_from_table(taken, self.columns, path.parent, origins))
                batch_start = batch_end
                if batch_start > last:  # the rest of the group holds no sampled row
                    break
        except (self._pa.ArrowException, OSError) as exc:
            end = file_start + int(self._starts[group + 1] - self._starts[group]) - 1
            raise DatasetError(
                f"Parquet file {path}: row group {number} (rows {file_start}-{end} of the file) "
                f"cannot be read ({one_line(exc)}). The file is damaged (cut off or corrupted); "
                f"{_FIX}."
            ) from exc
        if len(read) != rows.size:
            raise DatasetError(
                f"Parquet file {path}: row group {number} gave {batch_start} rows, but its footer "
                f"says {int(self._starts[group + 1] - self._starts[group])}. The file is damaged; "
                f"{_FIX}."
            )
        return read


def _open(pa: Any, pq: Any, path: Path) -> Any:
    """The ``ParquetFile`` at ``path`` (its footer read; pages are checked against their CRCs when
    the writer stored them, and streamed: ``STREAM_BUFFER_BYTES``), or a DatasetError naming the
    file."""
    try:
        return pq.ParquetFile(
            path,
            page_checksum_verification=True,
            pre_buffer=False,
            buffer_size=STREAM_BUFFER_BYTES,
        )
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(
            f"Parquet file {path} cannot be opened ({one_line(exc)}). It is not a complete "
            f"Parquet file: {_FIX}."
        ) from exc
