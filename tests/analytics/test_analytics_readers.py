"""Every reader reads every dataset the examples produce, grown schemas included."""

from __future__ import annotations

import pyarrow.dataset as pads
import pytest

from tests.helpers.analytics import READERS, written


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


def test_distinct_columns_are_not_dictionary_encoded(datasets):
    """Texts, ids, uris and titles are written plain (a dictionary of distinct values is
    work and bytes for nothing); the repeating columns, nested ones too, keep dictionaries."""
    import pyarrow.parquet as pq

    files = sorted(p for p in datasets["news"].rglob("*.parquet") if "_etl" not in p.parts)
    meta = pq.ParquetFile(files[-1]).metadata.row_group(0)
    encodings = {
        meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)
    }
    for column in ("id", "uri", "title", "text"):
        assert "RLE_DICTIONARY" not in encodings[column], column
    for column in ("source", "publisher", "run_id", "metadata.key_value.value"):
        assert "RLE_DICTIONARY" in encodings[column], column
