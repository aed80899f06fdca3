"""The bundled ``parquet`` sink: an atomically committed, hive-partitioned Parquet dataset."""

from __future__ import annotations

import contextlib
import hashlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from etl.context import RunInfo
from etl.dataset import DATA_SUFFIX, REJECTS_SUFFIX, STAGED_SUFFIX, Dataset
from etl.errors import ConfigError
from etl.hookspecs import hookimpl
from etl.plugin import Option, Sink, WriteResult

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
MAX_SEGMENT_BYTES = 200
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
        text = quote(str(value), safe=" -_.,+@")
        if not text:
            text = "%00empty"
    if len(text.encode()) > MAX_SEGMENT_BYTES:
        digest = hashlib.sha256(str(value).encode()).hexdigest()[:16]
        text = f"{text[: MAX_SEGMENT_BYTES - 17].rstrip('%')}~{digest}"
    return f"{column}={text}"


class _FileWriter:
    """One staged Parquet file being written."""

    def __init__(self, staged: Path, final_rel: str, schema: pa.Schema, sink: ParquetSink) -> None:
        staged.parent.mkdir(parents=True, exist_ok=True)
        self.staged = staged
        self.final_rel = final_rel
        self.rows = 0
        self.writer = pq.ParquetWriter(
            staged,
            schema,
            compression=sink.opts.compression,
            compression_level=sink.opts.compression_level,
        )

    def write(self, batch: pa.RecordBatch, row_group_size: int) -> None:
        self.writer.write_batch(batch, row_group_size=row_group_size)
        self.rows += batch.num_rows

    def close(self) -> None:
        self.writer.close()


class ParquetSink(Sink):
    """A Parquet dataset folder that DuckDB, Polars, pandas and Spark read as it is."""

    name = "parquet"
    options = (
        Option("path", "path", required=True, help="the dataset folder"),
        Option(
            "mode",
            "str",
            "append",
            help="append (skip ids already present), overwrite, or error if the dataset exists",
            choices=("append", "overwrite", "error"),
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
            if getattr(self.opts, name) < 1:
                raise self.error(f"option '{name}' must be at least 1")
        self.dataset = Dataset(Path(self.opts.path))

    # lifecycle

    def open(self, run: RunInfo, schema: pa.Schema) -> None:
        missing = [c for c in self.opts.partition_by if c not in schema.names]
        if missing:
            raise self.error(
                f"option 'partition_by': no column '{missing[0]}' in the articles",
                hint=f"columns: {', '.join(schema.names)}",
            )
        self.run = run
        self.schema = schema
        ds = self.dataset
        if ds.root.exists() and not ds.root.is_dir():
            raise self.error(f"{ds.root} exists and is not a folder")
        ds.root.mkdir(parents=True, exist_ok=True)
        ds.acquire_lock(run.run_id, wait=float(run.extra.get("wait", 0.0)))
        try:
            ds.recover()
            if self.opts.mode == "error" and ds.exists():
                raise ConfigError(
                    f"plugin 'parquet' ({self.section}): the dataset {ds.root} already exists "
                    "and mode is 'error'",
                    hint='use mode = "append" or "overwrite", or another path',
                )
            self.staging = ds.staging(run.run_id)
            self.staging.mkdir(parents=True, exist_ok=True)
            self.seen = self._existing_ids() if self.opts.mode == "append" else set()
        except BaseException:
            ds.release_lock()
            raise
        self.writers: dict[str, _FileWriter] = {}
        self.finished: list[_FileWriter] = []
        self.file_seq = 0

    def _existing_ids(self) -> set[str]:
        import pyarrow.dataset as pads

        files = self.dataset.data_files()
        if not files:
            return set()
        ids = pads.dataset([str(f) for f in files], format="parquet").to_table(columns=["id"])
        return set(ids.column("id").to_pylist())

    def filter_units(self, units):
        """Skip inputs a committed run already read unchanged (same key, size and mtime)."""
        if self.opts.mode != "append":
            return units
        known: dict[str, tuple[Any, Any]] = {}
        for manifest in self.dataset.manifests():
            for entry in manifest.get("summary", {}).get("per_input", []):
                known[entry["input"]] = (entry.get("size"), entry.get("mtime"))
        return [
            u
            for u in units
            if u.input.size is None
            or u.input.mtime is None
            or known.get(u.key) != (u.input.size, u.input.mtime)
        ]

    # writing

    def write(self, batch: pa.RecordBatch) -> WriteResult:
        kept = self._dedup_mask(batch.column("id"))
        if kept is not None:
            batch = batch.filter(kept)
        written = batch.num_rows
        if written:
            if self.opts.partition_by:
                self._write_partitioned(batch)
            else:
                self._write_to("", batch)
        duplicates = (len(kept) - written) if kept is not None else 0
        return WriteResult(written=written, duplicates=duplicates, kept=kept)

    def _dedup_mask(self, ids: pa.Array) -> pa.Array | None:
        """False for ids already in the dataset or earlier in this run (None: keep all)."""
        seen = self.seen
        keep = []
        add = seen.add
        for article_id in ids.to_pylist():
            if article_id in seen:
                keep.append(False)
            else:
                add(article_id)
                keep.append(True)
        if all(keep):
            return None
        return pa.array(keep, pa.bool_())

    def _write_partitioned(self, batch: pa.RecordBatch) -> None:
        columns = self.opts.partition_by
        table = pa.Table.from_batches([batch])
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
                self._write_to(folder, sub)

    def _write_to(self, folder: str, batch: pa.RecordBatch) -> None:
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
        staged = self.staging / "data" / f"{self.file_seq:05d}{STAGED_SUFFIX}"
        schema = self.schema
        for column in self.opts.partition_by:
            schema = schema.remove(schema.get_field_index(column))
        return _FileWriter(staged, final_rel, schema, self)

    # commit

    def commit(self, rejects: pa.Table, manifest: dict[str, Any]) -> None:
        try:
            for writer in self.writers.values():
                writer.close()
                self.finished.append(writer)
            self.writers = {}
            root = self.dataset.root
            renames = [
                [str(w.staged.relative_to(root)), w.final_rel] for w in self.finished if w.rows
            ]
            rejects_rel = None
            if rejects.num_rows:
                staged_rejects = self.staging / f"rejects{STAGED_SUFFIX}"
                pq.write_table(rejects, staged_rejects, compression="zstd")
                rejects_rel = str(staged_rejects.relative_to(root))
            deletes = []
            if self.opts.mode == "overwrite":
                deletes = [str(p.relative_to(root)) for p in self.dataset.data_files()]
            manifest = {**manifest, "files": [f for _, f in renames], "dataset": str(root)}
            self.dataset.commit(
                self.run.run_id,
                {
                    "renames": renames,
                    "deletes": deletes,
                    "rejects": rejects_rel,
                    "manifest": manifest,
                },
            )
        finally:
            self.dataset.release_lock()

    def abort(self) -> None:
        import shutil

        try:
            for writer in self.writers.values():
                with contextlib.suppress(Exception):
                    writer.close()
            self.writers = {}
            shutil.rmtree(self.staging, ignore_errors=True)
        finally:
            self.dataset.release_lock()


def rejects_glob(root: Path) -> str:
    """The glob that reads a dataset's rejects table."""
    return str(root / "_etl" / "rejects" / f"*{REJECTS_SUFFIX}")


@hookimpl
def etl_register_plugins(register):
    register(ParquetSink)
