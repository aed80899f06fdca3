"""Dates as records give them, to UTC: the vectorised path and the one-by-one fallback."""

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from etl.dates import parse_date, parse_dates

T = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:20+00:00",
        "2023-11-14 17:13:20-05:00",
        "2023-11-15T07:13:20+0900",
        "2023-11-14T22:13:20",  # naive: UTC
        "2023-11-14T22:13:20.000000001Z",  # nanoseconds: cut to microseconds
        "Tue, 14 Nov 2023 22:13:20 GMT",
        "Tue, 14 Nov 2023 23:13:20 +0100",
        1700000000,
        1700000000.0,
        1700000000000,  # milliseconds
        "1700000000",
        "1700000000000",
    ],
)
def test_one_instant_in_many_spellings(value):
    assert parse_date(value) == T
    parsed, bad = parse_dates([value, None])
    assert parsed.to_pylist() == [T, None]
    assert bad == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2017-09-15", datetime(2017, 9, 15, tzinfo=UTC)),
        ("September 15, 2017", datetime(2017, 9, 15, tzinfo=UTC)),
        ("15 Sep 2017", datetime(2017, 9, 15, tzinfo=UTC)),
        ("15.09.2017", datetime(2017, 9, 15, tzinfo=UTC)),
        ("2017/09/15 10:30", datetime(2017, 9, 15, 10, 30, tzinfo=UTC)),
        ("20170915", datetime(2017, 9, 15, tzinfo=UTC)),
    ],
)
def test_written_forms(value, expected):
    assert parse_date(value) == expected


def test_a_column_mixes_fast_and_slow_paths_and_reports_the_bad():
    values = [
        "2023-11-14T22:13:20Z",
        "2023-13-45T00:00:00Z",  # ISO shape, impossible date
        None,
        "None",
        "",
        "last Tuesday",
        "Tue, 14 Nov 2023 22:13:20 GMT",
        "2023-11-14",
        True,
        {"date": "x"},
    ]
    parsed, bad = parse_dates(values)
    assert parsed.type == pa.timestamp("us", tz="UTC")
    got = parsed.to_pylist()
    assert got[0] == T and got[6] == T
    assert got[7] == datetime(2023, 11, 14, tzinfo=UTC)
    assert got[1] is None and got[5] is None
    assert bad == [1, 5, 8, 9]  # missing values (None, "None", "") are not errors


def test_large_column_stays_vectorised_and_exact():
    n = 5000
    values = [f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z" for i in range(n)]
    parsed, bad = parse_dates(values)
    assert bad == []
    assert parsed.to_pylist()[n - 1] == datetime(
        2024, 1, 1 + (n - 1) % 28, (n - 1) % 24, tzinfo=UTC
    )
