"""Publication dates as people write them, to UTC timestamps.

Accepted: ISO 8601 (``2023-11-07T02:00:00-05:00``, ``2017-09-15``, ``...Z``), RFC 2822
(``Tue, 07 Nov 2023 02:00:00 GMT``), epoch seconds or milliseconds (numbers or digit strings),
numeric dates (``2017/09/15``, ``15.09.2017``, ``09/15/2017``, ``15-09-2017``, with an
optional ``HH:MM[:SS]``) and a few written forms (``September 15, 2017``, ``15 Sep 2017``,
``20170915``). A time without a zone is taken as UTC.

Numeric dates with the year last are ambiguous (``01/02/2023``): the ``order`` argument
(:data:`DATE_ORDERS`, default ``"DMY"``) says which of day and month comes first, and
:class:`DateNotes` counts the dates read in that order although the other also gave a valid,
different date, and the dates read in the other order because they were invalid in the one
given (``09/15/2017`` under DMY). See docs/sources.md, "Dates".

:func:`parse_dates` parses a whole column: the ISO 8601 values (nearly all of them, in real
data) by one Arrow cast, only the rest one by one in Python. :func:`parse_date` parses one
value of any of those forms; :func:`parse_iso` and :func:`parse_rfc2822` only the one form
(for an option documented as ISO 8601, or dates a format says are RFC 3339 or RFC 2822).
Every plugin that parses dates goes through this module, so a date reads the same in all.
"""

from __future__ import annotations

import email.utils
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

TIMESTAMP = pa.timestamp("us", tz="UTC")

# the shapes Arrow's string->timestamp cast reads: with a zone (cast to UTC directly) ...
_ISO_ZONED = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)$"
# ... and without one (cast to a naive timestamp, which is then read as UTC)
_ISO_NAIVE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?)?$"

_EPOCH = re.compile(r"^-?\d{1,17}(\.\d+)?$")
_YYYYMMDD = re.compile(r"^(19|20)\d{6}$")
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")
_NULLS = {"", "none", "null", "nan", "n/a", "na", "-"}
#: the orders of day, month and year a numeric date may be read in (``date_order``)
DATE_ORDERS = ("DMY", "MDY", "YMD")
DEFAULT_DATE_ORDER = "DMY"
# a numeric date: three groups of digits joined by one separator (/ . -), maybe a time
_NUMERIC = re.compile(
    r"^(\d{1,4})([/.-])(\d{1,2})\2(\d{1,4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$"
)
_FORMATS = (
    "%B %d, %Y",
    "%b %d, %Y",
    "%B %d, %Y %H:%M",
    "%b %d, %Y %H:%M",
    "%b. %d, %Y",
    "%d %B %Y",
    "%d %b %Y",
    "%d %B %Y %H:%M",
    "%A, %B %d, %Y",
    "%Y%m%d",
)
_EPOCH_0 = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class DateNotes:
    """What :func:`parse_dates` noticed besides the values themselves.

    Attributes:
        ambiguous: dates read in the order given although the other order gives another
            valid date (``01/02/2023``: 1 February under DMY, 2 January under MDY).
        other_order: dates invalid in the order given and read in the one order that makes
            them valid, by that order (``09/15/2017`` under DMY counts under ``"MDY"``).
        errors: why a value could not be read, by index, where that is more than "an
            unrecognised date format" (``01/02/2023`` under YMD: day or month first?).
    """

    ambiguous: int = 0
    other_order: Counter[str] = field(default_factory=Counter)
    errors: dict[int, str] = field(default_factory=dict)

    def counters(self, order: str) -> dict[str, int]:
        """The run-summary counters of these notes, for dates read with ``order``."""
        counts = {f"dates read ambiguously ({order})": self.ambiguous} if self.ambiguous else {}
        for used, n in sorted(self.other_order.items()):
            counts[f"dates read as {used}, not {order}"] = n
        return counts


class AmbiguousDate(ValueError):
    """A numeric date that is not in the order given and reads as two different dates in
    the others (``01/02/2023`` under YMD)."""

    reason = "ambiguous date (day or month first?)"


def is_missing(value: Any) -> bool:
    """No date given at all (null, empty, "None"): not an error, just no date."""
    return value is None or (isinstance(value, str) and value.strip().lower() in _NULLS)


def parse_iso(value: str) -> datetime:
    """An ISO 8601 date or time (``2023-11-07``, ``2023-11-07T02:00:00Z``, ``...-05:00``) as
    an aware UTC datetime; a time without a zone is taken as UTC. ValueError if it is not
    ISO 8601."""
    return _to_utc(datetime.fromisoformat(_LONG_FRACTION.sub(r"\1", value.strip())))


def parse_rfc2822(value: str) -> datetime:
    """An RFC 2822 date (``Tue, 07 Nov 2023 02:00:00 GMT``, as e-mail and RSS write them) as
    an aware UTC datetime. ValueError if it is not one."""
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is None:
        raise ValueError(f"not an RFC 2822 date: {value[:80]!r}")
    return _to_utc(parsed)


def parse_date(
    value: Any, order: str = DEFAULT_DATE_ORDER, notes: DateNotes | None = None
) -> datetime | None:
    """One value to an aware UTC datetime; None if missing; ValueError if unreadable.

    Args:
        value: a string, number, datetime or None.
        order: how to read a numeric date with the year last: ``"DMY"`` (day first),
            ``"MDY"`` (month first) or ``"YMD"`` (year first; a year-last date is read only
            when one order makes it a valid date).
        notes: where to count a date read ambiguously or in another order.
    """
    if order not in DATE_ORDERS:
        raise ValueError(f"date order must be one of {', '.join(DATE_ORDERS)}, got {order!r}")
    if is_missing(value):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a date: {value!r}")
    if isinstance(value, (int, float)):
        return _from_epoch(float(value))
    if isinstance(value, datetime):
        return _to_utc(value)
    if not isinstance(value, str):
        raise ValueError(f"not a date: {type(value).__name__}")
    text = value.strip()
    if _YYYYMMDD.match(text):
        return datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC)
    if _EPOCH.match(text):
        return _from_epoch(float(text))
    for parse in (parse_iso, parse_rfc2822):
        try:
            return parse(text)
        except ValueError:
            pass
    numeric = _NUMERIC.match(text)
    if numeric is not None:
        return _numeric_date(numeric, order, notes)
    for fmt in _FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"unrecognised date format: {text[:80]!r}")


def _numeric_date(match: re.Match[str], order: str, notes: DateNotes | None) -> datetime:
    """A numeric date (``15/09/2017``, ``2017.09.15``): see :func:`parse_date`."""
    first, _, middle, last, hour, minute, second = match.groups()
    time = (int(hour or 0), int(minute or 0), int(second or 0))
    if len(first) == 4 and len(last) <= 2:
        # year first: year-month-day under every order (nobody writes year-day-month)
        return datetime(int(first), int(middle), int(last), *time, tzinfo=UTC)
    if len(last) != 4 or len(first) > 2:
        raise ValueError(f"unrecognised date format: {match.group(0)[:80]!r}")
    year, a, b = int(last), int(first), int(middle)
    readings = {"DMY": _valid(year, b, a, time), "MDY": _valid(year, a, b, time)}
    chosen = readings.get(order)
    if chosen is not None:
        other = readings["MDY" if order == "DMY" else "DMY"]
        if notes is not None and other is not None and other != chosen:
            notes.ambiguous += 1
        return chosen
    valid = {name: when for name, when in readings.items() if when is not None}
    if not valid:
        raise ValueError(f"not a valid date in any order: {match.group(0)[:80]!r}")
    if len(set(valid.values())) > 1:  # 01/02/2023 under YMD: a guess would be a coin toss
        raise AmbiguousDate(f"ambiguous date: {match.group(0)[:80]!r}")
    name, when = next(iter(valid.items()))
    if notes is not None:
        notes.other_order[name] += 1
    return when


def _valid(year: int, month: int, day: int, time: tuple[int, int, int]) -> datetime | None:
    try:
        return datetime(year, month, day, *time, tzinfo=UTC)
    except ValueError:
        return None


def _from_epoch(number: float) -> datetime:
    magnitude = abs(number)
    if magnitude < 1e11:  # seconds: up to the year 5138
        seconds = number
    elif magnitude < 1e14:  # milliseconds
        seconds = number / 1e3
    elif magnitude < 1e17:  # microseconds
        seconds = number / 1e6
    else:
        raise ValueError(f"epoch value out of range: {number}")
    try:
        return _EPOCH_0 + timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"epoch value out of range: {number}") from None


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_dates(
    values: Sequence[Any] | pa.Array,
    order: str = DEFAULT_DATE_ORDER,
    notes: DateNotes | None = None,
) -> tuple[pa.Array, list[int]]:
    """Parse a column of dates.

    Args:
        values: strings, numbers, datetimes or None (a list or an Arrow array).
        order: how to read numeric dates with the year last (see :func:`parse_date`).
        notes: where to count dates read ambiguously or in another order, and to say why
            a value could not be read when that is more than an unrecognised format.

    Returns:
        ``(timestamps, bad)``: a ``timestamp[us, tz=UTC]`` array (null where missing or
        unreadable) and the indices of the values that were given but could not be read.
    """
    if order not in DATE_ORDERS:
        raise ValueError(f"date order must be one of {', '.join(DATE_ORDERS)}, got {order!r}")
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        if pa.types.is_timestamp(values.type):
            return values.cast(TIMESTAMP), []
        values = values.to_pylist()
    n = len(values)
    if n == 0:
        return pa.array([], TIMESTAMP), []
    if values.count(None) == n:  # no dates at all (a common batch): nothing to parse
        return pa.nulls(n, TIMESTAMP), []
    strings = pa.array([v.strip() if isinstance(v, str) else None for v in values], pa.string())
    result = pa.nulls(n, TIMESTAMP)
    done = pc.is_null(strings)
    for pattern, naive in ((_ISO_ZONED, False), (_ISO_NAIVE, True)):
        mask = pc.fill_null(pc.match_substring_regex(strings, pattern), False)
        if not pc.any(mask).as_py():
            continue
        chosen = pc.if_else(mask, strings, pa.scalar(None, pa.string()))
        try:
            cast = chosen.cast(pa.timestamp("us") if naive else TIMESTAMP)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue  # some match the shape but not the calendar (month 13): one by one below
        if naive:
            cast = cast.cast(TIMESTAMP)  # a naive wall time read as UTC
        result = pc.if_else(mask, cast, result)
        done = pc.or_(done, mask)
    # everything the casts did not settle (non-strings included), one by one
    need = [
        i
        for i, (v, d) in enumerate(zip(values, done.to_pylist(), strict=True))
        if not d or not isinstance(v, str)
    ]
    bad: list[int] = []
    if need:
        fixed: dict[int, datetime | None] = {}
        for i in need:
            try:
                fixed[i] = parse_date(values[i], order, notes)
            except (ValueError, OverflowError) as exc:
                bad.append(i)
                fixed[i] = None
                if notes is not None and isinstance(exc, AmbiguousDate):
                    notes.errors[i] = exc.reason
        patch = pa.array([fixed.get(i) for i in range(n)], TIMESTAMP)
        patch_mask = pa.array([i in fixed for i in range(n)], pa.bool_())
        result = pc.if_else(patch_mask, patch, result)
    return result, bad
