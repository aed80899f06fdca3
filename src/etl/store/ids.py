"""The id index: the ids of every committed article, whatever sink wrote them.

Each commit adds ``_etl/ids/<run>.ids.pq`` (one column, the ids that run wrote); opening a
store for an append run reads them all into a set. The framework drops a row whose id the
set holds before any sink sees it, so the parquet sink, the delta sink and a stranger's
sink are deduplicated alike. A dataset written before the index existed has manifests but
no ``_etl/ids``: its ids are read once from its data files (the caller's fallback).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl.store.layout import IDS_SUFFIX, STAGED_SUFFIX, Layout

if TYPE_CHECKING:
    import pyarrow as pa


class IdIndex:
    """Reads and stages a store's id index."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def exists(self) -> bool:
        return self.layout.ids_dir.is_dir()

    def files(self) -> list[str]:
        folder = self.layout.ids_dir
        return sorted(str(p) for p in folder.glob(f"*{IDS_SUFFIX}")) if folder.is_dir() else []

    def ids(self) -> set[str]:
        """Every id the index holds."""
        return id_set(self.files())

    def stage(self, run_id: str, ids: pa.Array) -> str:
        """Write this run's ids into its staging folder; return the path relative to the root."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        staged = self.layout.staging(run_id) / f"ids{STAGED_SUFFIX}"
        table = pa.table({"id": ids.cast(pa.string())})
        pq.write_table(table, staged, compression="zstd", use_dictionary=False)
        return self.layout.relative(staged)

    def final(self, run_id: str) -> str:
        return self.layout.relative(self.layout.ids_dir / f"{run_id}{IDS_SUFFIX}")


def id_set(files: list[str]) -> set[str]:
    """The ``id`` column of Parquet files, as a set (one column read)."""
    import pyarrow.dataset as pads

    if not files:
        return set()
    table = pads.dataset(files, format="parquet").to_table(columns=["id"])
    return set(table.column("id").to_pylist())
