"""The inputs memory: what earlier runs ingested, so a re-run skips what did not change.

One row per input (``_etl/inputs.pq``), named by the digest of its key. What decides
"unchanged" is the unit's fingerprint (``InputRef.fingerprint``: an ETag, a version id, a
content hash, a database cursor, chosen by the source). An input without one is judged by
size and mtime; when only the mtime differs (a file touched or copied), its content hash
decides. An input with neither a fingerprint nor size and mtime is read on every run.

The memory is rewritten whole by each commit (so reading it costs one small file however
many runs there were); a dataset without it gets it rebuilt from the run manifests.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from etl.store.fs import arrow
from etl.store.fsio import read_parquet
from etl.store.hashing import file_content_hash, key_digest
from etl.store.layout import STAGED_SUFFIX, Layout

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.accounting import InputRows
    from etl.plugin import WorkUnit


def memory_schema() -> pa.Schema:
    """The inputs memory's columns: what earlier runs ingested, by key digest."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("key", pa.string()),
            pa.field("input", pa.string()),
            pa.field("size", pa.int64()),
            pa.field("mtime", pa.float64()),
            pa.field("content_hash", pa.string()),
            pa.field("run_id", pa.string()),
            pa.field("fingerprint", pa.string()),
            pa.field("pipeline", pa.string()),
        ]
    )


class InputsMemory:
    """Reads, consults and stages a store's inputs memory.

    Args:
        layout: the store's paths.
        manifests: a callable giving the committed manifests in order (the fallback source).
        run_inputs: a callable giving one manifest's per-input rows.
    """

    def __init__(self, layout: Layout, manifests: Any, run_inputs: Any) -> None:
        self.layout = layout
        self._manifests = manifests
        self._run_inputs = run_inputs
        #: the memory as last read: a run reads it to skip inputs, to account and to stage
        #: (on an object store each read was a HEAD and GETs of its own: 24 requests of a
        #: small run's 84); forgotten when a commit may change it
        self._table: pa.Table | None = None

    # reading

    def read(self) -> pa.Table | None:
        """``_etl/inputs.pq`` as a table of the memory's schema (None if absent or unreadable).

        Older memories lack ``fingerprint`` and ``pipeline`` (null) or call the content hash
        ``sha256``.
        """
        import pyarrow as pa

        try:  # a memory that is not there is read as None, like an unreadable one
            table = read_parquet(self.layout.inputs_path)
            names = table.schema.names
            if "content_hash" not in names and "sha256" in names:
                table = table.rename_columns(
                    ["content_hash" if n == "sha256" else n for n in names]
                )
            for name in ("fingerprint", "pipeline"):
                if name not in table.schema.names:
                    table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
            schema = memory_schema()
            return table.select(schema.names).cast(schema)
        except Exception:  # unreadable memory: the caller falls back to the manifests
            return None

    def table(self) -> pa.Table:
        """The memory, from its file or rebuilt from the manifests (read once until
        :meth:`stage` or :meth:`forget` says it may change)."""
        import pyarrow as pa

        if self._table is not None:
            return self._table
        table = self.read()
        if table is None:
            rows = self._from_manifests()
            schema = memory_schema()
            if rows:
                table = pa.Table.from_pylist(rows, schema=schema)
            else:  # not schema.empty_table(): its first call imports pandas (0.2 s)
                table = pa.Table.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)
        self._table = table
        return table

    def forget(self) -> None:
        """Read the memory again next time (a commit or a recovery may have changed it)."""
        self._table = None

    def remembered(self) -> dict[str, tuple[Any, Any, Any, Any]]:
        """``{key_digest: (size, mtime, content_hash, fingerprint)}`` of every remembered input."""
        table = self.table()
        columns = ("key", "size", "mtime", "content_hash", "fingerprint")
        cols = [table.column(c).to_pylist() for c in columns]
        return {k: (sz, mt, h, fp) for k, sz, mt, h, fp in zip(*cols, strict=True)}

    def _from_manifests(self) -> list[dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for manifest in self._manifests():
            if manifest.get("sink_mode") == "overwrite":
                rows = {}
            for entry in self._run_inputs(manifest):
                if not entry.get("remembered", True):
                    continue
                if entry.get("size") is None and entry.get("fingerprint") is None:
                    continue
                key = entry.get("key") or key_digest(entry["input"])
                rows[key] = {
                    "key": key,
                    "input": entry["input"],
                    "size": entry.get("size"),
                    "mtime": entry.get("mtime"),
                    # runs before the content hash had SHA-256 (compared as one)
                    "content_hash": entry.get("content_hash") or entry.get("sha256"),
                    "run_id": manifest.get("run_id"),
                    "fingerprint": entry.get("fingerprint"),
                    "pipeline": entry.get("pipeline"),
                }
        return list(rows.values())

    # deciding

    def changed(self, units: Sequence[WorkUnit]) -> list[WorkUnit]:
        """The units to read: those not remembered, or remembered with other contents."""
        return self.sort(units, None)[0]

    def sort(
        self, units: Sequence[WorkUnit], pipelines: Sequence[str] | None
    ) -> tuple[list[WorkUnit], int]:
        """The units to read, and how many of the others (unchanged, so skipped) were
        ingested by another pipeline (``pipelines``: the digest of each source index; an
        input remembered without one, from before digests were kept, is not counted)."""
        table = self.table()
        if not table.num_rows:
            return list(units), 0
        columns = ("key", "size", "mtime", "content_hash", "fingerprint", "pipeline")
        cols = [table.column(c).to_pylist() for c in columns]
        known = {k: rest for k, *rest in zip(*cols, strict=True)}
        kept = []
        stale = 0
        for unit in units:
            ref = unit.input
            seen = known.get(key_digest(ref.key))
            if seen is not None and _unchanged(ref, seen[:4]):
                if pipelines is not None and seen[4] not in (None, pipelines[unit.source_index]):
                    stale += 1
                continue
            kept.append(unit)
        return kept, stale

    def account(
        self, units: Sequence[WorkUnit], rows: InputRows, pipelines: Sequence[str] = ()
    ) -> InputRows:
        """The run's per-input account with ``key``, ``fingerprint``, ``content_hash``,
        ``pipeline`` (the digest of each source index, from ``pipelines``) and
        ``remembered`` filled in.

        Remembered: inputs read completely (``complete``: no failure that may pass) that
        have a fingerprint, or are local files unchanged since they were listed. Not
        remembered, so read again next run: inputs whose reading failed in a way that may
        pass, inputs with nothing to recognise them by (a URL without an ETag), and files
        that changed while the run read them.
        """
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from etl.accounting import InputRows

        table = rows.table
        n = len(units)
        fingerprints = [u.input.fingerprint for u in units]
        has_fp = np.fromiter((f is not None for f in fingerprints), bool, count=n)
        complete = table.column("complete").to_numpy(zero_copy_only=False)
        sized = pc.and_(
            pc.is_valid(table.column("size")), pc.is_valid(table.column("mtime"))
        ).to_numpy(zero_copy_only=False)
        eligible = complete & (has_fp | sized)
        digests = table.column("content_hash").to_pylist()
        unhashed = pc.is_null(table.column("content_hash")).to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(eligible & unhashed & ~has_fp):
            # a file the source did not hash: hash it now, if it is as it was listed
            ref = units[i].input
            try:
                st = os.stat(ref.key)
            except (OSError, ValueError):
                eligible[i] = False
                continue
            if st.st_size != ref.size or st.st_mtime != ref.mtime:
                eligible[i] = False  # changed while we read it: read it again next time
                continue
            digests[i] = file_content_hash(ref.key)
            eligible[i] = digests[i] is not None
        remembered = pa.array(eligible)
        # NOT_HASHED (a file not read past a limit) is remembered by size and mtime only
        hashes = pa.array([d or None for d in digests], pa.string())
        columns = {
            "content_hash": pc.if_else(remembered, hashes, None),
            "key": pa.array([key_digest(u.key) for u in units], pa.string()),
            "remembered": remembered,
            "fingerprint": pa.array(fingerprints, pa.string()),
            "pipeline": pa.array(
                [pipelines[u.source_index] if pipelines else None for u in units], pa.string()
            ),
        }
        for name, column in columns.items():
            index = table.schema.get_field_index(name)
            table = (
                table.set_column(index, name, column)
                if index >= 0
                else table.append_column(name, column)
            )
        return InputRows(table)

    # committing

    def stage(self, run_id: str, rows: InputRows | None, *, replace: bool) -> str:
        """Write the memory as it will be after this run into the run's staging folder.

        Returns its path relative to the root. ``rows``: the run's account (its remembered
        rows are added); ``replace`` forgets every earlier input (overwrite mode).
        """
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        schema = memory_schema()
        columns = ["key", "input", "size", "mtime", "content_hash", "fingerprint", "pipeline"]
        if rows is None:
            new = schema.empty_table()
        else:
            remember = rows.table.filter(rows.table.column("remembered"))
            new = remember.select(columns)
            new = new.append_column("run_id", pa.repeat(pa.scalar(run_id), new.num_rows))
            new = new.select(schema.names).cast(schema)
        table = new
        if not replace:
            old = self.table()
            if old.num_rows:
                # an input read again replaces what was remembered of it
                old = old.filter(pc.invert(pc.is_in(old.column("key"), value_set=new["key"])))
                table = pa.concat_tables([old, new])
        staged = self.layout.staging(run_id) / f"inputs{STAGED_SUFFIX}"
        # paths, keys and hashes are distinct: a dictionary only for the run ids
        where, fs = arrow(staged)
        pq.write_table(table, where, filesystem=fs, compression="zstd", use_dictionary=["run_id"])
        self.forget()  # the commit makes it the memory, or rolls back
        return self.layout.relative(staged)


def _unchanged(ref: Any, seen: tuple[Any, Any, Any, Any]) -> bool:
    size, mtime, digest, fingerprint = seen
    if ref.fingerprint is not None:
        return fingerprint is not None and fingerprint == ref.fingerprint
    if ref.size is None or ref.mtime is None or size != ref.size:
        return False
    if mtime == ref.mtime:
        return True
    return digest is not None and file_content_hash(ref.key, digest) == digest
