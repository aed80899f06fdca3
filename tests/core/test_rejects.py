"""The run's rejects past the point where they spill to disk (etl.rejects)."""

from __future__ import annotations

from etl.accounting import first_inputs
from etl.rejects import SPILL_ROWS, Rejects


def _reject(i: int, reason: str) -> dict:
    return {
        "input": f"in/{i}.jsonl",
        "location": f"line {i}",
        "reason": reason,
        "detail": "",
        "stage": "source",
        "plugin": "jsonl",
        "article_id": None,
    }


def test_the_first_of_each_reason_are_found_across_spilled_batches():
    """The summary names the first three places of each reason: also for a reason that
    comes only after tens of thousands of others, on disk, and in the order they came."""
    n = 3 * SPILL_ROWS + 7
    rows = [_reject(i, "not json") for i in range(n)]
    rows[5] = _reject(5, "no text")
    rows[n - 2] = _reject(n - 2, "too big")
    rows[n - 1] = _reject(n - 1, "no text")
    rejects = Rejects()
    for start in range(0, n, 1000):  # as a run adds them, a batch at a time
        rejects.extend(rows[start : start + 1000])
    assert len(rejects) == n and repr(rejects).endswith("files on disk)")

    found = rejects.first_of_each_reason(3)
    expected = [r for r in rows if r["reason"] != "not json"] + [
        r for r in rows if r["reason"] == "not json"
    ][:3]
    expected.sort(key=lambda r: int(r["location"].split()[1]))
    assert [(r["reason"], r["location"]) for r in found] == [
        (r["reason"], r["location"]) for r in expected
    ]
    assert first_inputs(found) == first_inputs(list(rejects))
    assert first_inputs(found)["no text"] == [
        "in/5.jsonl (line 5)",
        f"in/{n - 1}.jsonl (line {n - 1})",
    ]
