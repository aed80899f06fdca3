"""What `etl inspect` shows of a dataset (named `describe`: a module `inspect` would shadow the standard library's in tools that put this folder on the path)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from etl.errors import ConfigError, RunError
from etl.store import Store as Dataset

T = TypeVar("T")


def committed_files(root: Path):
    """(data files, schema or None): the files a reader should read, and their unified schema.

    For a Delta table (a ``_delta_log`` folder, written by the ``delta`` sink) these are the
    files its current version lists and the table's schema; else every ``*.parquet`` outside
    ``_etl/`` and the schema of ``_etl/schema.json``.
    """
    from etl.evolution import unified_schema

    if (root / "_delta_log").is_dir():
        try:
            import pyarrow as pa
            from deltalake import DeltaTable
        except ImportError as exc:
            from etl.errors import MissingDependency

            raise MissingDependency("delta", "deltalake", "./plugins/etl-delta") from exc
        from etl.store.fs import ObjectPath

        uri = str(root)
        remote = isinstance(root, ObjectPath)  # a dataset in an object store (s3://...)
        # delta-rs reads the environment's credentials as fsspec does, but refuses a plain
        # HTTP endpoint (a local MinIO or moto) unless told
        http = os.environ.get("AWS_ENDPOINT_URL", "").startswith("http://")
        table = DeltaTable(uri, storage_options={"AWS_ALLOW_HTTP": "true"} if http else None)
        base = uri.rstrip("/") + "/"
        files = [root / u.removeprefix(base) if remote else Path(u) for u in table.file_uris()]
        return files, pa.schema(table.schema().to_arrow())
    files = Dataset(root).data_files()
    return files, (unified_schema(root) if files else None)


def open_dataset(path: str | Path):
    """The dataset's committed rows as one ``pyarrow.dataset``, in its unified schema.

    Every data file (hive partition folders included) is read with the schema of
    ``_etl/schema.json`` (see :mod:`etl.evolution`), so a column that a later run added reads
    as null in the older files. A Delta table is read at its current version. None when the
    dataset has no data files.
    """
    import pyarrow.dataset as pads

    from etl.store.fs import arrow

    ds = Dataset(path)
    files, schema = committed_files(ds.root)
    if not files:
        return None
    base, filesystem = arrow(ds.root)  # a local folder, or the dataset's key in its store
    return pads.dataset(
        [str(arrow(f)[0]) for f in files],
        schema=schema,
        format="parquet",
        partitioning="hive",
        partition_base_dir=str(base),
        filesystem=filesystem,
    )


def read_committed(path: str | Path, read: Callable[[], T], *, attempts: int = 100) -> T:
    """``read()`` of a dataset as one committed state, while runs may be committing to it.

    A commit renames and deletes files one by one (an overwrite deletes them all): a reader
    listing the folder mid-commit would see part of it, or miss a file it listed. So ``read``
    runs only while no commit is being applied, and again when a commit ended during it or a
    file it listed vanished (for about ten seconds; then a clear error).
    """
    import pyarrow as pa

    ds = Dataset(path)
    for attempt in range(attempts):
        before = ds.version()
        if before is not None:
            try:
                result = read()
            except (FileNotFoundError, pa.ArrowInvalid, OSError) as exc:
                if not _vanished(exc):
                    raise
            else:
                if ds.version() == before:
                    return result
        time.sleep(min(0.01 * (attempt + 1), 0.2))
    raise RunError(
        f"the dataset {path} kept changing while it was read",
        hint="read it again when the runs writing it are done",
    )


def _vanished(exc: BaseException) -> bool:
    """A file listed a moment ago is gone (a commit replaced or deleted it)."""
    if isinstance(exc, FileNotFoundError):
        return True
    text = str(exc)
    return "No such file" in text or "does not exist" in text


def inspect_dataset(path: str | Path, *, sample: int = 3) -> dict[str, Any]:
    """What ``etl inspect`` shows: rows, files, schema and its history, runs, a sample; read
    as one committed state (:func:`read_committed`)."""
    return read_committed(path, lambda: _inspect(path, sample))


def _inspect(path: str | Path, sample: int) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from etl.evolution import schema_history
    from etl.store.fs import arrow
    from etl.store.fsio import read_parquet

    ds = Dataset(path)
    if not ds.root.is_dir():
        raise ConfigError(f"no dataset at {path}", hint="give the folder a [sink] path points to")
    files, _ = committed_files(ds.root)
    runs = ds.manifests()
    if not files and not runs:
        raise ConfigError(f"{path} holds no etl dataset (no data files, no _etl/runs)")
    schema: list[dict[str, str]] = []
    rows = 0
    sample_rows: list[dict[str, Any]] = []
    history = schema_history(ds.root)
    if files:
        dataset = open_dataset(ds.root)
        schema = [{"name": f.name, "type": str(f.type)} for f in dataset.schema]
        rows = 0
        for f in files:
            where, filesystem = arrow(f)
            rows += pq.read_metadata(where, filesystem=filesystem).num_rows
        if sample:
            cols = [
                c
                for c in ("id", "title", "publisher", "published_at", "uri", "text")
                if c in dataset.schema.names
            ]
            sample_rows = dataset.head(sample, columns=cols).to_pylist()
    added_by: dict[str, str] = {}
    for entry in history:
        for name in entry.get("added", []):
            added_by.setdefault(name, entry.get("run_id"))
    for field in schema:
        if field["name"] in added_by:
            field["added_in"] = added_by[field["name"]]
    reject_tables = [read_parquet(f, columns=["reason", "input"]) for f in ds.rejects_files()]
    by_reason: list[dict[str, Any]] = []
    if reject_tables:
        import pyarrow as pa

        from etl.history import rejects_by_reason

        by_reason = rejects_by_reason(pa.concat_tables(reject_tables))
    rejects = sum(e["count"] for e in by_reason)
    return {
        "path": str(ds.root),
        "rows": rows,
        "files": len(files),
        "rejects": rejects,
        "rejects_by_reason": by_reason,
        "schema": schema,
        "schema_history": history,
        "runs": [run_line(m) for m in runs],
        "sample": sample_rows,
    }


def run_line(manifest: dict[str, Any]) -> dict[str, Any]:
    """One run in ``etl inspect`` and ``etl report``: the counts every view shows alike."""
    from etl.accounting import changed, new_duplicates

    summary = manifest.get("summary", {})
    return {
        "run_id": manifest.get("run_id"),
        "finished_at": manifest.get("finished_at"),
        "written": summary.get("written", 0),
        "duplicates": new_duplicates(summary),
        "reread": summary.get("reread", 0),
        "rejected": summary.get("rejected", 0),
        "changed": changed(summary),
    }


def describe_change(entry: dict[str, Any]) -> str:
    """One line of schema history, as ``etl inspect`` prints it."""
    what = entry.get("change", "?")
    parts = [f"{entry.get('run_id')}  {what}"]
    if entry.get("added"):
        parts.append("+" + ", +".join(entry["added"]))
    for w in entry.get("widened", []):
        parts.append(f"{w['name']} {w['from']} -> {w['to']}")
    parts.append(f"({entry.get('columns')} columns)")
    return "  ".join(parts)
