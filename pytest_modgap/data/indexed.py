"""Data sets read through an index (tar shards, Parquet, ``datasets`` folders): their size is known
without reading them, and ``sample`` reads only the sampled pairs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from pytest_modgap.data.pairset import PairSet, sample_rows


class IndexedPairs(ABC):
    """A large data set kept where it is: an index in memory, pairs read on ``sample``.

    Rows are numbered in index order (shards in natural name order, then members in shard order;
    files in natural name order, then rows in file order), which is the order a JSONL manifest of
    the same pairs lists them in: the same seed then samples the same pairs from every format.
    """

    name: str
    description: str

    def __init__(self, name: str, description: str) -> None:
        self.name = name
        self.description = description

    @abstractmethod
    def __len__(self) -> int:
        """The number of pairs, from the index."""

    @abstractmethod
    def read_rows(self, rows: Sequence[int]) -> PairSet:
        """The pairs at ``rows`` (ascending row numbers): captions and labels read now, images as
        references or bytes that the embedding pipeline decodes."""

    def sample(self, samples: int | None, seed: int = 0) -> PairSet:
        """``samples`` pairs drawn as ``PairSet.sample`` draws them (``sample_rows``), read from
        the index without reading the rest; ``None`` reads every pair."""
        rows = sample_rows(len(self), samples, seed, f"data set {self.name!r}")
        return self.read_rows(range(len(self)) if rows is None else rows)


DataSet = PairSet | IndexedPairs
"""What a data set spec names: pairs in memory, or an index that reads the sampled pairs."""
