"""fields: derive columns from expressions, set constants, drop columns."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from etl.errors import ConfigError
from etl.sinks.parquet import NULL_PARTITION
from etl.testing import check_options, run_pipeline, run_transform
from tests.helpers.transforms import article

ROWS = [
    {
        "text": article("01-seed.txt"),
        "uri": "https://www.globaltimes.cn/page/202311/1301784.shtml",
        "publisher": "Global Times",
        "published_at": "2023-11-13T22:15:00+00:00",
    },
    {"text": article("10-short.txt"), "uri": None, "publisher": None, "published_at": None},
]


def test_options_contract():
    from etl.transforms.fields import FieldsTransform

    check_options(FieldsTransform)


def test_derive_set_and_drop():
    result = run_transform(
        "fields",
        ROWS,
        {
            "derive": {
                "published_date": "date(published_at)",
                "host": "host(uri)",
                "long": "word_count >= 500",
                "outlet": "lower(publisher)",
            },
            "set": {"collection": "news-2023", "weight": 1.5},
            "drop": ["metadata", "run_id"],
        },
    )
    table = result.table
    assert "metadata" not in table.column_names and "run_id" not in table.column_names
    assert table.schema.field("published_date").type == pa.date32()
    assert table.column("published_date").to_pylist() == [date(2023, 11, 13), None]
    assert table.column("host").to_pylist() == ["www.globaltimes.cn", None]
    assert table.column("long").to_pylist() == [True, False]
    assert table.column("outlet").to_pylist() == ["global times", None]
    assert table.column("collection").to_pylist() == ["news-2023", "news-2023"]
    assert table.column("weight").to_pylist() == [1.5, 1.5]
    assert table.column("word_count").to_pylist() == [960, 9]


def test_partition_by_derived_date(tmp_path):
    result = run_pipeline(
        {
            "transforms": [
                {"plugin": "fields", "derive": {"published_date": "date(published_at)"}}
            ],
            "sink": {"plugin": "parquet", "path": "ds", "partition_by": ["published_date"]},
        },
        articles=ROWS,
        tmp_path=tmp_path,
    )
    folders = sorted(p.name for p in (tmp_path / "ds").iterdir() if p.name != "_etl")
    assert folders == ["published_date=2023-11-13", f"published_date={NULL_PARTITION}"]
    assert result.table.num_rows == 2


def test_rename_and_drop_leave_earlier_transforms_their_columns(tmp_path):
    # the filter before `fields` still sees `publisher`, which `fields` renames, and
    # `word_count`, which it drops; the sink gets the renamed and slimmer schema
    result = run_pipeline(
        {
            "transforms": [
                {"plugin": "filter", "where": "publisher == 'Global Times' and word_count > 100"},
                {"plugin": "fields", "rename": {"publisher": "outlet"}, "drop": ["word_count"]},
                {"plugin": "filter", "where": "outlet == 'Global Times'"},
            ],
            "sink": {"plugin": "parquet", "path": "ds"},
        },
        articles=ROWS,
        tmp_path=tmp_path,
    )
    table = result.table
    assert table.column("outlet").to_pylist() == ["Global Times"]
    assert "publisher" not in table.column_names and "word_count" not in table.column_names


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "nothing to do"),
        ({"drop": ["id"]}, "may not change the column 'id'"),
        ({"set": {"id": "x"}}, "may not change the column 'id'"),
        ({"derive": {"d": "date(published_att)"}}, "no column 'published_att'"),
        ({"drop": ["nosuch"]}, "option 'drop': no column 'nosuch'"),
        ({"set": {"tags": ["a"]}}, "a constant must be"),
        ({"rename": {"a": "b"}}, "option 'rename': no column 'a'"),
        ({"rename": {"title": "text"}}, "'text' exists already"),
        ({"rename": {"id": "key"}}, "may not change the column 'id'"),
        ({"renme": {"a": "b"}}, "unknown option 'renme'"),
    ],
)
def test_mistakes_are_config_errors(options, message):
    with pytest.raises(ConfigError, match="plugin 'fields'") as info:
        run_transform("fields", ROWS, options)
    assert message in str(info.value)
