"""The ``delta`` sink: the same pipeline writes a Delta Lake table (via ``deltalake``/delta-rs).

Layout of the table folder::

    _delta_log/                        the Delta log: one JSON commit per run
    language=en/part-....parquet       data files (hive folders when partitioned)
    _etl/                              the framework's store: rejects, manifests (with the
                                       Delta version each run committed), inputs memory, ids
    _etl/staging/<run>/                a run in flight (Delta readers and VACUUM ignore ``_`` folders)

A run streams its articles into one staged Parquet file (workers' files are adopted beside
it), then makes one Delta commit from them. The framework's store records the commit point
first; the Delta commit carries the run id and counts as custom metadata
(``DeltaTable.history()`` shows ``etl.run_id``, ``etl.written``, ...), which makes it
idempotent: after a crash, the next run finds the run id in the log and does not commit
twice. Ids already in the table are dropped by the framework before the sink sees them. A
run that adds columns merges them into the table schema; an unsafe type change is refused
before anything is written (see etl.evolution).

The table may live in an object store (``path = "s3://bucket/news"``): the staged files, the
store and the table are all written there, through fsspec for the framework's part and
delta-rs's own client for the Delta commit. For ``s3://`` the section's ``storage_options``
(fsspec's names: ``endpoint_url``, ``key``, ``secret``, ``region``...) are given to delta-rs
under its names (:func:`delta_storage_options`), with conditional PUTs (``etag``) so that two
Delta writers never overwrite each other's commit; for ``gs://`` and ``az://`` delta-rs reads
its credentials from the environment.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from etl import Option, Sink, hookimpl
from etl.errors import MissingDependency, RunError
from etl.plugin import StagedFile, WorkerFiles
from etl.remote import STORAGE_OPTION
from etl.store import Layout, fsync_file
from etl.store.fs import arrow, fs_of, store_path

__version__ = "0.1.0"
INSTALL = "./plugins/etl-delta"


def _deltalake():
    try:
        import deltalake
    except ImportError as exc:
        raise MissingDependency("delta", "deltalake", INSTALL) from exc
    return deltalake


#: fsspec's s3 option names (s3fs), and delta-rs's for the same setting
_S3_NAMES = {
    "key": "AWS_ACCESS_KEY_ID",
    "secret": "AWS_SECRET_ACCESS_KEY",
    "token": "AWS_SESSION_TOKEN",
    "endpoint_url": "AWS_ENDPOINT_URL",
    "region": "AWS_REGION",
    "region_name": "AWS_REGION",
    "profile": "AWS_PROFILE",
}


def delta_storage_options(url: str, options: Mapping[str, Any]) -> dict[str, str]:
    """delta-rs's storage options for the table at ``url``, from a section's fsspec ones.

    For ``s3://``, s3fs's names (top level or in ``client_kwargs``) become delta-rs's; plain
    HTTP is allowed when the endpoint is ``http://`` (a local MinIO or moto), ``anon`` skips
    signing, and commits use conditional PUTs unless the options say otherwise. Keys
    delta-rs knows by their own names (``AWS_...``, ``aws_...``, ``conditional_put``) pass
    through as they are. Other schemes: the options pass through unchanged.
    """
    flat = {**dict(options.get("client_kwargs") or {}), **options}
    flat.pop("client_kwargs", None)
    flat.pop("use_listings_cache", None)
    if not url.lower().startswith(("s3://", "s3a://")):
        return {k: str(v) for k, v in flat.items()}
    out: dict[str, str] = {}
    for key, value in flat.items():
        if value is None:
            continue
        if key == "anon":
            if value:
                out["AWS_SKIP_SIGNATURE"] = "true"
            continue
        out[_S3_NAMES.get(key, key)] = str(value)
    if out.get("AWS_ENDPOINT_URL", "").startswith("http://"):
        out.setdefault("AWS_ALLOW_HTTP", "true")
    out.setdefault("conditional_put", "etag")
    return out


class DeltaSink(Sink, WorkerFiles):
    """A Delta Lake table: one atomic Delta commit per run, with exact dedup by id."""

    name = "delta"
    object_stores = True
    options = (
        Option("path", "path", required=True, help="the table folder, or its URL (s3://...)"),
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
        STORAGE_OPTION,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _deltalake()
        for column in self.opts.partition_by:
            if not isinstance(column, str) or not column:
                raise self.error(f"option 'partition_by': {column!r} is not a column name")
        self.root = store_path(self.opts.path, self.opts.storage_options)
        self.layout = Layout(self.root)
        #: the table as delta-rs names it, and its options for delta-rs
        self.table_uri = self.opts.path if self.layout.remote else str(self.root)
        self.delta_options = (
            delta_storage_options(self.opts.path, self.opts.storage_options)
            if self.layout.remote
            else None
        )
        self.writer: Any = None

    def location(self) -> str:
        """The table folder: the store lives in its ``_etl/`` beside ``_delta_log/``."""
        return self.opts.path

    def open(self, run, schema: pa.Schema) -> None:
        dl = _deltalake()
        missing = [c for c in self.opts.partition_by if c not in schema.names]
        if missing:
            raise self.error(
                f"option 'partition_by': no column '{missing[0]}' in the articles",
                hint=f"columns: {', '.join(schema.names)}",
            )
        self.run = run
        self.schema = schema
        table = self._table(dl)
        if table is not None and self.opts.mode == "append":
            parts = table.metadata().partition_columns
            if list(parts) != list(self.opts.partition_by):
                raise self.error(
                    f"the table {self.root} is partitioned by {list(parts)}, the pipeline says "
                    f"{list(self.opts.partition_by)}",
                    hint='partition_by must match the table; use mode = "overwrite" to change it',
                )
        self.staging = self.layout.staging(run.run_id)
        self.staging.mkdir(parents=True, exist_ok=True)
        self.staged = self.staging / "articles.staged"
        where, fs = arrow(self.staged)
        self.writer = pq.ParquetWriter(where, schema, compression="zstd", filesystem=fs)
        self.files = [self.staged]

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch)

    def prepare(self, summary) -> dict[str, Any]:
        self.writer.close()
        for path in self.files:
            fsync_file(path)
        metadata = {
            "etl.run_id": self.run.run_id,
            "etl.written": str(summary.get("written", 0)),
            "etl.duplicates": str(summary.get("duplicates", 0)),
            "etl.rejected": str(summary.get("rejected", 0)),
            "etl.read": str(summary.get("read", 0)),
            "etl.schema_change": summary.get("schema_change") or "",
        }
        return {
            "files": [self.layout.relative(p) for p in self.files],
            "metadata": metadata,
            "mode": self.opts.mode,
        }

    def commit(self, payload: dict[str, Any]) -> dict[str, Any]:
        """One Delta commit of the staged files, unless the log already has this run's."""
        dl = _deltalake()
        run_id = payload["metadata"]["etl.run_id"]
        table = self._table(dl)
        if table is not None:
            for entry in table.history():
                if entry.get("etl.run_id") == run_id:  # committed before a crash
                    return {"delta_version": entry.get("version")}
        files = [self.layout.inside(rel) for rel in payload["files"]]
        where, fs = arrow(files[0])
        schema = pq.read_schema(where, filesystem=fs)
        mode = "overwrite" if payload.get("mode") == "overwrite" else "append"
        schema_mode = None
        if table is not None:
            schema_mode = "overwrite" if mode == "overwrite" else "merge"
        reader = pa.RecordBatchReader.from_batches(schema, _batches(files, schema))
        try:
            dl.write_deltalake(
                self.table_uri,
                reader,
                mode=mode,
                partition_by=self.opts.partition_by or None,
                schema_mode=schema_mode,
                target_file_size=self.opts.target_file_size,
                commit_properties=dl.CommitProperties(custom_metadata=payload["metadata"]),
                storage_options=self.delta_options,
            )
        except Exception as exc:
            raise RunError(
                f"plugin 'delta' ({self.section}): the Delta commit to {self.root} failed: "
                f"{type(exc).__name__}: {exc}",
                hint=f"fix the cause, then run `etl recover {self.root}` or the pipeline again",
            ) from exc
        committed = self._table(dl)
        return {"delta_version": committed.version() if committed is not None else None}

    def _table(self, dl: Any) -> Any:
        """The Delta table at the path, or None when there is none yet."""
        uri, options = self.table_uri, self.delta_options
        if not dl.DeltaTable.is_deltatable(uri, storage_options=options):
            return None
        return dl.DeltaTable(uri, storage_options=options)

    # files written by workers (the processes and dask executors)

    def worker_writer(self, run, schema: pa.Schema, worker: str):
        """A writer for one worker task: stages Parquet files that :meth:`adopt` takes in."""
        from etl.sinks.parquet import ParquetSink, ParquetWorkerWriter

        # the Delta commit partitions; staged files keep every column, in one file per task
        staging = ParquetSink(
            {
                "path": self.opts.path,
                "max_rows_per_file": 1 << 62,
                "storage_options": self.opts.storage_options,
            },
            section=self.section,
        )
        return ParquetWorkerWriter(staging, run, schema, worker)

    def check_worker(self, run) -> None:
        """On a worker, before any task: raise if it cannot write the staged files (the
        dask executor's preflight; they are staged as the parquet sink stages them)."""
        from etl.sinks.parquet import ParquetSink

        ParquetSink(
            {"path": self.opts.path, "storage_options": self.opts.storage_options},
            section=self.section,
        ).check_worker(run)

    def adopt(self, files: list[StagedFile], keep: list[Any]) -> None:
        """Take workers' files into this run's commit; rows the framework found to be
        duplicates are dropped by rewriting the file."""
        for item, mask in zip(files, keep, strict=True):
            path = self.layout.inside(item.path)
            if mask is not None:
                if not mask.any():
                    path.unlink(missing_ok=True)
                    continue
                where, fs = arrow(path)
                table = pq.read_table(where, filesystem=fs).filter(pa.array(mask))
                kept = path.with_name(path.name + "-kept.staged")
                where, fs = arrow(kept)
                pq.write_table(table, where, compression="zstd", filesystem=fs)
                path.unlink()
                path = kept
            self.files.append(path)

    def abort(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
        with contextlib.suppress(Exception):
            fs_of(self.staging).rmtree(self.staging)


def _batches(files: list[Any], schema: pa.Schema):
    """The run's articles, file by file, as the first file's schema."""
    for path in files:
        where, fs = arrow(path)
        source = pq.ParquetFile(where, filesystem=fs)
        try:
            for batch in source.iter_batches(batch_size=65536):
                if batch.num_rows:
                    yield batch.cast(schema) if batch.schema != schema else batch
        finally:
            source.close()


def commits(
    path: str | Path, storage_options: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The table's Delta commits that etl made, oldest first, with their custom metadata
    (``storage_options``: the pipeline's, for a table in an object store)."""
    dl = _deltalake()
    uri = str(path)
    options = delta_storage_options(uri, storage_options) if storage_options else None
    history = dl.DeltaTable(uri, storage_options=options).history()
    return [h for h in reversed(history) if "etl.run_id" in h]


def manifest_json(path: str | Path, run_id: str) -> dict[str, Any]:
    return json.loads((Path(path) / "_etl" / "runs" / f"{run_id}.json").read_text())


@hookimpl
def etl_register_plugins(register):
    register(DeltaSink)
