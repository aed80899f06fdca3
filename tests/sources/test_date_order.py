"""Numeric dates and ``date_order`` (issue 15 item 6): ``01/02/2023`` was read day-first
silently and ``09/15/2017`` became null. The record sources take ``date_order = "DMY" |
"MDY" | "YMD"`` (default DMY); a date invalid in that order is read in the one order that
makes it valid, and the run summary counts both kinds of doubt."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from etl.dates import DateNotes, parse_date, parse_dates
from tests.helpers import read_dataset, run_etl, write_pipeline


def day(y: int, m: int, d: int, *time: int) -> datetime:
    return datetime(y, m, d, *time, tzinfo=UTC)


# etl.dates


AMBIGUOUS = "ambiguous"


@pytest.mark.parametrize(
    ("value", "dmy", "mdy", "ymd"),
    [
        ("01/02/2023", day(2023, 2, 1), day(2023, 1, 2), AMBIGUOUS),
        ("09/15/2017", day(2017, 9, 15), day(2017, 9, 15), day(2017, 9, 15)),  # MDY only
        ("15.09.2017", day(2017, 9, 15), day(2017, 9, 15), day(2017, 9, 15)),  # DMY only
        ("05-05-2023", day(2023, 5, 5), day(2023, 5, 5), day(2023, 5, 5)),  # both the same
        ("2017/09/15", day(2017, 9, 15), day(2017, 9, 15), day(2017, 9, 15)),  # year first
        ("2017.09.15 10:30", *[day(2017, 9, 15, 10, 30)] * 3),
        (
            "03/04/2021 23:59:58",
            day(2021, 4, 3, 23, 59, 58),
            day(2021, 3, 4, 23, 59, 58),
            AMBIGUOUS,
        ),
    ],
)
def test_numeric_dates_in_each_order(value, dmy, mdy, ymd):
    assert parse_date(value) == dmy  # DMY is the default
    assert parse_date(value, "DMY") == dmy
    assert parse_date(value, "MDY") == mdy
    if ymd == AMBIGUOUS:  # not year first, and day-first and month-first differ
        with pytest.raises(ValueError, match="ambiguous date"):
            parse_date(value, "YMD")
    else:
        assert parse_date(value, "YMD") == ymd


@pytest.mark.parametrize("value", ["13/13/2023", "31/02/2023", "01/02/23", "1/2/3/4", "2023/15/01"])
def test_numeric_dates_valid_in_no_order_are_errors(value):
    for order in ("DMY", "MDY", "YMD"):
        with pytest.raises(ValueError):
            parse_date(value, order)


def test_notes_count_ambiguous_dates_and_dates_read_in_the_other_order():
    values = ["01/02/2023", "09/15/2017", "15/09/2017", "05/05/2023", "2023-01-02", "soon", None]
    notes = DateNotes()
    parsed, bad = parse_dates(values, "DMY", notes)
    assert parsed.to_pylist()[:5] == [
        day(2023, 2, 1),
        day(2017, 9, 15),
        day(2017, 9, 15),
        day(2023, 5, 5),
        day(2023, 1, 2),
    ]
    assert bad == [5]
    # 05/05/2023 reads the same either way: not ambiguous
    assert notes.counters("DMY") == {
        "dates read ambiguously (DMY)": 1,
        "dates read as MDY, not DMY": 1,
    }
    notes = DateNotes()
    parsed, bad = parse_dates(values, "YMD", notes)
    assert parsed.to_pylist()[0] is None and bad == [0, 5]
    assert notes.errors == {0: "ambiguous date (day or month first?)"}
    assert notes.counters("YMD") == {
        "dates read as DMY, not YMD": 2,  # 15/09/2017, and 05/05/2023 (the same both ways)
        "dates read as MDY, not YMD": 1,
    }
    with pytest.raises(ValueError, match="date order must be one of DMY, MDY, YMD"):
        parse_dates(values, "dmy")


# through the sources, read back from Parquet

RECORDS = [
    ("ambiguous", "01/02/2023"),
    ("month first", "09/15/2017"),
    ("day first", "15.09.2017"),
    ("year first", "2017/09/15"),
    ("iso", "2023-11-07T02:00:00Z"),
]


def run(tmp: Path, plugin: str, order: str | None, extra: str = "") -> tuple[dict, dict]:
    """Run the records through ``plugin``; the published_at by title, and the summary."""
    if plugin == "csv":
        lines = ["title,text,date", *(f"{t},Text of {t}.,{d}" for t, d in RECORDS)]
        (tmp / "in.csv").write_text("\n".join(lines) + "\n")
    else:
        lines = [json.dumps({"title": t, "text": f"Text of {t}.", "date": d}) for t, d in RECORDS]
        (tmp / "in.jsonl").write_text("\n".join(lines) + "\n")
    option = f'date_order = "{order}"\n' if order else ""
    p = write_pipeline(
        tmp / "p.toml",
        f'[[sources]]\nplugin = "{plugin}"\npaths = ["in.{plugin}"]\n{option}{extra}'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    proc = run_etl("run", str(p), "--json")
    assert proc.returncode == 0, proc.stderr
    table = read_dataset(tmp / "out").to_pylist()
    return {r["title"]: r["published_at"] for r in table}, json.loads(proc.stdout)


PATHS = [("csv", ""), ("jsonl", ""), ("jsonl", "keep_extra = true\n")]  # fast path, per line


@pytest.mark.parametrize(("plugin", "extra"), PATHS, ids=["csv", "jsonl-fast", "jsonl-lines"])
@pytest.mark.parametrize(
    ("order", "ambiguous", "counters"),
    [
        (
            None,
            day(2023, 2, 1),
            {"dates read ambiguously (DMY)": 1, "dates read as MDY, not DMY": 1},
        ),
        (
            "DMY",
            day(2023, 2, 1),
            {"dates read ambiguously (DMY)": 1, "dates read as MDY, not DMY": 1},
        ),
        (
            "MDY",
            day(2023, 1, 2),
            {"dates read ambiguously (MDY)": 1, "dates read as DMY, not MDY": 1},
        ),
        (
            "YMD",
            None,
            {"dates read as MDY, not YMD": 1, "dates read as DMY, not YMD": 1},
        ),
    ],
)
def test_date_order_read_back_from_parquet(tmp_path, plugin, extra, order, ambiguous, counters):
    dates, summary = run(tmp_path, plugin, order, extra)
    assert dates == {
        "ambiguous": ambiguous,
        "month first": day(2017, 9, 15),  # invalid day-first: read month-first, counted
        "day first": day(2017, 9, 15),
        "year first": day(2017, 9, 15),  # a four-digit year first is never in doubt
        "iso": day(2023, 11, 7, 2),
    }
    got = {k: v for k, v in summary["counters"].items() if k.startswith("dates ")}
    assert got == counters


def test_an_ambiguous_date_under_ymd_says_why_it_is_null(tmp_path):
    run(tmp_path, "csv", "YMD")
    table = read_dataset(tmp_path / "out").to_pylist()
    (row,) = [r for r in table if r["title"] == "ambiguous"]
    meta = dict(row["metadata"])
    assert meta["published_at_raw"] == "01/02/2023"
    assert meta["date_error"] == "ambiguous date (day or month first?)"


def test_the_summary_prints_the_ambiguous_dates(tmp_path):
    run(tmp_path, "jsonl", None)
    (tmp_path / "in.jsonl").write_text('{"text": "Another.", "date": "02/03/2024"}\n', "utf-8")
    proc = run_etl("run", str(tmp_path / "p.toml"))
    assert proc.returncode == 0, proc.stderr
    # a counter named in words reads "n words" in the summary (etl.commands.summary)
    assert "  counted   1 dates read ambiguously (DMY)\n" in proc.stdout


def test_a_date_order_outside_the_choices_is_a_pipeline_error(tmp_path):
    (tmp_path / "in.csv").write_text("text\nx\n")
    p = write_pipeline(
        tmp_path / "p.toml",
        '[[sources]]\nplugin = "csv"\npaths = ["in.csv"]\ndate_order = "DDMMYY"\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    proc = run_etl("validate", str(p))
    assert proc.returncode == 2
    assert "option 'date_order' is 'DDMMYY'; choose one of 'DMY', 'MDY', 'YMD'" in proc.stderr
