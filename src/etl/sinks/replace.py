"""Replacing committed rows of a Parquet dataset folder, staged for the next commit.

What the parquet sink's ``mode = "merge"`` and ``etl run --reprocess`` need
(:class:`~etl.plugin.ReplacesRows`). Matching rows are marked file by file (reading only
the matched column and ``id``). At prepare, each file that loses rows is rewritten into
the run's staging folder without them and *with the run's new rows that replace them*
(same key, same partition folder), to take the original's place with one ``rename`` at
commit: a reader sees the old version or the new one, never both and never neither, even
if the run dies between two renames. A new row that moves to another partition (its
partition column changed) stays in a new file; a reader in between may then see both
versions for the moment between two renames (or, after a crash there, until the next run
or ``etl recover`` finishes the commit).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from etl.store import STAGED_SUFFIX, Layout
from etl.store.fs import StorePath, arrow
from etl.store.fsio import read_parquet


@dataclass
class _Marked:
    """A committed file that loses rows: which, and by what values of which columns."""

    mask: np.ndarray
    values: dict[str, list[pa.Array]] = field(default_factory=dict)
    moved: list[pa.Table] = field(default_factory=list)


class RowRemovals:
    """The committed rows a run will replace, by data file.

    Args:
        layout: the dataset's paths.
    """

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        #: relative path of a data file -> what it loses
        self.marked: dict[str, _Marked] = {}

    def mark(self, column: str, values: pa.Array) -> pa.Array:
        """Mark the rows whose ``column`` holds one of ``values``; return the ids of the rows
        newly marked. A file without the column (written before it existed) has no match."""
        removed: list[pa.Array] = []
        if not len(values):
            return pa.array([], pa.string())
        for path in self.layout.data_files():
            where, fs = arrow(path)
            source = pq.ParquetFile(where, filesystem=fs)
            try:
                if column not in source.schema_arrow.names:
                    continue
                table = source.read(columns=list(dict.fromkeys([column, "id"])))
            finally:
                source.close()
            matched = table.column(column)
            wanted = values.cast(matched.type) if values.type != matched.type else values
            hit = pc.fill_null(pc.is_in(matched, value_set=wanted), False)
            hit = hit.to_numpy(zero_copy_only=False)
            rel = self.layout.relative(path)
            entry = self.marked.get(rel)
            new = hit if entry is None else hit & ~entry.mask
            if not new.any():
                continue
            if entry is None:
                entry = self.marked[rel] = _Marked(np.zeros(len(hit), bool))
            entry.mask |= new
            entry.values.setdefault(column, []).append(matched.filter(pa.array(new)))
            removed.append(table.column("id").filter(pa.array(new)))
        if not removed:
            return pa.array([], pa.string())
        return pa.chunked_array(removed, pa.string()).combine_chunks()

    def stage(
        self, staging: StorePath, options: Any, new_files: list[tuple[StorePath, str]]
    ) -> tuple[list[list[str]], list[str], list[tuple[StorePath, str]]]:
        """Rewrite every marked file without its marked rows, with the new rows that replace
        them, into ``staging``.

        Args:
            staging: where the rewritten files go.
            options: the sink's options (compression).
            new_files: the run's staged files, ``(staged path, final relative path)``.

        Returns:
            ``(rewrites, deletes, new_files)``: ``[staged, final]`` pairs (relative), the
            files that are left with no row, and the run's staged files without the rows
            moved into rewritten files (a file left with no row is gone from the list).
        """
        if not self.marked:
            return [], [], new_files
        remaining = [self._take_replacements(staged, final, options) for staged, final in new_files]
        rewrites: list[list[str]] = []
        deletes: list[str] = []
        for n, (rel, entry) in enumerate(sorted(self.marked.items())):
            kept = read_parquet(self.layout.inside(rel)).filter(pa.array(~entry.mask))
            table = pa.concat_tables([kept, *entry.moved], promote_options="permissive")
            if not table.num_rows:
                deletes.append(rel)
                continue
            staged = staging / f"kept-{n:05d}{STAGED_SUFFIX}"
            _write(table, staged, options)
            rewrites.append([self.layout.relative(staged), rel])
        return rewrites, deletes, [item for item in remaining if item is not None]

    def _take_replacements(
        self, staged: StorePath, final: str, options: Any
    ) -> tuple[StorePath, str] | None:
        """Move the rows of a new staged file that replace marked rows of a committed file
        in the same folder to that file's rewrite; rewrite the staged file without them."""
        folder = posixpath.dirname(final)
        targets = [
            (rel, entry) for rel, entry in self.marked.items() if posixpath.dirname(rel) == folder
        ]
        if not targets:
            return staged, final
        table = read_parquet(staged)
        left = np.ones(table.num_rows, bool)
        for _, entry in targets:
            take = np.zeros(table.num_rows, bool)
            for column, pieces in entry.values.items():
                if column not in table.column_names:
                    continue
                values = pa.chunked_array(pieces).combine_chunks()
                hit = pc.fill_null(pc.is_in(table.column(column), value_set=values), False)
                take |= hit.to_numpy(zero_copy_only=False)
            take &= left
            if take.any():
                entry.moved.append(table.filter(pa.array(take)))
                left &= ~take
        if left.all():
            return staged, final
        staged.unlink()
        if not left.any():
            return None
        _write(table.filter(pa.array(left)), staged, options)
        return staged, final


def _write(table: pa.Table, path: StorePath, options: Any) -> None:
    from etl.sinks.parquet import dictionary_columns

    path.parent.mkdir(parents=True, exist_ok=True)
    where, fs = arrow(path)
    pq.write_table(
        table,
        where,
        filesystem=fs,
        compression=options.compression,
        compression_level=options.compression_level,
        use_dictionary=dictionary_columns(table.schema),
        row_group_size=options.row_group_size,
    )
