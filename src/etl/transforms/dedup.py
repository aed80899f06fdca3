"""The ``dedup`` transform: exact duplicates by id, near duplicates by MinHash with LSH.

Exact: an article whose ``id`` (the hash of its text) was seen earlier in the run, or is
already in the dataset named by ``dataset``, is a duplicate.

Near: each text is lower-cased, cut into words (letters and digits), and its word
``shingle``-grams are hashed with numpy (a polynomial hash over the UTF-8 bytes of the whole
batch at once, then a 64-bit mixer); ``num_perm`` hash functions ``a*x + b (mod 2**64)`` give
the MinHash signature (minimum per function, by ``np.minimum.reduceat``). Signatures are cut
into ``bands`` of ``rows``, chosen for ``threshold`` as datasketch does (minimising the
weighted false positive and false negative areas); an article that shares a band with a kept
article and whose estimated Jaccard similarity with it is at least ``threshold`` is a near
duplicate of it. Memory holds one signature (``num_perm`` x 8 bytes) and ``bands`` dictionary
entries per kept article, and no text.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.plugin import Option, Transform
from etl.schema import extend_schema, first_seen, set_column

if TYPE_CHECKING:
    from etl.context import Context

_MASK64 = (1 << 64) - 1
_PRIME = np.uint64(1099511628211)  # FNV prime: odd, so invertible modulo 2**64
_SHINGLE_BASE = np.uint64(0x9E3779B97F4A7C15)
# numpy 2 renamed trapz to trapezoid; the core allows numpy 1.24+
_trapezoid = getattr(np, "trapezoid", None) or np.trapz

#: most shingle x permutation cells held at once while hashing (bounds the scratch memory)
_CELLS = 1 << 18  # 2 MB: stays in cache; 4x faster here than 32 MB chunks


class DedupTransform(Transform):
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
            128,
            min=2,
            max=1024,
            help="near: MinHash permutations (signature length)",
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
        self.bands, self.rows = optimal_bands(o.threshold, o.num_perm)
        self._reset()

    def _reset(self) -> None:
        self.seen: set[str] = set()
        self.index: list[dict[int, int]] = [{} for _ in range(self.bands)]
        self.signatures = np.zeros((0, self.opts.num_perm), dtype=np.uint64)
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

    # processing

    def process(self, batch: pa.RecordBatch, ctx: Context) -> pa.RecordBatch:
        n = batch.num_rows
        ids = batch.column("id").to_pylist()
        dup_of: list[str | None] = [None] * n
        keep = first_seen(ids, self.seen)
        if keep is None:
            fresh = list(range(n))
        else:
            fresh = [i for i, new in enumerate(keep) if new]
            for i, new in enumerate(keep):
                if not new:
                    dup_of[i] = ids[i]
        exact = n - len(fresh)
        near = 0
        if self.opts.method == "near" and fresh:
            near = self._near(batch, fresh, ids, dup_of)
        if exact:
            ctx.count("dedup exact duplicates", exact)
        if near:
            ctx.count("dedup near duplicates", near)
        if self.opts.action == "mark":
            return set_column(batch, "duplicate_of", pa.array(dup_of, pa.string()))
        if exact or near:
            keep = pa.array([d is None for d in dup_of], pa.bool_())
            return batch.filter(keep)
        return batch

    def _near(
        self, batch: pa.RecordBatch, fresh: list[int], ids: list[str], dup_of: list[str | None]
    ) -> int:
        o = self.opts
        text = batch.column("text").take(pa.array(fresh, pa.int64()))
        sigs = minhash_signatures(text, o.num_perm, o.shingle, o.seed)
        keys = band_keys(sigs, self.bands, self.rows)  # (n, bands) uint64
        found = 0
        new_sigs = []
        base = len(self.kept_ids)
        keys_list = keys.tolist()
        for j, row in enumerate(fresh):
            sig = sigs[j]
            match = -1
            for band, key in enumerate(keys_list[j]):
                owner = self.index[band].get(key)
                if owner is None:
                    continue
                other = (
                    self.signatures[owner]
                    if owner < len(self.signatures)
                    else new_sigs[owner - len(self.signatures)]
                )
                if np.count_nonzero(other == sig) >= o.threshold * o.num_perm:
                    match = owner
                    break
            if match >= 0:
                dup_of[row] = self.kept_ids[match]
                found += 1
                continue
            owner = base + len(new_sigs)
            new_sigs.append(sig)
            self.kept_ids.append(ids[row])
            for band, key in enumerate(keys_list[j]):
                self.index[band].setdefault(key, owner)
        if new_sigs:
            self.signatures = np.concatenate([self.signatures, np.stack(new_sigs)])
        return found


def existing_ids(path: Path) -> set[str]:
    """The ids already committed in the parquet-sink dataset at ``path`` (empty if none)."""
    from etl.store import Store as Dataset

    return Dataset(path).ids() if path.exists() else set()


# ---------------------------------------------------------------------------------------------
# MinHash, vectorised


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the 64 output bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _string_hashes(tokens: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string of ``tokens``, from its UTF-8 bytes, without a Python loop.

    h(s) = sum(s[i] * P**i) over the bytes, computed from prefix sums over the whole data
    buffer: (H[end] - H[start]) * P**-start, all modulo 2**64 (numpy's uint64 wraps).
    """
    if isinstance(tokens, pa.ChunkedArray):
        tokens = tokens.combine_chunks()
    n = len(tokens)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    offsets = np.frombuffer(tokens.buffers()[1], dtype=np.int32)[
        tokens.offset : tokens.offset + n + 1
    ]
    start0, end0 = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(tokens.buffers()[2], dtype=np.uint8)[start0:end0].astype(np.uint64)
    offsets = (offsets - start0).astype(np.int64)
    m = len(data)
    with np.errstate(over="ignore"):
        powers = np.empty(m + 1, dtype=np.uint64)
        powers[0] = 1
        if m:
            powers[1:] = _PRIME
            powers = np.cumprod(powers, dtype=np.uint64)
        inverse = np.uint64(pow(int(_PRIME), -1, 1 << 64))
        inv_powers = np.empty(m + 1, dtype=np.uint64)
        inv_powers[0] = 1
        if m:
            inv_powers[1:] = inverse
            inv_powers = np.cumprod(inv_powers, dtype=np.uint64)
        prefix = np.zeros(m + 1, dtype=np.uint64)
        # +1 so that a zero byte still contributes
        np.cumsum((data + np.uint64(1)) * powers[:m], dtype=np.uint64, out=prefix[1:])
        starts, ends = offsets[:-1], offsets[1:]
        raw = (prefix[ends] - prefix[starts]) * inv_powers[starts]
        return _mix64(raw + (ends - starts).astype(np.uint64))


def shingle_hashes(text: pa.Array, shingle: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every ``shingle``-word shingle of each text, and each text's first index.

    Returns ``(hashes, starts)``: the shingles of text ``i`` are
    ``hashes[starts[i]:starts[i+1]]``; a text with fewer words than ``shingle`` has one
    shingle of all its words, an empty text one shingle of nothing.
    """
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    cleaned = pc.replace_substring_regex(pc.utf8_lower(pc.fill_null(text, "")), r"[^\pL\pN]+", " ")
    trimmed = pc.utf8_trim(cleaned, " ")
    # "" splits into [""]: make that no words at all
    words = pc.if_else(
        pc.equal(trimmed, ""),
        pa.scalar([], pa.list_(pa.string())),
        pc.split_pattern(trimmed, " "),
    )
    counts = pc.list_value_length(words).to_numpy(zero_copy_only=False).astype(np.int64)
    # hash each distinct word once: a batch of news has far fewer distinct words than words
    encoded = pc.dictionary_encode(words.flatten())
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    word_hashes = _string_hashes(encoded.dictionary)
    token_hashes = word_hashes[encoded.indices.to_numpy(zero_copy_only=False)]
    n = len(counts)
    doc_starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=doc_starts[1:])
    total = int(doc_starts[-1])
    doc_of = np.repeat(np.arange(n), counts)
    pos_in_doc = np.arange(total) - doc_starts[:-1][doc_of] if total else np.zeros(0, np.int64)
    combined = np.zeros(total, dtype=np.uint64)
    with np.errstate(over="ignore"):
        factor = np.uint64(1)
        for r in range(shingle):
            shifted = np.zeros(total, dtype=np.uint64)
            if r < total:
                shifted[: total - r] = token_hashes[r:]
                # words past the end of their own text contribute nothing
                inside = pos_in_doc + r < counts[doc_of]
                shifted[~inside] = 0
            combined += shifted * factor
            factor = factor * _SHINGLE_BASE
        combined = _mix64(combined)
    shingles_per_doc = np.maximum(counts - shingle + 1, 1)
    valid = pos_in_doc < shingles_per_doc[doc_of]
    hashes = combined[valid]
    empty = counts == 0
    starts = np.zeros(n + 1, dtype=np.int64)
    per_doc = np.where(empty, 1, np.minimum(shingles_per_doc, counts))
    np.cumsum(per_doc, out=starts[1:])
    if empty.any():  # one shingle of nothing, so every text has a signature
        out = np.empty(int(starts[-1]), dtype=np.uint64)
        filled = np.repeat(~empty, per_doc)
        out[filled] = hashes
        out[~filled] = _mix64(np.zeros(1, dtype=np.uint64))[0]
        hashes = out
    return hashes, starts


def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, np.iinfo(np.uint64).max, size=num_perm, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, np.iinfo(np.uint64).max, size=num_perm, dtype=np.uint64)
    return a, b


def minhash_signatures(text: pa.Array, num_perm: int, shingle: int, seed: int = 1) -> np.ndarray:
    """The MinHash signature of each text: an (n, num_perm) uint64 array."""
    hashes, starts = shingle_hashes(text, shingle)
    a, b = _permutations(num_perm, seed)
    n = len(starts) - 1
    out = np.empty((n, num_perm), dtype=np.uint64)
    # whole texts per chunk, about _CELLS cells of scratch each
    per_chunk = max(_CELLS // num_perm, 1)
    doc = 0
    with np.errstate(over="ignore"):
        while doc < n:
            end = int(np.searchsorted(starts, starts[doc] + per_chunk, side="right")) - 1
            end = min(max(end, doc + 1), n)
            lo, hi = int(starts[doc]), int(starts[end])
            # the shingle hashes are mixed already; a*x + b (mod 2**64, a odd) is a
            # bijection whose high bits, which decide the minimum, depend on every bit of x
            values = hashes[lo:hi, None] * a[None, :] + b[None, :]
            out[doc:end] = np.minimum.reduceat(values, starts[doc:end] - lo, axis=0)
            doc = end
    return out


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per band of each signature: an (n, bands) uint64 array."""
    n = signatures.shape[0]
    cut = signatures[:, : bands * rows].reshape(n, bands, rows)
    keys = np.zeros((n, bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for r in range(rows):
            keys = _mix64(keys ^ cut[:, :, r])
        keys ^= np.arange(bands, dtype=np.uint64)  # a key in one band never meets another's
    return keys


def optimal_bands(
    threshold: float, num_perm: int, false_positive_weight: float = 0.05
) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false positive and false negative areas.

    The probability that two texts of Jaccard similarity s share a band is
    1 - (1 - s**rows)**bands; false positives are that area below the threshold, false
    negatives the missing area above it (as datasketch computes them). A candidate is checked
    against its signature before it counts, so a false positive of the banding costs one
    comparison while a false negative is a missed duplicate: the weights favour recall
    (0.05 / 0.95; datasketch's default is 0.5 / 0.5, which finds only 40% of the pairs at
    the threshold).
    """
    best, best_error = (1, num_perm), float("inf")
    s_low = np.linspace(0.0, threshold, 200)
    s_high = np.linspace(threshold, 1.0, 200)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = _trapezoid(1 - (1 - s_low**rows) ** bands, s_low)
            fn = _trapezoid((1 - s_high**rows) ** bands, s_high)
            error = false_positive_weight * fp + (1 - false_positive_weight) * fn
            if error < best_error:
                best, best_error = (bands, rows), error
    return best
