"""How chunks of work units travel to workers: packed as columns, unpacked exactly."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

from etl.executors.api import chunk_bounds, chunks, pack_units, unpack_units
from etl.plugin import InputRef, WorkUnit


def _units() -> list[WorkUnit]:
    return [
        WorkUnit(InputRef("/data/a.txt", 10, 1.5)),
        WorkUnit(InputRef("/data/b.txt", None, None, "etag-1"), {"offset": 3}, 1),
        WorkUnit(InputRef("/data/c.txt", problem=("unreadable", "no access")), ("x", 2), 2),
    ]


def test_plain_units_travel_as_columns_and_come_back_equal():
    units = _units()
    data = pack_units(units, 1, 3)
    kind, start, _ = pickle.loads(data)
    assert (kind, start) == ("columns", 1)  # no pickled dataclass per unit
    assert unpack_units(data) == [(1, units[1]), (2, units[2])]


@dataclass(frozen=True)
class _Slice(WorkUnit):
    """A source's own unit class: it must travel as it is, not be rebuilt as a WorkUnit."""

    rows: int = 0


def test_units_of_other_classes_travel_as_objects():
    units = [*_units(), _Slice(InputRef("table"), None, 0, rows=5)]
    data = pack_units(units, 0, 4)
    assert pickle.loads(data)[0] == "objects"
    back = unpack_units(data)
    assert back == list(enumerate(units)) and type(back[3][1]) is _Slice


def test_chunks_cover_every_unit_once_in_order():
    units = [WorkUnit(InputRef(f"/data/{i}.txt", i, float(i))) for i in range(2500)]
    bounds = chunk_bounds(len(units), 2)
    got = [item for _, data in chunks(units, bounds) for item in unpack_units(data)]
    assert got == list(enumerate(units))


def test_automatic_chunks_of_small_inputs_are_longer():
    """Each chunk costs messages, a question, a staged file and its adoption: small files
    (news articles of a few KB) go 4,000 to a chunk, while big inputs, or inputs of unknown
    size, keep chunks of at most 1,000, and no chunk of more than 1,000 holds over 16 MB."""
    from etl.executors.api import AUTO_CHUNK_BYTES

    n = 100_000
    small = chunk_bounds(n, 2, sizes=[4_000] * n)
    assert max(stop - start for start, stop in small) == 4_000
    assert small[0] == (0, 4_000) and small[-1][1] == n
    assert all(b[1] == a[0] for a, b in zip(small[1:], small, strict=False))
    assert len(small) < len(chunk_bounds(n, 2)) / 2  # 1,000 at most without sizes
    for sizes in ([50_000] * n, [None] * n):
        assert max(stop - start for start, stop in chunk_bounds(n, 2, sizes=sizes)) == 1_000
    # 10 KB inputs: a chunk stops at 16 MB (1,677 of them)
    mixed = chunk_bounds(n, 2, sizes=[10_000] * n)
    assert max(stop - start for start, stop in mixed) == AUTO_CHUNK_BYTES // 10_000
    # a configured size is kept, and the driver's lead chunks are the smallest
    assert chunk_bounds(10, 2, 3, sizes=[1] * 10) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert chunk_bounds(n, 2, lead=2, sizes=[4_000] * n)[:2] == [(0, 782), (782, 1564)]
