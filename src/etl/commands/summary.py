"""The summary ``etl run`` prints: what the run did, where the time went, what it rejected.

Counters that plugins keep (``ctx.count``) are shown in plain words: the builtins' by a
phrase each, a counter named in words as ``n words``, one named ``plugin:detail`` as
``plugin:detail: n``. The executor's own counters (``processes:chunks deduplicated before
writing``: how it did its work, not what happened to the articles) only with ``-v``.
"""

from __future__ import annotations

from typing import Any

import click

#: how the builtin transforms' counters read in the summary: (prefix, phrase for the rest)
_PHRASES: tuple[tuple[str, str], ...] = (
    ("filter dropped: ", "articles did not pass the filter '{}'"),
    ("dedup exact duplicates", "exact duplicates removed by dedup"),
    ("dedup near duplicates", "near duplicates removed by dedup"),
    ("python dropped", "articles dropped by the python function"),
    ("quality dropped", "articles dropped by quality (score below its minimum)"),
    ("normalize mojibake fixed", "articles had mojibake fixed by normalize"),
    ("language undetermined", "articles got no language (left null)"),
)


def plain_counter(key: str, n: int, executor: str = "") -> str | None:
    """``key: n`` in words, or None for the executor's internal counters."""
    if executor and key.startswith(f"{executor}:"):
        return None
    for prefix, phrase in _PHRASES:
        if key.startswith(prefix):
            return f"{n:,} {phrase.format(key[len(prefix) :])}"
    if ":" in key:
        return f"{key}: {n:,}"
    return f"{n:,} {key}"


def _rate(n: float, seconds: float, unit: str) -> str:
    if seconds <= 0 or not n:
        return ""
    rate = n / seconds
    return f"{rate:,.0f} {unit}/s" if rate >= 10 else f"{rate:.2g} {unit}/s"


def _time(seconds: float) -> str:
    return (
        f"{seconds:.2f} s" if seconds < 100 else f"{int(seconds // 60)} min {seconds % 60:02.0f} s"
    )


def time_lines(s: dict[str, Any], plan: Any) -> list[str]:
    """Where the time went: per source, transform and sink, with articles/s and MB/s."""
    import numpy as np

    seconds: dict[str, float] = s.get("plugin_seconds") or {}
    total = float(s["timings"].get("total", 0))
    per_input = s.get("per_input")
    n_sources = len(plan.sources)
    read = np.zeros(n_sources)
    size = np.zeros(n_sources)
    inputs = np.zeros(n_sources, int)
    if per_input is not None and len(plan.units):
        index = np.fromiter((u.source_index for u in plan.units), int, count=len(plan.units))
        counts = per_input.table.column("read").to_numpy(zero_copy_only=False)
        sizes = np.fromiter((u.input.size or 0 for u in plan.units), float, len(plan.units))
        read = np.bincount(index, weights=counts, minlength=n_sources)
        size = np.bincount(index, weights=sizes, minlength=n_sources)
        inputs = np.bincount(index, minlength=n_sources)
    rows: list[tuple[str, str, str, float, str, str]] = []
    for i, source in enumerate(plan.sources):
        t = seconds.get(source.section, 0.0)
        what = f"{int(read[i]):,} articles from {int(inputs[i]):,} inputs"
        mb = size[i] / 1e6
        rate = ", ".join(x for x in (_rate(read[i], t, "articles"), _rate(mb, t, "MB")) if x)
        rows.append(("source", source.name, source.section, t, what, rate))
    flows = s.get("transforms", {})
    for transform in plan.transforms:
        t = seconds.get(transform.section, 0.0)
        flow = flows.get(transform.section, {"in": 0, "out": 0})
        what = f"{flow['in']:,} in, {flow['out']:,} out"
        rows.append(
            (
                "transform",
                transform.name,
                transform.section,
                t,
                what,
                _rate(flow["in"], t, "articles"),
            )
        )
    sink = plan.sink
    t = seconds.get(sink.section, 0.0)
    rows.append(
        (
            "sink",
            sink.name,
            sink.section,
            t,
            f"{s['written']:,} written",
            _rate(s["written"], t, "articles"),
        )
    )
    commit = float(s["timings"].get("commit", 0))
    other = max(0.0, total - commit - sum(r[3] for r in rows))
    many = plan.executor.name != "local"
    lines = [
        f"  time      {_time(total)} in all"
        + (f"; plugin times summed over the {plan.executor.name} workers" if many else "")
    ]
    for kind, name, _section, t, what, rate in rows:
        label = f"{kind} {name}"
        lines.append(f"    {label:<20} {_time(t):>9}  {what}" + (f"  ({rate})" if rate else ""))
    lines.append(f"    {'commit':<20} {_time(commit):>9}")
    if not many:
        lines.append(
            f"    {'other':<20} {_time(other):>9}  planning, opening the dataset, batching"
        )
    return lines


def reject_lines(s: dict[str, Any], plan: Any) -> list[str]:
    """Rejects by reason, each with the first inputs it names."""
    reasons = s.get("rejects_by_reason") or {}
    if not reasons:
        return []
    first = s.get("rejects_first") or {}
    lines = []
    for n, (reason, count) in enumerate(reasons.items()):
        if n == 8:
            lines.append(f"            ... and {len(reasons) - 8} more reasons")
            break
        places = first.get(reason, [])
        more = f", and {count - len(places):,} more" if count > len(places) else ""
        named = f": {', '.join(places)}{more}" if places else ""
        lines.append(("  rejects   " if n == 0 else "            ") + f"{count:,} {reason}{named}")
    where = plan.sink.location()
    if where:
        lines.append(f"            (`etl rejects {plan.pipeline.redact(where)}` lists them all)")
    return lines


def print_summary(s: dict[str, Any], plan: Any, verbose: int = 0) -> None:
    """Print the summary of a committed run (``s``: what :func:`etl.run.run_plan` returned)."""
    reread = s.get("reread", 0)
    checkpoints = s.get("checkpoints")
    lines = [
        f"run {s['run_id']} committed"
        + (f" in {checkpoints} checkpoint{'s' if checkpoints != 1 else ''}" if checkpoints else "")
        + ("" if s.get("changed", True) else " (no change: nothing written, replaced or rejected)"),
        f"  inputs    {s['inputs']:,} read, {s['inputs_skipped']:,} skipped as unchanged"
        + (
            f", {s['inputs_to_retry']:,} to read again next run (a failure that may pass)"
            if s.get("inputs_to_retry")
            else ""
        ),
        f"  articles  {s['read']:,} read, {s['written']:,} written, "
        f"{s['duplicates'] - reread:,} duplicates, {reread:,} read again (already in the "
        f"dataset), {s['dropped']:,} dropped by transforms, {s['rejected']:,} rejected",
    ]
    if s.get("inputs_other_pipeline"):
        lines.append(
            f"  pipeline  changed since {s['inputs_other_pipeline']} of the skipped inputs were "
            "ingested: `etl run --reprocess` reads them again and replaces their rows"
        )
    if s.get("replaced"):
        lines.append(f"  replaced  {s['replaced']:,} rows committed before")
    lines += reject_lines(s, plan)
    counted = []
    internal = []
    for key, value in sorted(s.get("counters", {}).items()):
        words = plain_counter(key, value, plan.executor.name)
        if words is None:
            internal.append(f"{key} {value:,}")
        else:
            counted.append(words)
    for n, words in enumerate(counted):
        lines.append(("  counted   " if n == 0 else "            ") + words)
    if verbose > 0 and internal:
        lines.append(f"  internal  {', '.join(internal)}")
    lines.append(f"  output    {plan.target()}")
    lines += time_lines(s, plan)
    click.echo("\n".join(lines))
