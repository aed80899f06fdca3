"""The ``dedup`` transform: exact duplicates by id, near duplicates by MinHash with LSH.

Exact: an article whose ``id`` (the hash of its text) was seen earlier in the run, or is
already in the dataset named by ``dataset``, is a duplicate.

Near: each text's word ``shingle``-grams get a one-permutation MinHash signature of
``num_perm`` bins (etl.transforms.minhash: words cut on the UTF-8 bytes of the whole batch
with numpy, one hash per shingle and group of 128 bins, the minimum per bin). The first 128
bins are cut into ``bands`` of ``rows``, chosen for ``threshold`` as datasketch does
(minimising the weighted false positive and false negative areas); an article that shares a
band with a kept article and whose estimated Jaccard similarity with it (the share of equal
bins over the whole signature) is at least ``threshold`` is a near duplicate of it. Memory
holds one signature (``num_perm`` x 4 bytes) and ``bands`` dictionary entries per kept
article, and no text.

Under workers (``processes``, ``dask``) with ``action = "drop"`` the decision is the
driver's (:class:`~etl.plugin.DecidesOnDriver`): each worker computes its rows' signatures
and band keys (:meth:`DedupTransform.notes`), and the driver runs the loop below
(:meth:`DedupTransform.decide`) on one index for the whole run, in unit order, so every
executor keeps the ids ``local`` keeps. Exact duplicates are decided there too.
"""

from __future__ import annotations

from itertools import chain, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from etl.plugin import DecidesOnDriver, Option, Transform
from etl.schema import extend_schema, first_seen, set_column
from etl.transforms.minhash import (
    LSH_BINS,
    band_keys,
    minhash_signatures,
    optimal_bands,
    shingle_hashes,
    word_hashes,
)

if TYPE_CHECKING:
    from etl.context import Context


class DedupTransform(Transform, DecidesOnDriver):
    """Drop (or mark) exact duplicates by id and near duplicates by MinHash/LSH."""

    name = "dedup"
    options = (
        Option(
            "method",
            "str",
            "exact",
            help="exact (same id) or near (MinHash/LSH; exact duplicates too)",
            choices=("exact", "near"),
        ),
        Option(
            "action",
            "str",
            "drop",
            help="drop duplicates, or mark them in a duplicate_of column (the kept id)",
            choices=("drop", "mark"),
        ),
        Option(
            "threshold",
            "float",
            0.8,
            min=0,
            min_exclusive=True,
            max=1,
            help="near: Jaccard similarity that makes a duplicate",
        ),
        Option(
            "num_perm",
            "int",
            256,
            min=2,
            max=1024,
            help="near: signature length (one-permutation MinHash bins; the bands use 128)",
        ),
        Option("shingle", "int", 5, min=1, max=32, help="near: words per shingle"),
        Option("seed", "int", 1, help="near: seed of the hash functions"),
        Option(
            "dataset",
            "path",
            None,
            help='also drop ids already in this Parquet dataset; "sink": the parquet sink\'s',
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.opts
        self.from_sink = self.config.get("dataset") == "sink"
        # candidates come from bands over the first 128 bins (at 0.8: 16 x 8, which finds
        # 99.96% of the pairs at the threshold); the rest of the signature only sharpens the
        # check of a candidate, so more bins cost no more dictionary entries
        self.bands, self.rows = optimal_bands(o.threshold, min(o.num_perm, LSH_BINS))
        self._reset()

    def _reset(self) -> None:
        self.seen: set[str] = set()
        # band key -> the first kept article with it (keys of different bands differ)
        self.index: dict[int, int] = {}
        # kept articles' signatures in rows [0, len(kept_ids)); grown by doubling, since
        # concatenating per batch would copy them all every batch
        self.signatures = np.zeros((1024, self.opts.num_perm), dtype=np.uint32)
        self.kept_ids: list[str] = []

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        if self.opts.action == "mark":
            return extend_schema(schema, [pa.field("duplicate_of", pa.string())])
        return schema

    def open(self, run: Any) -> None:
        self._reset()
        path = self.opts.dataset
        if self.from_sink:
            from etl.transforms import SINK_DATASET

            # set by this package's etl_before_run hook from the pipeline's [sink]; absent in
            # executor workers, where the sink drops known ids when it adopts their files
            path = getattr(run, "extra", {}).get(SINK_DATASET)
        if path and not getattr(run, "full", False):
            self.seen = existing_ids(Path(path))

    # deciding on the driver (under workers)

    def decides_on_driver(self) -> bool:
        """Near duplicates, and dropping exact ones, are decided on the driver, over the
        whole run. Marking exact duplicates stays on the workers: a row with the id of an
        earlier one is dropped by the sink anyway, marked or not."""
        return self.opts.method == "near" or self.opts.action == "drop"

    def driver_problem(self) -> str | None:
        if self.opts.action == "mark":
            return (
                'action = "mark" fills duplicate_of in the row itself, but under workers the '
                "driver decides near duplicates after the workers passed their rows on, and "
                "can only drop them"
            )
        return None

    def notes(self, batch: pa.RecordBatch, ctx: Context) -> Any:
        """Each row's id and, for near dedup, its signature and band keys."""
        ids = batch.column("id").to_pylist()
        if self.opts.method != "near" or not ids:
            return ids, None, None
        return ids, *self._signed(batch.column("text"))

    def decide(self, notes: Any, ctx: Context) -> list[str | None]:
        ids, sigs, keys = notes
        dup_of, fresh = self._exact(ids, ctx)
        if sigs is not None and fresh:
            if len(fresh) < len(ids):
                take = np.asarray(fresh, np.int64)
                sigs, keys = sigs[take], keys[take]
            self._count_near(self._near(sigs, keys, fresh, ids, dup_of), ctx)
        return dup_of

    # processing

    def _exact(self, ids: list[str], ctx: Context) -> tuple[list[str | None], list[int]]:
        """(the id each exact duplicate repeats, None for the others; the others' rows)."""
        n = len(ids)
        dup_of: list[str | None] = [None] * n
        keep = first_seen(ids, self.seen)
        if keep is None:
            return dup_of, list(range(n))
        fresh = [i for i, new in enumerate(keep) if new]
        for i, new in enumerate(keep):
            if not new:
                dup_of[i] = ids[i]
        if n - len(fresh):
            ctx.count("dedup exact duplicates", n - len(fresh))
        return dup_of, fresh

    def _signed(self, text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(MinHash signatures, (n, bands) uint64 band keys) of each text."""
        o = self.opts
        sigs = minhash_signatures(text, o.num_perm, o.shingle, o.seed)
        return sigs, band_keys(sigs, self.bands, self.rows)

    @staticmethod
    def _count_near(near: int, ctx: Context) -> None:
        if near:
            ctx.count("dedup near duplicates", near)

    def process(self, batch: pa.RecordBatch, ctx: Context) -> pa.RecordBatch:
        ids = batch.column("id").to_pylist()
        dup_of, fresh = self._exact(ids, ctx)
        exact = len(ids) - len(fresh)
        near = 0
        if self.opts.method == "near" and fresh:
            text = batch.column("text")
            if len(fresh) < batch.num_rows:
                text = text.take(pa.array(fresh, pa.int64()))
            near = self._near(*self._signed(text), fresh, ids, dup_of)
            self._count_near(near, ctx)
        if self.opts.action == "mark":
            return set_column(batch, "duplicate_of", pa.array(dup_of, pa.string()))
        if exact or near:
            keep = pa.array([d is None for d in dup_of], pa.bool_())
            return batch.filter(keep)
        return batch

    def _near(
        self,
        sigs: np.ndarray,
        keys: np.ndarray,
        fresh: list[int],
        ids: list[str],
        dup_of: list[str | None],
    ) -> int:
        """Near duplicates among the ``fresh`` rows (their signatures and band keys, in
        order) against the index, which takes the kept ones; fills ``dup_of``."""
        o = self.opts
        n = len(fresh)
        flat = keys.ravel()
        get = self.index.get
        owners = [get(k) for k in flat.tolist()]
        known = np.array([w is not None for w in owners], dtype=np.bool_).reshape(n, self.bands)
        # a key also held by an earlier article of this batch makes a candidate too
        _, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
        earlier = (first[inverse] // self.bands).reshape(n, self.bands) < np.arange(n)[:, None]
        candidate = (known | earlier).any(axis=1)
        # an article with no candidate is kept, and none of its keys is in the index yet
        # nor held by an earlier article of the batch: add them all at once; the articles
        # with candidates then go in order (a key they share is always with an earlier one)
        alone = np.flatnonzero(~candidate)
        base = len(self.kept_ids)
        self._keep(sigs[alone], [ids[fresh[j]] for j in alone])
        # one int object per article shared by its bands' entries (not one per entry: 0.4 KB
        # per kept article)
        owners = chain.from_iterable(
            map(repeat, range(base, base + len(alone)), repeat(self.bands))
        )
        self.index.update(zip(keys[alone].ravel().tolist(), owners, strict=True))
        need = o.threshold * o.num_perm
        found = 0
        for j in np.flatnonzero(candidate).tolist():
            sig = sigs[j]
            match = -1
            for key in keys[j].tolist():
                owner = get(key)
                if owner is not None and np.count_nonzero(self.signatures[owner] == sig) >= need:
                    match = owner
                    break
            if match >= 0:
                dup_of[fresh[j]] = self.kept_ids[match]
                found += 1
                continue
            owner = len(self.kept_ids)
            self._keep(sigs[j : j + 1], [ids[fresh[j]]])
            for key in keys[j].tolist():
                self.index.setdefault(key, owner)
        return found

    def _keep(self, sigs: np.ndarray, ids: list[str]) -> None:
        """Append kept articles' signatures and ids."""
        have, add = len(self.kept_ids), len(ids)
        if have + add > len(self.signatures):
            grown = np.zeros((max(2 * len(self.signatures), have + add), sigs.shape[1]), np.uint32)
            grown[:have] = self.signatures[:have]
            self.signatures = grown
        self.signatures[have : have + add] = sigs
        self.kept_ids.extend(ids)


def existing_ids(path: Path) -> set[str]:
    """The ids already committed in the parquet-sink dataset at ``path`` (empty if none)."""
    from etl.store import Store as Dataset

    return Dataset(path).ids() if path.exists() else set()


__all__ = [
    "DedupTransform",
    "band_keys",
    "existing_ids",
    "minhash_signatures",
    "optimal_bands",
    "shingle_hashes",
    "word_hashes",
]
