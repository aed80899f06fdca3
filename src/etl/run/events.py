"""The run's events, one per stage and plugin, logged at info level (``-v``, JSON logs)."""

from __future__ import annotations

from typing import Any

import numpy as np


def log_stages(plan: Any, summary: dict[str, Any], logger: Any) -> None:
    """An event per source, transform and sink: what it did and the seconds it took."""
    seconds = summary.get("plugin_seconds") or {}
    per_input = summary.get("per_input")
    n = len(plan.sources)
    read = np.zeros(n, int)
    inputs = np.zeros(n, int)
    if per_input is not None and len(plan.units):
        index = np.fromiter((u.source_index for u in plan.units), int, count=len(plan.units))
        counts = per_input.table.column("read").to_numpy(zero_copy_only=False)
        read = np.bincount(index, weights=counts, minlength=n).astype(int)
        inputs = np.bincount(index, minlength=n)
    for i, source in enumerate(plan.sources):
        logger.info(
            "source done",
            stage="stream",
            plugin=source.name,
            section=source.section,
            inputs=int(inputs[i]),
            articles=int(read[i]),
            seconds=round(seconds.get(source.section, 0.0), 4),
        )
    flows = summary.get("transforms", {})
    for transform in plan.transforms:
        flow = flows.get(transform.section, {"in": 0, "out": 0})
        logger.info(
            "transform done",
            stage="stream",
            plugin=transform.name,
            section=transform.section,
            articles_in=flow["in"],
            articles_out=flow["out"],
            seconds=round(seconds.get(transform.section, 0.0), 4),
        )
    logger.info(
        "sink done",
        stage="stream",
        plugin=plan.sink.name,
        section=plan.sink.section,
        written=summary["written"],
        seconds=round(seconds.get(plan.sink.section, 0.0), 4),
    )
