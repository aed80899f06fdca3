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

from etl.accounting import InputRows
from etl.context import RunInfo
from etl.dataset import (
    COMMIT_FILE,
    DATA_SUFFIX,
    REJECTS_SUFFIX,
    RUN_INPUTS_SUFFIX,
    STAGED_SUFFIX,
    Dataset,
    fault_point,
    file_content_hash,
    key_digest,
)
from etl.errors import ConfigError, RunError
from etl.hookspecs import hookimpl
from etl.plugin import Option, Sink, WriteResult
from etl.schema import first_seen

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
def _dictionary_columns(schema: pa.Schema) -> list[str]:
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
            use_dictionary=_dictionary_columns(schema),
        )

    def write(self, batch: pa.RecordBatch, row_group_size: int) -> None:
        self.writer.write_batch(batch, row_group_size=row_group_size)
        if not self.rows:
            fault_point("write")
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
        try:
            ds.root.mkdir(parents=True, exist_ok=True)
            ds.acquire_lock(run.run_id, wait=float(run.extra.get("wait", 0.0)))
        except OSError as exc:
            raise self._write_error(exc, "taking the writer lock") from exc
        try:
            ds.recover()
            if self.opts.mode == "error" and ds.exists():
                raise ConfigError(
                    f"plugin 'parquet' ({self.section}): the dataset {ds.root} already exists "
                    "and mode is 'error'",
                    hint='use mode = "append" or "overwrite", or another path',
                )
            from etl.evolution import plan_schema  # refuses an unsafe type change here

            self.schema_plan = plan_schema(
                ds.root, schema, mode=self.opts.mode, section=self.section
            )
            self.staging = ds.staging(run.run_id)
            self.staging.mkdir(parents=True, exist_ok=True)
            self.seen = self.dataset.ids() if self.opts.mode == "append" else set()
        except OSError as exc:
            ds.release_lock()
            raise self._write_error(exc, "opening") from exc
        except BaseException:
            ds.release_lock()
            raise
        self.writers: dict[str, _FileWriter] = {}
        self.finished: list[_FileWriter] = []
        self.file_seq = 0
        #: workers' files adopt() had to rewrite to drop duplicates
        self.rewritten_files = 0

    def filter_units(self, units):
        """Skip inputs a committed run ingested unchanged; read nothing of those.

        An input is unchanged when its size and mtime are those remembered; when only the
        mtime differs (a file touched or copied), its content hash decides. Inputs without
        size or mtime (URLs) are always read. See docs/reliability.md.
        """
        if self.opts.mode != "append":
            return units
        known = self.dataset.remembered_inputs()
        if not known:
            return units
        kept = []
        for unit in units:
            size, mtime = unit.input.size, unit.input.mtime
            seen = known.get(key_digest(unit.key)) if size is not None else None
            if seen is not None and mtime is not None and seen[0] == size:
                if seen[1] == mtime:
                    continue
                if seen[2] is not None and file_content_hash(unit.key, seen[2]) == seen[2]:
                    continue
            kept.append(unit)
        return kept

    def record_inputs(self, units: list[Any], rows: InputRows) -> InputRows:
        """Which of this run's inputs to remember, and their content hashes.

        ``rows`` is the run's per-input account (one row per unit, same order); returned
        with ``key``, ``content_hash`` and ``remembered`` filled in. Remembered: local files read
        to the end and unchanged since they were listed, whatever rows or rejects they gave.
        Not remembered: inputs whose reading failed in a way that may pass (``complete``
        false: an I/O error, a source exception), inputs without size or mtime, inputs that
        changed during the run. Those are read again by the next run.
        """
        import os

        import numpy as np

        table = rows.table
        # the source hashed the bytes it read (the text source does): nothing to check
        digests = table.column("content_hash").to_pylist()
        eligible = pc.and_(
            table.column("complete"),
            pc.and_(pc.is_valid(table.column("size")), pc.is_valid(table.column("mtime"))),
        ).to_numpy(zero_copy_only=False)
        unhashed = pc.is_null(table.column("content_hash")).to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(eligible & unhashed):
            # another source: hash the file now, if it is as it was listed
            ref = units[i].input
            try:
                st = os.stat(ref.key)
            except (OSError, ValueError):
                eligible[i] = False
                continue
            if st.st_size != ref.size or st.st_mtime != ref.mtime:
                eligible[i] = False  # changed while we read it: read it again next time
                continue
            # a file that changes after this has another size or mtime next time, and then
            # another hash
            digests[i] = file_content_hash(ref.key)
            eligible[i] = digests[i] is not None
        keys = pa.array([key_digest(u.key) for u in units], pa.string())
        remembered = pa.array(eligible)
        hashes = pc.if_else(remembered, pa.array(digests, pa.string()), None)
        for name, column in (("content_hash", hashes), ("key", keys), ("remembered", remembered)):
            table = table.set_column(table.schema.get_field_index(name), name, column)
        return InputRows(table)

    # writing

    def write(self, batch: pa.RecordBatch) -> WriteResult:
        kept = self._dedup_mask(batch.column("id"))
        if kept is not None:
            batch = batch.filter(kept)
        written = batch.num_rows
        if written:
            try:
                if self.opts.partition_by:
                    self._write_partitioned(batch)
                else:
                    self._write_to("", batch)
            except OSError as exc:
                raise self._write_error(exc, "writing staged files") from exc
        duplicates = (len(kept) - written) if kept is not None else 0
        return WriteResult(written=written, duplicates=duplicates, kept=kept)

    def _dedup_mask(self, ids: pa.Array) -> pa.Array | None:
        """False for ids already in the dataset or earlier in this run (None: keep all)."""
        keep = first_seen(ids.to_pylist(), self.seen)
        return None if keep is None else pa.array(keep, pa.bool_())

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
            try:
                plan = self._commit_plan(rejects, manifest)
            except OSError as exc:
                raise self._write_error(exc, "staging the run's files") from exc
            try:
                self.dataset.commit(self.run.run_id, plan)
            except OSError as exc:
                if (self.staging / COMMIT_FILE).is_file():
                    raise RunError(
                        f"the run was committed but could not be finished in {self.dataset.root}: "
                        f"{exc.strerror or exc}",
                        hint=f"fix the cause, then run `etl recover {self.dataset.root}` (any next "
                        "run does it too) to finish it",
                    ) from exc
                raise self._write_error(exc, "committing") from exc
        finally:
            self.dataset.release_lock()

    def _commit_plan(self, rejects: pa.Table, manifest: dict[str, Any]) -> dict[str, Any]:
        """Close and stage everything; the plan that :meth:`Dataset.commit` writes and applies."""
        for writer in self.writers.values():
            writer.close()
            self.finished.append(writer)
        self.writers = {}
        root = self.dataset.root
        renames = [[str(w.staged.relative_to(root)), w.final_rel] for w in self.finished if w.rows]
        rejects_rel = None
        if rejects.num_rows:
            staged_rejects = self.staging / f"rejects{STAGED_SUFFIX}"
            pq.write_table(rejects, staged_rejects, compression="zstd")
            rejects_rel = str(staged_rejects.relative_to(root))
        deletes = []
        if self.opts.mode == "overwrite":
            deletes = [str(p.relative_to(root)) for p in self.dataset.data_files()]
        summary = manifest.get("summary", {})
        rows = summary.get("per_input")
        run_inputs_rel = inputs_rel = None
        remember = None
        if isinstance(rows, InputRows):
            # the per-input account goes beside the manifest as a table, not into its JSON
            staged_inputs = self.staging / f"run-inputs{STAGED_SUFFIX}"
            # one row per input: paths, keys and hashes are distinct (no dictionary)
            pq.write_table(rows.table, staged_inputs, compression="zstd", use_dictionary=["source"])
            run_inputs_rel = str(staged_inputs.relative_to(root))
            summary = {k: v for k, v in summary.items() if k != "per_input"}
            summary["inputs_file"] = f"{self.run.run_id}{RUN_INPUTS_SUFFIX}"
            remember = rows.table.filter(rows.table.column("remembered"))
        if (remember is not None and remember.num_rows) or self.opts.mode == "overwrite":
            inputs_rel = self.dataset.stage_inputs(
                self.run.run_id, remember, replace=self.opts.mode == "overwrite"
            )
        manifest = {
            **manifest,
            "summary": summary,
            "files": [f for _, f in renames],
            "dataset": str(root),
            "sink_mode": self.opts.mode,
        }
        from etl.evolution import stage_schema  # _etl/schema.json commits with the data

        renames += stage_schema(root, self.staging, self.schema_plan, self.run.run_id)
        return {
            "renames": renames,
            "deletes": deletes,
            "rejects": rejects_rel,
            "inputs": inputs_rel,
            "run_inputs": run_inputs_rel,
            "manifest": manifest,
        }

    def _write_error(self, exc: OSError, doing: str) -> RunError:
        import errno

        why = exc.strerror or str(exc)
        hint = {
            errno.ENOSPC: "free some space on that filesystem, or point [sink] path elsewhere",
            errno.EDQUOT: "raise the disk quota, or point [sink] path elsewhere",
            errno.EACCES: "check that this user may write into the dataset folder",
            errno.EPERM: "check that this user may write into the dataset folder",
            errno.EROFS: "that filesystem is mounted read-only; point [sink] path elsewhere",
        }.get(exc.errno or 0, "check the dataset folder and its filesystem")
        return RunError(
            f"plugin 'parquet' ({self.section}): cannot write the dataset {self.dataset.root} "
            f"({doing}): {why}; nothing of this run was committed",
            hint=hint,
        )

    def abort(self) -> None:
        import shutil

        try:
            for writer in self.writers.values():
                with contextlib.suppress(Exception):
                    writer.close()
            self.writers = {}
            staging = getattr(self, "staging", None)
            if staging is None:
                return
            if (staging / COMMIT_FILE).is_file():
                # past the commit point: finish it, or leave it for `etl recover`
                with contextlib.suppress(Exception):
                    self.dataset.apply(self.run.run_id)
                return
            shutil.rmtree(staging, ignore_errors=True)
        finally:
            self.dataset.release_lock()

    # files staged by workers (processes and dask executors)

    def worker_writer(self, run: RunInfo, schema: pa.Schema, worker: str) -> WorkerWriter:
        """A writer for one worker task: stages files the driver's :meth:`adopt` takes in.

        Called on the worker, on a sink built from the same options but never opened.
        """
        return WorkerWriter(self, run, schema, worker)

    def keep_new(self, ids: list[str]) -> list[bool] | None:
        """Which of a worker task's ids (in unit order) are new; they are seen from now on.

        The ``processes`` executor asks this in the order of the work units before a
        worker writes, so the worker writes no duplicate. Returns None when all are new.
        """
        return first_seen(ids, self.seen)

    def adopt(self, files: list[StagedFile], decided: bool = False) -> dict[int, int]:
        """Add files staged by workers to this run's commit, dropping duplicate ids.

        Call it on the opened sink, with the files of each worker task in the order of the
        work units, so the first occurrence of an id wins as it does in one process. Ids
        already in the dataset or in a file adopted earlier are dropped; only a file that
        holds such an id is rewritten (row group by row group). ``decided``: the task's ids
        went through :meth:`keep_new` before it wrote them, so its files are taken as they
        are. Returns the rows dropped as duplicates per unit index.
        """
        import numpy as np

        dropped: dict[int, int] = {}
        root = self.dataset.root
        for item in files:
            staged = root / item.staged
            rows = item.rows
            if decided:
                kept = None
            else:
                kept = self._dedup_mask(pq.read_table(staged, columns=["id"]).column("id"))
            if kept is not None:
                mask = kept.to_numpy(zero_copy_only=False)
                inputs = np.repeat(
                    np.asarray(item.input_values, dtype=np.int64),
                    np.asarray(item.input_lengths, dtype=np.int64),
                )
                counts = np.bincount(inputs[~mask])
                for index in np.flatnonzero(counts):
                    dropped[int(index)] = dropped.get(int(index), 0) + int(counts[index])
                rows = int(mask.sum())
                if rows == 0:
                    staged.unlink(missing_ok=True)
                    continue
                staged = self._rewrite_kept(staged, mask)
            self.file_seq += 1
            name = f"part-{self.run.run_id}-{self.file_seq:05d}{DATA_SUFFIX}"
            final_rel = f"{item.folder}/{name}" if item.folder else name
            self.finished.append(_AdoptedFile(staged, final_rel, rows))
        return dropped

    def _rewrite_kept(self, staged: Path, mask: Any) -> Path:
        """A copy of a staged file with only the rows ``mask`` keeps; the original is removed."""
        self.rewritten_files += 1
        out = staged.with_name(staged.name[: -len(STAGED_SUFFIX)] + "-dedup" + STAGED_SUFFIX)
        source = pq.ParquetFile(staged)
        writer = pq.ParquetWriter(
            out,
            source.schema_arrow,
            compression=self.opts.compression,
            compression_level=self.opts.compression_level,
            use_dictionary=_dictionary_columns(source.schema_arrow),
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


class _AdoptedFile:
    """A worker's staged file taken into the driver's commit (what commit needs of a writer)."""

    def __init__(self, staged: Path, final_rel: str, rows: int) -> None:
        self.staged = staged
        self.final_rel = final_rel
        self.rows = rows


class StagedFile:
    """A Parquet file a worker staged, described for the driver's :meth:`ParquetSink.adopt`.

    Args:
        staged: its path relative to the dataset root (under ``_etl/staging/<run>/workers``).
        folder: the partition folder it belongs in (``""`` when not partitioned).
        rows: rows it holds.
        input_values, input_lengths: the unit index of each row, run-length encoded.
    """

    def __init__(
        self,
        staged: str,
        folder: str,
        rows: int,
        input_values: list[int],
        input_lengths: list[int],
    ) -> None:
        self.staged = staged
        self.folder = folder
        self.rows = rows
        self.input_values = input_values
        self.input_lengths = input_lengths

    def __repr__(self) -> str:
        return f"<StagedFile {self.staged} rows={self.rows}>"


class WorkerWriter:
    """Writes one worker task's articles as staged Parquet files for the driver to adopt.

    Files go to ``_etl/staging/<run>/workers/<worker>-<n>.staged`` under the dataset, with the
    sink's codec, row group size, file size and partitioning. Ids repeated within the task
    are dropped here; the driver drops those repeated across tasks or already committed.

    Args:
        sink: the sink built from the pipeline's options (not opened).
        run: the driver's run.
        schema: the articles' schema (with the transforms' columns).
        worker: a name unique to this task (worker and task number).
    """

    def __init__(self, sink: ParquetSink, run: RunInfo, schema: pa.Schema, worker: str) -> None:
        from etl.errors import RunError

        self.opts = sink.opts
        self.root = sink.dataset.root
        self.folder = sink.dataset.staging(run.run_id) / "workers"
        if not self.folder.parent.is_dir():
            raise RunError(
                f"cannot see the run's staging folder {self.folder.parent}",
                hint="the dataset path must be on a filesystem that the driver and every "
                "worker mount at the same path",
            )
        self.folder.mkdir(exist_ok=True)
        self.worker = re.sub(r"[^A-Za-z0-9_.-]+", "_", worker).strip("_") or "worker"
        self.schema = schema
        for column in self.opts.partition_by:
            self.schema = self.schema.remove(self.schema.get_field_index(column))
        self.seen: set[str] = set()
        self.writers: dict[str, list[Any]] = {}
        self.files: list[StagedFile] = []
        self.seq = 0

    def write(self, batch: pa.RecordBatch) -> WriteResult:
        """Write a streamed batch (with the hidden input column); drop ids seen in this task."""
        kept = ParquetSink._dedup_mask(self, batch.column("id"))
        if kept is not None:
            batch = batch.filter(kept)
        written = batch.num_rows
        if written:
            if self.opts.partition_by:
                ParquetSink._write_partitioned(self, batch)
            else:
                self._write_to("", batch)
        duplicates = (len(kept) - written) if kept is not None else 0
        return WriteResult(written=written, duplicates=duplicates, kept=kept)

    def _write_to(self, folder: str, batch: pa.RecordBatch) -> None:
        import numpy as np

        from etl.stream import INPUT_COLUMN

        offset = 0
        while offset < batch.num_rows:
            entry = self.writers.get(folder)
            if entry is None:
                self.seq += 1
                path = self.folder / f"{self.worker}-{self.seq:05d}{STAGED_SUFFIX}"
                writer = pq.ParquetWriter(
                    path,
                    self.schema,
                    compression=self.opts.compression,
                    compression_level=self.opts.compression_level,
                    use_dictionary=_dictionary_columns(self.schema),
                )
                entry = [writer, path, 0, [], []]
                self.writers[folder] = entry
            writer, path, rows, values, lengths = entry
            piece = batch.slice(offset, self.opts.max_rows_per_file - rows)
            offset += piece.num_rows
            inputs = piece.column(INPUT_COLUMN).to_numpy(zero_copy_only=False)
            writer.write_batch(
                piece.drop_columns([INPUT_COLUMN]), row_group_size=self.opts.row_group_size
            )
            starts = np.flatnonzero(np.diff(inputs)) + 1
            starts = np.concatenate(([0], starts))
            runs = np.diff(np.concatenate((starts, [len(inputs)])))
            for value, length in zip(inputs[starts].tolist(), runs.tolist(), strict=True):
                if values and values[-1] == value:
                    lengths[-1] += length
                else:
                    values.append(value)
                    lengths.append(length)
            entry[2] = rows + piece.num_rows
            if entry[2] >= self.opts.max_rows_per_file:
                self._finish(folder)

    def _finish(self, folder: str) -> None:
        writer, path, rows, values, lengths = self.writers.pop(folder)
        writer.close()
        rel = str(path.relative_to(self.root))
        self.files.append(StagedFile(rel, folder, rows, values, lengths))

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
            (self.root / item.staged).unlink(missing_ok=True)
        self.files = []


def rejects_glob(root: Path) -> str:
    """The glob that reads a dataset's rejects table."""
    return str(root / "_etl" / "rejects" / f"*{REJECTS_SUFFIX}")


@hookimpl
def etl_register_plugins(register):
    register(ParquetSink)
