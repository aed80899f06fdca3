"""etl.dates' single-form parsers, which the text, html and feed sources use."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from etl.dates import parse_date, parse_iso, parse_rfc2822


def test_parse_iso_reads_iso_8601_to_utc():
    assert parse_iso("2023-11-07") == datetime(2023, 11, 7, tzinfo=UTC)
    assert parse_iso(" 2023-11-07T02:00:00Z ") == datetime(2023, 11, 7, 2, tzinfo=UTC)
    assert parse_iso("2023-11-07T02:00:00-05:00") == datetime(2023, 11, 7, 7, tzinfo=UTC)
    assert parse_iso("2023-11-07T02:00:00.1234567") == datetime(
        2023, 11, 7, 2, 0, 0, 123456, tzinfo=UTC
    )
    assert parse_iso("2023-11-07T02:00:00+05:30").tzinfo == UTC
    for bad in ("Tue, 07 Nov 2023 02:00:00 GMT", "yesterday", "2023/11/07"):
        with pytest.raises(ValueError):
            parse_iso(bad)


def test_parse_rfc2822_reads_mail_and_rss_dates_to_utc():
    assert parse_rfc2822("Tue, 07 Nov 2023 02:00:00 GMT") == datetime(2023, 11, 7, 2, tzinfo=UTC)
    east = parse_rfc2822("Tue, 07 Nov 2023 02:00:00 +0100")
    assert east == datetime(2023, 11, 7, 2, tzinfo=timezone(timedelta(hours=1)))
    assert east.tzinfo == UTC
    for bad in ("2023-11-07", "", "soon"):
        with pytest.raises(ValueError):
            parse_rfc2822(bad)


def test_parse_date_tries_both_forms_and_more():
    assert parse_date("2023-11-07T02:00:00Z") == parse_iso("2023-11-07T02:00:00Z")
    assert parse_date("Tue, 07 Nov 2023 02:00:00 GMT") == datetime(2023, 11, 7, 2, tzinfo=UTC)
    assert parse_date("15.09.2017") == datetime(2017, 9, 15, tzinfo=UTC)
