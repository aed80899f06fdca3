"""The bundled ``parquet`` sink: an atomically committed, hive-partitioned Parquet dataset."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from etl.context import RunInfo
from etl.hookspecs import hookimpl
from etl.plugin import Option, ReplacesRows, Sink, StagedFile, WorkerFiles, WorkerWriter
from etl.remote import STORAGE_OPTION
from etl.sinks.replace import RowRemovals
from etl.sinks.staging import worker_folder
from etl.store import (
    DATA_SUFFIX,
    REJECTS_SUFFIX,
    STAGED_SUFFIX,
    Layout,
    fault_point,
    fsync_dir,
    fsync_file,
    fsync_files,
)
from etl.store.fs import StorePath, arrow, fs_of, store_path

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
MAX_SEGMENT_BYTES = 200
_SAFE_CHARS = " -_.,+@"
_SAFE_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def partition_segment(column: str, value: Any) -> str:
    """``column=value`` as one safe folder name.

    The value is percent-encoded (``/``, ``\\``, ``%``, ``=``, NUL and all non-ASCII), so no
    value can name another folder; ``.`` and ``..`` cannot occur alone because the column
    name comes first. Overlong values are cut and suffixed with their hash.
    """
    if value is None:
        text = NULL_PARTITION
    else:
        text = quote(str(value), safe=_SAFE_CHARS, errors="surrogateescape")
        if not text:
            text = "%00empty"
    if len(text) > MAX_SEGMENT_BYTES:
        # cut whole characters (never inside a %XX sequence of one), then add a hash
        digest = hashlib.sha256(str(value).encode("utf-8", "surrogatepass")).hexdigest()[:16]
        budget = MAX_SEGMENT_BYTES - 17
        kept = []
        for char in str(value):
            piece = quote(char, safe=_SAFE_CHARS, errors="surrogateescape")
            budget -= len(piece)
            if budget < 0:
                break
            kept.append(piece)
        text = f"{''.join(kept)}~{digest}"
    return f"{column}={text}"


#: article columns whose values are (nearly) all distinct: Parquet's dictionary encoding
#: would hash every value, overflow its dictionary page and fall back to plain anyway
_DISTINCT_COLUMNS = frozenset({"id", "uri", "title", "text"})


@functools.lru_cache(maxsize=16)
def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The Parquet column paths of ``schema`` to dictionary-encode: all but the distinct ones.

    Nested columns have leaf paths (``metadata.key_value.key``); they are read from the
    Parquet schema pyarrow writes rather than spelled out here.
    """
    buffer = io.BytesIO()
    pq.write_table(schema.empty_table(), buffer)
    parquet_schema = pq.ParquetFile(io.BytesIO(buffer.getvalue())).schema
    paths = (parquet_schema.column(i).path for i in range(len(parquet_schema)))
    return [path for path in paths if path.split(".", 1)[0] not in _DISTINCT_COLUMNS]


class _FileWriter:
    """One staged Parquet file being written."""

    def __init__(
        self, staged: StorePath, final_rel: str, schema: pa.Schema, sink: ParquetSink
    ) -> None:
        staged.parent.mkdir(parents=True, exist_ok=True)
        self.staged = staged
        self.final_rel = final_rel
        self.rows = 0
        where, fs = arrow(staged)
        self.writer = pq.ParquetWriter(
            where,
            schema,
            filesystem=fs,
            compression=sink.opts.compression,
            compression_level=sink.opts.compression_level,
            use_dictionary=dictionary_columns(schema),
        )

    def write(self, batch: pa.RecordBatch, row_group_size: int) -> None:
        self.writer.write_batch(batch, row_group_size=row_group_size)
        if not self.rows:
            fault_point("write")
        self.rows += batch.num_rows

    def close(self) -> None:
        self.writer.close()


class ParquetSink(Sink, WorkerFiles, ReplacesRows):
    """A Parquet dataset folder that DuckDB, Polars, pandas and Spark read as it is: a local
    folder, or a URL of any fsspec filesystem (``s3://bucket/out``, ``memory://out``)."""

    name = "parquet"
    object_stores = True
    options = (
        Option("path", "path", required=True, help="the dataset folder, or its URL (s3://...)"),
        Option(
            "mode",
            "str",
            "append",
            help="append (skip ids already present), merge (a row with a key already present "
            "replaces it), overwrite, or error if the dataset exists",
            choices=("append", "merge", "overwrite", "error"),
        ),
        Option(
            "key",
            "str",
            "uri",
            help='mode = "merge": the column that names an article across its versions',
        ),
        Option("compression", "str", "zstd", help="Parquet codec: zstd, snappy, gzip, lz4, none"),
        Option("compression_level", "int", None, help="codec level (default: the codec's own)"),
        Option("row_group_size", "int", 65536, help="maximum rows per Parquet row group"),
        Option("max_rows_per_file", "int", 1_000_000, help="start a new file after this many rows"),
        Option(
            "partition_by",
            "list",
            [],
            help="columns to partition by (hive-style key=value folders)",
        ),
        STORAGE_OPTION,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.opts.compression not in ("zstd", "snappy", "gzip", "lz4", "brotli", "none"):
            raise self.error(
                f"option 'compression' is {self.opts.compression!r}",
                hint="choose zstd, snappy, gzip, lz4, brotli or none",
            )
        for column in self.opts.partition_by:
            if not isinstance(column, str) or not _SAFE_COLUMN.match(column):
                raise self.error(f"option 'partition_by': {column!r} is not a column name")
        for name in ("row_group_size", "max_rows_per_file"):
            if vars(self.opts)[name] < 1:
                raise self.error(f"option '{name}' must be at least 1")
        self.layout = Layout(store_path(self.opts.path, self.opts.storage_options))
        self.writers: dict[str, _FileWriter] = {}
        self.finished: list[Any] = []
        self.staging: StorePath | None = None

    def location(self) -> str:
        """The dataset folder: its ``_etl/`` holds the store beside the data."""
        return self.opts.path

    # lifecycle

    def open(self, run: RunInfo, schema: pa.Schema) -> None:
        missing = [c for c in self.opts.partition_by if c not in schema.names]
        if missing:
            raise self.error(
                f"option 'partition_by': no column '{missing[0]}' in the articles",
                hint=f"columns: {', '.join(schema.names)}",
            )
        if self.mode() == "merge":
            key = self.key()
            if key not in schema.names:
                raise self.error(
                    f"option 'key': no column '{key}' in the articles",
                    hint=f"columns: {', '.join(schema.names)}",
                )
            if key in self.opts.partition_by or pa.types.is_nested(schema.field(key).type):
                raise self.error(
                    f"option 'key': '{key}' cannot be the merge key (a partition column or a "
                    "list or map column)",
                    hint='most datasets use key = "uri"',
                )
        self.run = run
        self.schema = schema
        self.removals = RowRemovals(self.layout)
        self.staging = self.layout.staging(run.run_id) / "data"
        self.staging.mkdir(parents=True, exist_ok=True)
        self.writers = {}
        self.finished = []
        self.file_seq = 0

    # writing

    def write(self, batch: pa.RecordBatch) -> None:
        if self.opts.partition_by:
            _write_partitioned(self, batch)
        else:
            self._write_to("", batch)

    def _write_to(self, folder: str, batch: pa.RecordBatch, units: Any = None) -> None:
        writer = self.writers.get(folder)
        offset = 0
        while offset < batch.num_rows:
            if writer is None:
                writer = self._new_writer(folder)
                self.writers[folder] = writer
            room = self.opts.max_rows_per_file - writer.rows
            piece = batch.slice(offset, room)
            writer.write(piece, self.opts.row_group_size)
            offset += piece.num_rows
            if writer.rows >= self.opts.max_rows_per_file:
                writer.close()
                self.finished.append(writer)
                del self.writers[folder]
                writer = None

    def _new_writer(self, folder: str) -> _FileWriter:
        self.file_seq += 1
        name = f"part-{self.run.run_id}-{self.file_seq:05d}{DATA_SUFFIX}"
        final_rel = f"{folder}/{name}" if folder else name
        assert self.staging is not None
        staged = self.staging / f"{self.file_seq:05d}{STAGED_SUFFIX}"
        return _FileWriter(staged, final_rel, _file_schema(self.schema, self.opts), self)

    def stage_replace(self, column: str, values: pa.Array) -> pa.Array:
        """Mark the committed rows whose ``column`` is in ``values``; :meth:`prepare` stages
        their files rewritten without them. Returns their ids."""
        return self.removals.mark(column, values)

    # commit

    def prepare(self, summary: Any = None) -> dict[str, Any]:
        """Close and fsync every staged file; the renames, the rewrites of files that lose
        replaced rows, and the deletes (overwrite mode, or files that lose every row) that
        :meth:`commit` applies."""
        for writer in self.writers.values():
            writer.close()
            self.finished.append(writer)
        self.writers = {}
        layout = self.layout
        new_files = [(w.staged, w.final_rel) for w in self.finished if w.rows]
        rewrites, emptied = ([], [])
        if self.staging is not None:
            rewrites, emptied, new_files = self.removals.stage(self.staging, self.opts, new_files)
        renames = [[layout.relative(staged), final] for staged, final in new_files]
        fsync_files([layout.inside(staged) for staged, _ in renames + rewrites])
        if self.staging is not None:
            fsync_dir(self.staging)
        deletes = []
        if self.mode() == "overwrite":
            deletes = [layout.relative(p) for p in layout.data_files()]
        return {"renames": renames, "deletes": deletes, "rewrites": rewrites, "emptied": emptied}

    def commit(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Delete the replaced files and rename the staged ones into place (a rewritten file
        holds the new versions of the rows it loses: see :mod:`etl.sinks.replace`).
        Idempotent: a file already moved is skipped. The manifest lists the new data files."""
        deletes, renames = payload.get("deletes", []), payload.get("renames", [])
        emptied = payload.get("emptied", [])
        self.layout.apply_moves(deletes, renames + payload.get("rewrites", []), mark_first=True)
        self.layout.apply_moves(emptied, [])
        self.layout.prune_empty(deletes + emptied)
        return {"files": [final for _, final in payload.get("renames", [])]}

    def abort(self) -> None:
        for writer in self.writers.values():
            with contextlib.suppress(Exception):
                writer.close()
        self.writers = {}
        if self.staging is not None:
            fs_of(self.staging).rmtree(self.staging)

    # files written by workers (processes and dask executors)

    def worker_writer(self, run: RunInfo, schema: pa.Schema, worker: str) -> ParquetWorkerWriter:
        """A writer for one worker task: stages files :meth:`adopt` takes in.

        Called on the worker, on a sink built from the same options but never opened.
        """
        return ParquetWorkerWriter(self, run, schema, worker)

    def check_worker(self, run: RunInfo) -> None:
        """On a worker: raise if it cannot write the run's staged files (a preflight)."""
        worker_folder(self.layout, run.run_id, probe=True)

    def adopt(self, files: list[StagedFile], keep: list[Any]) -> None:
        """Take workers' files into this run's commit; a file with a mask is rewritten
        with the rows it keeps (row group by row group), one that keeps none is dropped."""
        root = self.layout.root
        for item, mask in zip(files, keep, strict=True):
            staged = root / item.path
            rows = item.rows
            if mask is not None:
                rows = int(mask.sum())
                if rows == 0:
                    staged.unlink(missing_ok=True)
                    continue
                staged = self._rewrite_kept(staged, mask)
            self.file_seq += 1
            name = f"part-{self.run.run_id}-{self.file_seq:05d}{DATA_SUFFIX}"
            folder = item.extra.get("folder", "")
            final_rel = f"{folder}/{name}" if folder else name
            self.finished.append(_AdoptedFile(staged, final_rel, rows))

    def _rewrite_kept(self, staged: StorePath, mask: Any) -> StorePath:
        """A copy of a staged file with only the rows ``mask`` keeps; the original is removed."""
        out = staged.with_name(staged.name[: -len(STAGED_SUFFIX)] + "-dedup" + STAGED_SUFFIX)
        where, fs = arrow(staged)
        source = pq.ParquetFile(where, filesystem=fs)
        where, fs = arrow(out)
        writer = pq.ParquetWriter(
            where,
            source.schema_arrow,
            filesystem=fs,
            compression=self.opts.compression,
            compression_level=self.opts.compression_level,
            use_dictionary=dictionary_columns(source.schema_arrow),
        )
        offset = 0
        try:
            for batch in source.iter_batches(batch_size=self.opts.row_group_size):
                part = mask[offset : offset + batch.num_rows]
                offset += batch.num_rows
                if part.any():
                    writer.write_batch(
                        batch.filter(pa.array(part)), row_group_size=self.opts.row_group_size
                    )
        finally:
            writer.close()
            source.close()
        staged.unlink()
        return out


def _file_schema(schema: pa.Schema, opts: Any) -> pa.Schema:
    """The schema of the files: partition columns live in folder names only."""
    for column in opts.partition_by:
        schema = schema.remove(schema.get_field_index(column))
    return schema


def _write_partitioned(owner: Any, batch: pa.RecordBatch, units: Any = None) -> None:
    """Split ``batch`` by the partition columns and hand each part to ``owner._write_to``."""
    columns = owner.opts.partition_by
    table = pa.Table.from_batches([batch])
    if units is not None:
        table = table.append_column("__units", pa.array(units))
    keys = table.select(columns).group_by(columns, use_threads=False).aggregate([])
    for key in keys.to_pylist():
        mask = None
        for column in columns:
            value = key[column]
            cond = (
                pc.is_null(table.column(column))
                if value is None
                else pc.fill_null(pc.equal(table.column(column), value), False)
            )
            mask = cond if mask is None else pc.and_(mask, cond)
        # hive style: the folder holds the value, the file does not (pandas and
        # pyarrow.dataset refuse a column that is in both)
        part = table.filter(mask).drop_columns(columns)
        folder = "/".join(partition_segment(c, key[c]) for c in columns)
        for sub in part.to_batches():
            if units is None:
                owner._write_to(folder, sub)
            else:
                sub_units = sub.column("__units").to_numpy(zero_copy_only=False)
                owner._write_to(folder, sub.drop_columns(["__units"]), sub_units)


class _AdoptedFile:
    """A worker's staged file taken into the driver's commit (what commit needs of a writer)."""

    def __init__(self, staged: StorePath, final_rel: str, rows: int) -> None:
        self.staged = staged
        self.final_rel = final_rel
        self.rows = rows


class ParquetWorkerWriter(WorkerWriter):
    """Writes one worker task's articles as staged Parquet files for the driver to adopt.

    Files go to ``_etl/staging/<run>/workers/<worker>-<n>.staged`` under the dataset, with the
    sink's codec, row group size, file size and partitioning.

    Args:
        sink: the sink built from the pipeline's options (not opened).
        run: the driver's run.
        schema: the articles' schema (with the transforms' columns).
        worker: a name unique to this task (worker and task number).
    """

    def __init__(self, sink: ParquetSink, run: RunInfo, schema: pa.Schema, worker: str) -> None:
        self.opts = sink.opts
        self.layout = sink.layout
        self.folder = worker_folder(sink.layout, run.run_id)
        self.worker = re.sub(r"[^A-Za-z0-9_.-]+", "_", worker).strip("_") or "worker"
        self.schema = _file_schema(schema, self.opts)
        self.writers: dict[str, list[Any]] = {}
        self.files: list[StagedFile] = []
        self.seq = 0

    def write(self, batch: pa.RecordBatch, units: Any) -> None:
        if self.opts.partition_by:
            _write_partitioned(self, batch, units)
        else:
            self._write_to("", batch, units)

    def _write_to(self, folder: str, batch: pa.RecordBatch, units: Any = None) -> None:
        import numpy as np

        offset = 0
        while offset < batch.num_rows:
            entry = self.writers.get(folder)
            if entry is None:
                self.seq += 1
                path = self.folder / f"{self.worker}-{self.seq:05d}{STAGED_SUFFIX}"
                where, fs = arrow(path)
                writer = pq.ParquetWriter(
                    where,
                    self.schema,
                    filesystem=fs,
                    compression=self.opts.compression,
                    compression_level=self.opts.compression_level,
                    use_dictionary=dictionary_columns(self.schema),
                )
                entry = [writer, path, 0, [], [], []]
                self.writers[folder] = entry
            writer, path, rows, values, lengths, ids = entry
            piece = batch.slice(offset, self.opts.max_rows_per_file - rows)
            piece_units = units[offset : offset + piece.num_rows]
            offset += piece.num_rows
            writer.write_batch(piece, row_group_size=self.opts.row_group_size)
            ids.extend(piece.column("id").to_pylist())
            starts = np.concatenate(([0], np.flatnonzero(np.diff(piece_units)) + 1))
            runs = np.diff(np.concatenate((starts, [len(piece_units)])))
            for value, length in zip(piece_units[starts].tolist(), runs.tolist(), strict=True):
                if values and values[-1] == value:
                    lengths[-1] += length
                else:
                    values.append(value)
                    lengths.append(length)
            entry[2] = rows + piece.num_rows
            if entry[2] >= self.opts.max_rows_per_file:
                self._finish(folder)

    def _finish(self, folder: str) -> None:
        writer, path, rows, values, lengths, ids = self.writers.pop(folder)
        writer.close()
        fsync_file(path)
        self.files.append(
            StagedFile(self.layout.relative(path), rows, ids, values, lengths, {"folder": folder})
        )

    def close(self) -> list[StagedFile]:
        """Finish every open file; return the task's staged files in the order written."""
        for folder in list(self.writers):
            self._finish(folder)
        return self.files

    def abort(self) -> None:
        """Close and delete this task's files (the driver never sees them)."""
        for folder in list(self.writers):
            with contextlib.suppress(Exception):
                self._finish(folder)
        for item in self.files:
            (self.layout.root / item.path).unlink(missing_ok=True)
        self.files = []


def rejects_glob(root: Path) -> str:
    """The glob that reads a dataset's rejects table."""
    return str(root / "_etl" / "rejects" / f"*{REJECTS_SUFFIX}")


@hookimpl
def etl_register_plugins(register):
    register(ParquetSink)
