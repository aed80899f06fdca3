"""The ``delta`` sink: the same pipeline writes a Delta Lake table (via ``deltalake``/delta-rs).

Layout of the table folder::

    _delta_log/                        the Delta log: one JSON commit per run
    language=en/part-....parquet       data files (hive folders when partitioned)
    _etl/rejects/<run>.rejects.pq      each run's rejects (Parquet, same schema as the parquet sink)
    _etl/runs/<run>.json               each run's manifest, with the Delta version it committed
    _etl/staging/<run>/                a run in flight (Delta readers and VACUUM ignore ``_`` folders)

A run streams its articles into one staged Parquet file, then makes one Delta commit from it:
the commit is the run's atomic point (a crash before it leaves the table as it was). The
commit carries the run id and counts as custom metadata (``DeltaTable.history()`` shows
``etl.run_id``, ``etl.written``, ...). In append mode, ids already in the table are skipped
(the ``id`` column alone is read once, when the run opens). A run that adds columns merges
them into the table schema; an unsafe type change is refused before anything is written,
as with the parquet sink (see etl.evolution).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from etl import Option, Sink, hookimpl
from etl.dataset import REJECTS_SUFFIX, Dataset, write_json_atomic
from etl.errors import ConfigError, MissingDependency, RunError
from etl.plugin import WriteResult
from etl.schema import first_seen

__version__ = "0.1.0"
INSTALL = "./plugins/etl-delta"


def _deltalake():
    try:
        import deltalake
    except ImportError as exc:
        raise MissingDependency("delta", "deltalake", INSTALL) from exc
    return deltalake


class DeltaSink(Sink):
    """A Delta Lake table: one atomic Delta commit per run, with exact dedup by id."""

    name = "delta"
    options = (
        Option("path", "path", required=True, help="the table folder"),
        Option(
            "mode",
            "str",
            "append",
            help="append (skip ids already in the table), overwrite, or error if the table exists",
            choices=("append", "overwrite", "error"),
        ),
        Option("partition_by", "list", [], help="columns to partition the table by"),
        Option(
            "target_file_size", "int", None, help="bytes per data file (default: delta-rs's own)"
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _deltalake()
        for column in self.opts.partition_by:
            if not isinstance(column, str) or not column:
                raise self.error(f"option 'partition_by': {column!r} is not a column name")
        self.root = Path(self.opts.path)
        self.dataset = Dataset(self.root)

    def open(self, run, schema: pa.Schema) -> None:
        from etl.evolution import plan_schema

        dl = _deltalake()
        missing = [c for c in self.opts.partition_by if c not in schema.names]
        if missing:
            raise self.error(
                f"option 'partition_by': no column '{missing[0]}' in the articles",
                hint=f"columns: {', '.join(schema.names)}",
            )
        if self.root.exists() and not self.root.is_dir():
            raise self.error(f"{self.root} exists and is not a folder")
        self.run = run
        self.schema = schema
        self.root.mkdir(parents=True, exist_ok=True)
        self.dataset.acquire_lock(run.run_id, wait=float(run.extra.get("wait", 0.0)))
        try:
            shutil.rmtree(self.dataset.staging_root, ignore_errors=True)  # runs that died
            self.table = (
                dl.DeltaTable(str(self.root))
                if dl.DeltaTable.is_deltatable(str(self.root))
                else None
            )
            if self.table is not None and self.opts.mode == "error":
                raise ConfigError(
                    f"plugin 'delta' ({self.section}): the table {self.root} already exists "
                    "and mode is 'error'",
                    hint='use mode = "append" or "overwrite", or another path',
                )
            current = pa.schema(self.table.schema().to_arrow()) if self.table is not None else None
            self.schema_plan = plan_schema(
                self.root,
                schema,
                mode=self.opts.mode,
                plugin="delta",
                section=self.section,
                current=current,
            )
            if self.table is not None and self.opts.mode == "append":
                parts = self.table.metadata().partition_columns
                if list(parts) != list(self.opts.partition_by):
                    raise ConfigError(
                        f"plugin 'delta' ({self.section}): the table {self.root} is partitioned "
                        f"by {list(parts)}, the pipeline says {list(self.opts.partition_by)}",
                        hint='partition_by must match the table; use mode = "overwrite" to '
                        "change it",
                    )
            self.seen = self._existing_ids() if self.opts.mode == "append" else set()
            self.staging = self.dataset.staging(run.run_id)
            self.staging.mkdir(parents=True, exist_ok=True)
        except BaseException:
            self.dataset.release_lock()
            raise
        self.staged = self.staging / "articles.staged"
        self.writer = pq.ParquetWriter(self.staged, schema, compression="zstd")
        self.rows = 0
        self.adopted: list[tuple[Path, Any]] = []

    def _existing_ids(self) -> set[str]:
        if self.table is None:
            return set()
        # to_pyarrow_table, not to_pyarrow_dataset: the latter aborts the interpreter at exit
        # (deltalake 1.6, "terminate called without an active exception")
        ids = self.table.to_pyarrow_table(columns=["id"])
        return set(ids.column("id").to_pylist())

    def _dedup(self, ids: pa.Array) -> list[bool] | None:
        """True for new ids (not in the table, not earlier in the run); None: all are new."""
        return first_seen(ids.to_pylist(), self.seen)

    def write(self, batch: pa.RecordBatch) -> WriteResult:
        keep = self._dedup(batch.column("id"))
        kept = None if keep is None else pa.array(keep, pa.bool_())
        if kept is not None:
            batch = batch.filter(kept)
        if batch.num_rows:
            self.writer.write_batch(batch)
            self.rows += batch.num_rows
        duplicates = (len(keep) - batch.num_rows) if kept is not None else 0
        return WriteResult(written=batch.num_rows, duplicates=duplicates, kept=kept)

    def commit(self, rejects: pa.Table, manifest: dict[str, Any]) -> None:
        dl = _deltalake()
        try:
            self.writer.close()
            summary = manifest.get("summary", {})
            metadata = {
                "etl.run_id": self.run.run_id,
                "etl.written": str(summary.get("written", self.rows)),
                "etl.duplicates": str(summary.get("duplicates", 0)),
                "etl.rejected": str(summary.get("rejected", 0)),
                "etl.read": str(summary.get("read", 0)),
                "etl.schema_change": self.schema_plan.change or "",
            }
            reader = pa.RecordBatchReader.from_batches(self.schema, self._staged_batches())
            mode = "overwrite" if self.opts.mode == "overwrite" else "append"
            schema_mode = None
            if self.table is not None:
                schema_mode = "overwrite" if mode == "overwrite" else "merge"
            try:
                dl.write_deltalake(
                    str(self.root),
                    reader,
                    mode=mode,
                    partition_by=self.opts.partition_by or None,
                    schema_mode=schema_mode,
                    target_file_size=self.opts.target_file_size,
                    commit_properties=dl.CommitProperties(custom_metadata=metadata),
                )
            except Exception as exc:
                raise RunError(
                    f"plugin 'delta' ({self.section}): the Delta commit to {self.root} failed: "
                    f"{type(exc).__name__}: {exc}; nothing of this run was committed"
                ) from exc
            # the run is committed; its rejects and manifest go beside the table
            version = dl.DeltaTable(str(self.root)).version()
            if rejects.num_rows:
                self.dataset.rejects_dir.mkdir(parents=True, exist_ok=True)
                final = self.dataset.rejects_dir / f"{self.run.run_id}{REJECTS_SUFFIX}"
                tmp = self.staging / "rejects.staged"
                pq.write_table(rejects, tmp, compression="zstd")
                os.replace(tmp, final)
            # the schema history beside the table (the Delta log holds the schema itself)
            from etl.evolution import schema_document, schema_path

            write_json_atomic(
                schema_path(self.root), schema_document(self.schema_plan, self.run.run_id)
            )
            self.dataset.runs_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(
                self.dataset.runs_dir / f"{self.run.run_id}.json",
                {**manifest, "dataset": str(self.root), "delta_version": version},
            )
            shutil.rmtree(self.staging, ignore_errors=True)
        finally:
            self.dataset.release_lock()

    def _staged_batches(self):
        """The run's articles: this process's staged file, then the workers' in unit order."""
        parts = [(self.staged, None), *self.adopted]
        for path, mask in parts:
            source = pq.ParquetFile(path)
            offset = 0
            try:
                for batch in source.iter_batches(batch_size=65536):
                    if mask is not None:
                        part = mask[offset : offset + batch.num_rows]
                        offset += batch.num_rows
                        batch = batch.filter(pa.array(part))
                    if batch.num_rows:
                        yield batch.cast(self.schema) if batch.schema != self.schema else batch
            finally:
                source.close()

    # files staged by workers (the processes and dask executors)

    def worker_writer(self, run, schema: pa.Schema, worker: str):
        """A writer for one worker task: stages Parquet files that :meth:`adopt` takes in."""
        from types import SimpleNamespace

        from etl.builtin.parquet import WorkerWriter

        staging = SimpleNamespace(
            opts=SimpleNamespace(
                compression="zstd",
                compression_level=None,
                row_group_size=65536,
                max_rows_per_file=1 << 62,
                partition_by=[],  # the Delta commit partitions; staged files keep every column
            ),
            dataset=self.dataset,
        )
        return WorkerWriter(staging, run, schema, worker)

    def adopt(self, files) -> dict[int, int]:
        """Take workers' staged files into this run's commit, dropping ids seen before.

        Called in the order of the work units, so the first occurrence of an id wins as in
        one process. Returns the rows dropped as duplicates per unit index.
        """
        import numpy as np

        dropped: dict[int, int] = {}
        for item in files:
            path = self.root / item.staged
            new = self._dedup(pq.read_table(path, columns=["id"]).column("id"))
            if new is None:
                self.adopted.append((path, None))
                continue
            keep = np.asarray(new)
            units = np.repeat(
                np.asarray(item.input_values, dtype=np.int64),
                np.asarray(item.input_lengths, dtype=np.int64),
            )
            counts = np.bincount(units[~keep])
            for index in np.flatnonzero(counts):
                dropped[int(index)] = dropped.get(int(index), 0) + int(counts[index])
            if keep.any():
                self.adopted.append((path, keep))
        return dropped

    def abort(self) -> None:
        try:
            with contextlib.suppress(Exception):
                self.writer.close()
            shutil.rmtree(
                getattr(self, "staging", self.dataset.staging_root / "-"), ignore_errors=True
            )
        finally:
            self.dataset.release_lock()


def commits(path: str | Path) -> list[dict[str, Any]]:
    """The table's Delta commits that etl made, oldest first, with their custom metadata."""
    dl = _deltalake()
    history = dl.DeltaTable(str(path)).history()
    return [h for h in reversed(history) if "etl.run_id" in h]


def manifest_json(path: str | Path, run_id: str) -> dict[str, Any]:
    return json.loads((Path(path) / "_etl" / "runs" / f"{run_id}.json").read_text())


@hookimpl
def etl_register_plugins(register):
    register(DeltaSink)
