"""A dataset's past, as ``etl runs`` and ``etl rejects`` show it: its committed runs (from
the run manifests) and its rejects (from the rejects tables), read as one committed state.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.accounting import changed, new_duplicates
from etl.errors import ConfigError
from etl.store import Store

if TYPE_CHECKING:
    import pyarrow as pa

#: the counts a run's line shows, in order
RUN_COUNTS = ("inputs", "read", "written", "duplicates", "dropped", "rejected", "replaced")


def _store(path: str | Path) -> Store:
    store = Store(path)
    if not store.root.is_dir():
        raise ConfigError(f"no dataset at {path}", hint="give the folder a [sink] path points to")
    if not store.exists():
        raise ConfigError(f"{path} holds no etl dataset (no data files, no _etl/runs)")
    return store


def run_line(manifest: dict[str, Any]) -> dict[str, Any]:
    """One committed run as ``etl runs`` shows it (from its manifest)."""
    summary = manifest.get("summary", {})
    started, finished = manifest.get("started_at"), manifest.get("finished_at")
    duration = summary.get("timings", {}).get("total")
    if duration is None and started and finished:
        try:
            duration = (
                datetime.fromisoformat(finished) - datetime.fromisoformat(started)
            ).total_seconds()
        except ValueError:
            duration = None
    return {
        "run_id": manifest.get("run_id"),
        "started_at": started,
        "finished_at": finished,
        "duration_s": duration,
        **{k: summary.get(k, 0) for k in RUN_COUNTS},
        # the same counts as the run's summary: duplicates of the corpus, re-read articles
        "duplicates": new_duplicates(summary),
        "reread": summary.get("reread", 0),
        "changed": changed(summary),
        "pipeline_file": manifest.get("pipeline_file"),
        "user": manifest.get("user"),
        "host": manifest.get("host"),
        "pid": manifest.get("pid"),
        "mode": manifest.get("sink_mode"),
        "etl_version": manifest.get("etl_version"),
    }


def list_runs(path: str | Path) -> list[dict[str, Any]]:
    """Every committed run of the dataset at ``path``, oldest first (:func:`run_line`)."""
    from etl.describe import read_committed

    store = _store(path)
    return read_committed(path, lambda: [run_line(m) for m in store.manifests()])


def find_run(runs: list[dict[str, Any]], wanted: str) -> str:
    """The run id that ``wanted`` names: a whole id, a unique prefix or ``last``."""
    ids = [r["run_id"] for r in runs]
    if wanted == "last" and ids:
        return ids[-1]
    if wanted in ids:
        return wanted
    matches = [i for i in ids if i and i.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConfigError(
            f"--run {wanted}: names {len(matches)} runs ({', '.join(matches[:3])}...)",
            hint="give more of the run id",
        )
    raise ConfigError(
        f"--run {wanted}: no committed run has that id",
        hint="`etl runs DATASET` lists the runs; `--run last` is the latest",
    )


def read_rejects(
    path: str | Path, *, run: str | None = None, reason: str | None = None
) -> pa.Table:
    """The dataset's rejects (oldest run first), of one run and one reason if given.

    Args:
        path: the dataset (the folder that holds ``_etl/``).
        run: a run id, a unique prefix of one, or ``last``.
        reason: keep the rejects with this reason (exactly, or as a prefix of it:
            ``transform error`` matches ``transform error: ValueError``).
    """
    from etl.describe import read_committed

    store = _store(path)
    wanted = find_run([run_line(m) for m in store.manifests()], run) if run else None
    return read_committed(path, lambda: _read(store, wanted, reason))


def _read(store: Store, run: str | None, reason: str | None) -> pa.Table:
    import pyarrow as pa
    import pyarrow.compute as pc

    from etl.context import REJECTS_SCHEMA
    from etl.store.fsio import read_parquet

    files = store.rejects_files()
    if run is not None:
        files = [f for f in files if f.name.split(".")[0] == run]
    tables = [read_parquet(f) for f in files]
    table = pa.concat_tables(tables, promote_options="default") if tables else None
    if table is None or not table.num_rows:
        return REJECTS_SCHEMA.empty_table()
    if reason is not None:
        column = table.column("reason")
        table = table.filter(pc.or_(pc.equal(column, reason), pc.starts_with(column, f"{reason}:")))
    return table


def rejects_by_reason(table: pa.Table, *, first: int = 3) -> list[dict[str, Any]]:
    """Rejects counted by reason, most frequent first, each with its ``first`` inputs."""
    out: dict[str, dict[str, Any]] = {}
    for reason, where in zip(
        table.column("reason").to_pylist(), table.column("input").to_pylist(), strict=True
    ):
        entry = out.setdefault(reason, {"reason": reason, "count": 0, "inputs": []})
        entry["count"] += 1
        if len(entry["inputs"]) < first and where not in entry["inputs"]:
            entry["inputs"].append(where)
    return sorted(out.values(), key=lambda e: (-e["count"], e["reason"]))
