"""A run that rejected too much fails instead of committing (docs/reliability.md, "Over
many runs").

A misspelt ``fields`` key once made every record a reject, and the run committed an empty
dataset with exit 0: from cron, nobody hears of it. Now a run that rejected every record it
read fails (exit 1, nothing committed), and ``[run] max_reject_ratio`` sets a tighter limit.

What counts: *records* are what the inputs gave, the articles the sources read plus the
records they rejected (per input ``records = written + duplicates + dropped + rejected``,
docs/reliability.md 4); *rejected* are the source's and the transforms' rejects. Articles
skipped as duplicates or dropped by a filter are not rejects. A run that read no record (no
input changed) does not fail.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from etl.accounting import printable
from etl.errors import RunError

if TYPE_CHECKING:
    from etl.run.plan import Plan

#: reasons named in the message, at most, and how much of an example's detail is shown
_TOP_REASONS = 3
_DETAIL_CHARS = 160


def check_rejects(plan: Plan, summary: dict[str, Any], rejects: list[dict[str, Any]]) -> None:
    """Raise a RunError if the run rejected every record it read, or a larger share than
    ``[run] max_reject_ratio``; the caller then rolls the run back.

    Args:
        plan: the run's plan (its pipeline holds the limit).
        summary: the run's summary (``written``, ``duplicates``, ``dropped``, ``rejected``).
        rejects: the run's reject rows, for the reasons and an example of each.
    """
    rejected = summary["rejected"]
    records = summary["written"] + summary["duplicates"] + summary["dropped"] + rejected
    if not rejected or not records:
        return
    limit = plan.pipeline.max_reject_ratio
    if limit is None and rejected < records:
        return
    if limit is not None and rejected / records <= limit:
        return
    if rejected == records:
        what = f"the run rejected every record it read ({rejected} of {records})"
    else:
        what = (
            f"the run rejected {rejected} of {records} records ({rejected / records:.1%}), "
            f"more than [run] max_reject_ratio = {limit:g} allows"
        )
    inputs = len({r["input"] for r in rejects})
    lines = [f"{what}, from {inputs} input{'s' * (inputs != 1)}; nothing was committed"]
    lines += _reasons(rejects)
    raise RunError(
        "\n".join(lines),
        hint="fix what the reasons above point at (`no text` for every record is often a "
        "`fields` key that matches nothing) and run again; to commit such a run anyway, "
        f"with its rejects kept in {plan.target()}/_etl/rejects/ for a look, set "
        "[run] max_reject_ratio = 1 (or --set run.max_reject_ratio=1)",
    )


def _reasons(rejects: list[dict[str, Any]]) -> list[str]:
    """The commonest reasons, with their count and the first reject of each as an example."""
    counts = Counter(r["reason"] for r in rejects)
    first: dict[str, dict[str, Any]] = {}
    for reject in rejects:
        first.setdefault(reject["reason"], reject)
    lines = []
    for reason, n in counts.most_common(_TOP_REASONS):
        example = first[reason]
        where = (example["input"] or "(no input)") + (
            f" {example['location']}" if example["location"] else ""
        )
        detail = example["detail"] or ""
        if len(detail) > _DETAIL_CHARS:
            detail = detail[:_DETAIL_CHARS] + "…"
        line = f"  {n} {reason}, e.g. {where}" + (f": {detail}" if detail else "")
        lines.append(printable(line))  # an input's name may not be UTF-8
    if len(counts) > _TOP_REASONS:
        others = sum(n for _, n in counts.most_common()[_TOP_REASONS:])
        lines.append(f"  {others} more, for {len(counts) - _TOP_REASONS} other reasons")
    return lines
