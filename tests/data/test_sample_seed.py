"""The seed that draws a sample: a non-negative integer, or an error that names it and the fix
(numpy's own ValueError / TypeError named neither the seed nor the option)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.data.specs import load_dataset
from pytest_modgap.errors import DatasetError

TOY = PairSet("toy", [np.zeros((2, 2, 3), np.uint8)] * 5, [f"caption {i}" for i in range(5)])


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_a_seed_that_is_not_a_non_negative_integer_is_named(seed: object) -> None:
    with pytest.raises(DatasetError, match=rf"seed={seed!r} for data set 'toy'.*non-negative"):
        TOY.sample(2, seed=seed)  # type: ignore[arg-type]


def test_an_indexed_set_refuses_it_too_and_a_huge_seed_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "pairs.parquet"
    pq.write_table(pa.table({"image": [b"x"] * 5, "caption": list("abcde")}), path)
    with pytest.raises(DatasetError, match=r"seed=-7 for data set 'pairs'"):
        load_dataset(f"parquet:{path}").sample(2, seed=-7)
    assert len(load_dataset(f"parquet:{path}").sample(2, seed=2**70)) == 2
    assert len(TOY.sample(3, seed=2**64 + 1)) == 3
