"""Replacing committed rows: ``[sink] mode = "merge"`` and ``etl run --reprocess``.

The runner asks a sink that implements :class:`~etl.plugin.ReplacesRows` to stage the
removal of the rows a run replaces, and commits it with the run's own rows (see
docs/reliability.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from etl.errors import ConfigError
from etl.plugin import ReplacesRows

if TYPE_CHECKING:
    from etl.run.job import DriverJob
    from etl.run.plan import Plan
    from etl.store import Store


def check_replacing(plan: Plan, mode: str) -> None:
    """Merge mode and ``--reprocess`` need a sink that can replace committed rows."""
    sink = plan.sink
    replacing = mode == "merge" or (plan.run.reprocess and mode != "overwrite")
    if replacing and not isinstance(sink, ReplacesRows):
        what = 'mode = "merge"' if mode == "merge" else "etl run --reprocess"
        raise ConfigError(
            f"plugin '{sink.name}' ({sink.section}): {what} needs a sink that can replace "
            f"the rows it committed, and '{sink.name}' cannot (it does not implement "
            "ReplacesRows)",
            hint='use mode = "append", or "overwrite" to replace the whole dataset',
        )


def ids_of_inputs(plan: Plan, store: Store, keys: Any) -> pa.Table:
    """The committed ids (and their inputs) that came from the inputs whose key digests
    are ``keys`` (what ``--reprocess`` replaces)."""
    found = store.index.of_inputs(keys)
    if found is None:
        raise ConfigError(
            f"plugin '{plan.sink.name}' ({plan.sink.section}): the dataset {plan.target()} "
            "holds runs from before etl kept the input of each article, so --reprocess "
            "cannot tell which rows to replace",
            hint="run once with --set sink.mode=overwrite (it replaces everything); later "
            "runs can use --reprocess",
        )
    return found


def stage_replacements(plan: Plan, store: Store, job: DriverJob, account: Any) -> pa.Array | None:
    """Have the sink stage the removal of the committed rows this run replaces; their ids.

    ``--reprocess``: the rows of the inputs read again, except those of an input whose
    reading failed part way that were not written again (a failure must not hide them).
    Merge mode: the rows whose key a row of this run has.
    """
    sink = plan.sink
    removed: list[pa.Array] = []
    if plan.run.reprocess and sink.mode() != "overwrite":
        table = account.table
        old = ids_of_inputs(plan, store, table.column("key"))
        failed = table.column("key").filter(pc.invert(table.column("complete")))
        kept = pc.and_(
            pc.is_in(old.column("input"), value_set=failed),
            pc.invert(pc.is_in(old.column("id"), value_set=job.ids())),
        )
        removed.append(sink.stage_replace("id", old.column("id").filter(pc.invert(kept))))
    if job.key is not None:
        removed.append(sink.stage_replace(job.key, job.keys()))
    removed = [r.combine_chunks() if isinstance(r, pa.ChunkedArray) else r for r in removed]
    return pa.concat_arrays([r.cast(pa.string()) for r in removed]) if removed else None
