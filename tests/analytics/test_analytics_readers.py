"""Every reader reads every dataset the examples produce, grown schemas included."""

from __future__ import annotations

import pyarrow.dataset as pads
import pytest

from tests.analytics.conftest import written
from tests.analytics.readers import READERS


@pytest.mark.parametrize("name", ["seed", "news", "parted"])
@pytest.mark.parametrize("reader", sorted(READERS))
def test_reader_reads_whole_dataset(datasets, name, reader):
    root = datasets[name]
    rows, ids, sentences = READERS[reader](root, "sentences")
    counts = written(root)
    assert rows == sum(counts) and rows > 0
    assert len(ids) == rows  # exact dedup: no id twice
    if name == "seed":
        assert sentences == 0
    else:
        # the column came with run 2: run 1's rows read as null in it
        assert len(counts) == 2
        assert sentences == counts[1]


def test_readers_agree_on_ids(datasets):
    for name in ("news", "parted"):
        results = {r: READERS[r](datasets[name], "sentences")[1] for r in READERS}
        first = next(iter(results.values()))
        assert all(ids == first for ids in results.values()), name


def test_without_unified_schema_a_reader_misses_new_columns(datasets):
    """Why docs/analytics.md says to pass the unified schema: pyarrow infers from one file."""
    plain = pads.dataset(datasets["news"], format="parquet", ignore_prefixes=["_", "."])
    files = sorted(str(f) for f in plain.files)
    first_file_cols = set(pads.dataset(files[0], format="parquet").schema.names)
    assert set(plain.schema.names) == first_file_cols
    assert "sentences" not in plain.schema.names or "sentences" in first_file_cols
