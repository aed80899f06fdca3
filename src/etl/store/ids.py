"""The id index: the ids of every committed article, whatever sink wrote them.

Each commit adds ``_etl/ids/<run>.ids.pq`` (the ids that run wrote, each with the key digest
of the input it came from); opening a store for an append run reads the ids into a set. A
commit that replaces rows (``mode = "merge"``, ``--reprocess``) rewrites the files that held
the removed ids without them, so a text removed may come back as a new row. The framework drops a row whose id the
set holds before any sink sees it, so the parquet sink, the delta sink and a stranger's
sink are deduplicated alike. A dataset written before the index existed has manifests but
no ``_etl/ids``: its ids are read once from its data files (the caller's fallback).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl.store.fs import ObjectPath, StorePath, arrow
from etl.store.fsio import read_parquet
from etl.store.layout import IDS_SUFFIX, STAGED_SUFFIX, Layout

if TYPE_CHECKING:
    import pyarrow as pa


class IdIndex:
    """Reads and stages a store's id index."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def exists(self) -> bool:
        return self.layout.ids_dir.is_dir()

    def files(self) -> list[StorePath]:
        return sorted(self.layout.ids_dir.glob(f"*{IDS_SUFFIX}"))  # none if no folder

    def ids(self, files: list[StorePath] | None = None) -> set[str]:
        """Every id the index holds (in ``files``, when the caller has listed them)."""
        files = self.files() if files is None else files
        if files and isinstance(files[0], ObjectPath):
            return _object_id_set(files)  # type: ignore[arg-type]
        return id_set(files)

    def stage(self, run_id: str, ids: pa.Array, inputs: pa.Array | None = None) -> str:
        """Write this run's ids (and the key digest of each one's input) into its staging
        folder; return the path relative to the root."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        staged = self.layout.staging(run_id) / f"ids{STAGED_SUFFIX}"
        if inputs is None:
            inputs = pa.nulls(len(ids), pa.string())
        table = pa.table({"id": ids.cast(pa.string()), "input": inputs.cast(pa.string())})
        where, fs = arrow(staged)
        pq.write_table(table, where, filesystem=fs, compression="zstd", use_dictionary=["input"])
        return self.layout.relative(staged)

    def of_inputs(self, keys: pa.Array) -> pa.Table | None:
        """``id`` and ``input`` of the ids that came from the inputs whose key digests are
        ``keys``; None when some run's ids are not known by input (written before the
        index kept them)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        found = []
        for path in self.files():
            table = read_parquet(path)
            if "input" not in table.schema.names or table.column("input").null_count:
                return None
            table = table.select(["id", "input"]).cast(
                pa.schema([("id", pa.string()), ("input", pa.string())])
            )
            found.append(table.filter(pc.is_in(table.column("input"), value_set=keys)))
        if not found:
            return pa.table({"id": pa.array([], pa.string()), "input": pa.array([], pa.string())})
        return pa.concat_tables(found)

    def stage_removal(self, run_id: str, removed: pa.Array) -> tuple[list[list[str]], list[str]]:
        """Stage the index files that hold ``removed`` ids, rewritten without them.

        Returns ``(renames, deletes)`` for the commit record: each rewritten file replaces
        its original; a file left empty is deleted.
        """
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        renames: list[list[str]] = []
        deletes: list[str] = []
        if not len(removed):
            return renames, deletes
        staging = self.layout.staging(run_id)
        for n, path in enumerate(self.files()):
            table = read_parquet(path)
            gone = pc.is_in(table.column("id"), value_set=removed)
            if not pc.any(gone).as_py():
                continue
            final = self.layout.relative(path)
            kept = table.filter(pc.invert(gone))
            if not kept.num_rows:
                deletes.append(final)
                continue
            staged = staging / f"ids-kept-{n:05d}{STAGED_SUFFIX}"
            dictionary = [c for c in ("input",) if c in kept.schema.names]
            where, fs = arrow(staged)
            pq.write_table(
                kept, where, filesystem=fs, compression="zstd", use_dictionary=dictionary
            )
            renames.append([self.layout.relative(staged), final])
        return renames, deletes

    def final(self, run_id: str) -> str:
        return self.layout.relative(self.layout.ids_dir / f"{run_id}{IDS_SUFFIX}")


def id_set(files: list[StorePath] | list[str]) -> set[str]:
    """The ``id`` column of Parquet files (all on one filesystem), as a set (one column
    read)."""
    if not files:
        return set()
    import pyarrow.dataset as pads  # only now: its import imports pandas (0.2 s)

    found = [arrow(f) if not isinstance(f, str) else (f, None) for f in files]
    paths = [str(where) for where, _ in found]
    table = pads.dataset(paths, format="parquet", filesystem=found[0][1]).to_table(columns=["id"])
    return set(table.column("id").to_pylist())


def _object_id_set(files: list[ObjectPath]) -> set[str]:
    """:func:`id_set` of the index's files on an object store: fetched together, one GET
    each (they are small; a dataset reader would ask for each one's size and footer)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [
        pq.read_table(pa.BufferReader(data), columns=["id"]) for data in files[0].read_many(files)
    ]
    return set(pa.concat_tables(tables, promote_options="permissive").column("id").to_pylist())
