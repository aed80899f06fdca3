"""Near-duplicate signatures for ``dedup``: words, shingles and one-permutation MinHash.

Everything works on whole batches (in slices of about 1 MB of text, so that the temporaries
stay in the CPU cache), on the Arrow buffers, with numpy; no loop over articles (but one
splice per text that starts inside a word, rare: texts end with punctuation):

1. words: every byte is classed as a word byte (a letter or digit: ``[\\pL\\pN]`` as the
   regex had it) or a separator by byte arithmetic. ASCII text is not lower-cased at all (a
   word byte | 0x20 is its lower case, in the classing and the hash alike); text with other
   characters goes through Arrow's ``utf8_lower`` first and its non-ASCII characters are
   classed by their decoded code points, each distinct one looked up once (``unicodedata``).
   Words are the runs of word bytes, never running from one text into the next.
2. word hashes: the word's first 8 bytes read as one little-endian 64-bit integer (an
   unaligned view of the buffer, masked to the word's length), further 8-byte chunks of
   longer words folded in, then a 64-bit mixer.
3. shingles: ``shingle`` consecutive word hashes of a text combined with the seed, then mixed.
4. signature: one-permutation hashing. Each shingle hash falls into one of 128 bins by its
   high bits; a text's signature is the minimum per bin (``np.minimum.at``): one hash per
   shingle instead of one per permutation. Longer signatures are groups of 128 bins, each
   group with its own hash (the shingle hash times an odd constant). Bins a short text
   leaves empty borrow the value of another bin, chosen by "optimal densification"
   (Shrivastava 2017: probe bins in an order fixed by the empty bin's number and the
   attempt, so two texts with the same empty bin borrow alike), which keeps the share of
   equal bins an unbiased estimate of the Jaccard similarity.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_U64 = np.uint64
_ALL = _U64(0xFFFFFFFFFFFFFFFF)
_PRIME = _U64(1099511628211)  # FNV prime: folds a long word's further chunks
_SHINGLE_BASE = _U64(0x9E3779B97F4A7C15)
_SEED_KEY = 0xD1B54A32D192ED03
_GROUP = 128  # bins per hash of a shingle (see _signatures)
#: signature positions the LSH bands are cut from (the check of a candidate uses them all)
LSH_BINS = 128
_CHUNK = 1 << 20  # bytes of text per pass (see minhash_signatures)
_FOLD = _U64(0x2020202020202020)  # ASCII letters | 0x20: their lower case
#: the mask of a word's first ``n`` bytes in its little-endian 8-byte window, n = 0..8
_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)
#: optimal densification tries this many probes per empty bin, then takes the next filled
#: bin to the right (only texts with a handful of shingles get that far)
_PROBES = 32
# numpy 2 renamed trapz to trapezoid; the core allows numpy 1.24+
_trapezoid = getattr(np, "trapezoid", None) or np.trapz

#: 1 if a code point is a letter or digit, 0 if not, -1 not looked up yet (filled lazily,
#: one unicodedata call per distinct non-ASCII character ever seen)
_WORD_CHAR = np.full(0x110000, -1, dtype=np.int8)


def mix64(x: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the 64 output bits.

    Args:
        x: uint64 values.
        inplace: overwrite ``x`` (saves the allocations of a large batch's temporaries).

    Returns:
        The mixed values (uint64, same shape).
    """
    x = x if inplace else x.copy()
    tmp = np.empty_like(x)
    with np.errstate(over="ignore"):
        for shift, factor in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB), (31, 0)):
            np.right_shift(x, _U64(shift), out=tmp)
            np.bitwise_xor(x, tmp, out=x)
            if factor:
                np.multiply(x, _U64(factor), out=x)
    return x


#: odd multipliers (num_perm <= 1024: 8 groups at most) of the groups after the first
_GROUP_KEYS = mix64(np.arange(1, 9, dtype=np.uint64) * _U64(0x9E3779B97F4A7C15)) | _U64(1)


def _as_strings(text: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One string array (a chunked one combined; an all-null one typed as strings)."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    return text.cast(pa.string()) if pa.types.is_null(text.type) else text


def _buffers(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets from 0, bytes padded with 16 zeros) of a string array, zero-copy but the pad."""
    large = pa.types.is_large_string(text.type)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64 if large else np.int32)
    offsets = offsets[text.offset : text.offset + len(text) + 1].astype(np.int64)
    first, last = int(offsets[0]), int(offsets[-1])
    data = np.zeros(last - first + 16, dtype=np.uint8)
    if last > first:
        data[: last - first] = np.frombuffer(text.buffers()[2], dtype=np.uint8)[first:last]
    return offsets - first, data


def _word_bytes(data: np.ndarray, size: int, fold: bool) -> np.ndarray:
    """Whether each of the first ``size`` bytes belongs to a word, with a False either side.

    ``fold``: the text is ASCII and not lower-cased yet (A-Z count as letters too).
    """
    word = np.zeros(size + 2, dtype=np.bool_)
    inner = word[1:-1]
    body = data[:size]
    tmp = np.empty(size, dtype=np.uint8)
    with np.errstate(over="ignore"):
        np.bitwise_or(body, np.uint8(0x20 if fold else 0), out=tmp)
        np.subtract(tmp, np.uint8(97), out=tmp)
        np.less(tmp, np.uint8(26), out=inner)
        np.subtract(body, np.uint8(48), out=tmp)
        inner |= tmp < np.uint8(10)
    if not fold:
        _class_non_ascii(body, inner)
    return word


def _class_non_ascii(body: np.ndarray, word: np.ndarray) -> None:
    """Class the bytes of non-ASCII characters by their code point, in place in ``word``."""
    high = np.flatnonzero(body >= 0x80)
    b = body[high].astype(np.int64)
    lead = b >= 0xC0
    pos = high[lead]
    first = b[lead]
    length = 2 + (first >= 0xE0) + (first >= 0xF0)
    cp = first & np.where(length == 2, 0x1F, np.where(length == 3, 0x0F, 0x07))
    padded = np.concatenate([body, np.zeros(4, np.uint8)])
    for j in (1, 2, 3):
        more = length > j
        cp = np.where(more, (cp << 6) | (padded[pos + j].astype(np.int64) & 0x3F), cp)
    cp = np.minimum(cp, 0x10FFFF)
    unknown = np.unique(cp[_WORD_CHAR[cp] < 0])
    for c in unknown.tolist():  # each distinct character once per process
        _WORD_CHAR[c] = unicodedata.category(chr(c))[0] in "LN"
    klass = _WORD_CHAR[cp] > 0
    # a continuation byte takes the class of the lead byte before it
    owner = np.cumsum(lead) - 1
    word[high] = np.where(owner >= 0, klass[np.maximum(owner, 0)], False)


def word_hashes(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A 64-bit hash of every word of each text (lower-cased runs of letters and digits).

    Args:
        text: a string array (nulls are empty texts).

    Returns:
        ``(hashes, starts)``: the words of text ``i`` are ``hashes[starts[i]:starts[i+1]]``,
        in order. Equal words have equal hashes wherever they stand.
    """
    hashes, starts = _words(text, 0)
    return hashes, starts


def _words(text: pa.Array, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """word_hashes' answer, the hashes followed by ``pad`` zeros."""
    text = _as_strings(text)
    text = pc.fill_null(text, "")
    offsets, data = _buffers(text)
    size = int(offsets[-1])
    # ASCII (most news batches): no lower-casing pass; a word byte | 0x20 is its lower case
    # (digits have that bit already), in the classing and in the hash alike
    fold = size == 0 or int(data[:size].max()) < 0x80
    if not fold:
        offsets, data = _buffers(pc.utf8_lower(text))
        size = int(offsets[-1])
    word = _word_bytes(data, size, fold)
    # a change of class starts or ends a word; with False on both sides they alternate
    edges = np.flatnonzero(word[1:] != word[:-1])
    begin, end = edges[0::2], edges[1::2]
    window = np.ndarray((size + 8,), dtype="<u8", buffer=data, strides=(1,))
    hashes = _span_hashes(window, begin, end - begin, fold)
    # a word must not run from one text into the next: where a text starts inside a run of
    # word bytes, the run is cut there
    inner = np.unique(offsets[1:-1])  # empty texts share their offset with the next
    inner = inner[(inner > 0) & (inner < size)]
    cut = inner[word[inner] & word[inner + 1]]
    starts = np.searchsorted(begin, offsets) + np.searchsorted(cut, offsets)
    if not len(cut):
        return np.concatenate([hashes, np.zeros(pad, np.uint64)]), starts
    run = np.unique(np.searchsorted(begin, cut, side="right") - 1)
    piece_begin = np.sort(np.concatenate([begin[run], cut]))
    piece_end = np.sort(np.concatenate([cut, end[run]]))
    pieces = _span_hashes(window, piece_begin, piece_end - piece_begin, fold)
    split = np.searchsorted(piece_begin, end[run])
    # one splice per text that starts inside a word (rare: texts end with punctuation)
    parts, prev, first = [], 0, 0
    for r, last in zip(run.tolist(), split.tolist(), strict=True):
        parts += [hashes[prev:r], pieces[first:last]]
        prev, first = r + 1, last
    parts += [hashes[prev:], np.zeros(pad, np.uint64)]
    return np.concatenate(parts), starts


def _span_hashes(
    window: np.ndarray, begin: np.ndarray, length: np.ndarray, fold: bool
) -> np.ndarray:
    """The hash of each word ``[begin, begin + length)``, read through ``window``."""
    lower = _FOLD if fold else _U64(0)
    hashes = window[begin] | lower
    hashes &= _MASKS[np.minimum(length, 8)]
    # words longer than 8 bytes (a minority): fold in their further 8-byte chunks
    long = np.flatnonzero(length > 8)
    step = 8
    with np.errstate(over="ignore"):
        while len(long):
            rest = length[long] - step
            chunk = (window[begin[long] + step] | lower) & _MASKS[np.minimum(rest, 8)]
            hashes[long] = hashes[long] * _PRIME + chunk
            step += 8
            long = long[length[long] > step]
        hashes += length.astype(np.uint64) * _SHINGLE_BASE
    return mix64(hashes, inplace=True)


def shingle_hashes(text: pa.Array, shingle: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every ``shingle``-word shingle of each text, and each text's first index.

    Args:
        text: a string array (nulls are empty texts).
        shingle: words per shingle.
        seed: picks the hash function (the same seed, the same hashes).

    Returns:
        ``(hashes, starts)``: the shingles of text ``i`` are ``hashes[starts[i]:starts[i+1]]``;
        a text with fewer words than ``shingle`` has one shingle of all its words, an empty
        text one shingle of nothing.
    """
    padded, word_starts = _words(text, shingle)
    counts = np.diff(word_starts)
    total = len(padded) - shingle
    combined = np.full(total, (seed ^ _SEED_KEY) & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)
    tmp = np.empty(total, dtype=np.uint64)
    with np.errstate(over="ignore"):
        factor = _U64(1)
        for r in range(shingle):
            np.multiply(padded[r : r + total], factor, out=tmp)
            combined += tmp
            factor = factor * _SHINGLE_BASE
    full = counts >= shingle
    per_doc = np.where(full, counts - shingle + 1, 1)
    starts = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(per_doc, out=starts[1:])
    # a shingle starts at each word but a text's last shingle - 1
    valid = np.repeat(full, counts)  # short texts: all their words as one shingle, below
    ends = word_starts[1:][full]
    for back in range(1, shingle):
        valid[ends - back] = False
    short = np.flatnonzero(~full)
    if not len(short):
        return mix64(combined[valid], inplace=True), starts
    out = np.empty(int(starts[-1]), dtype=np.uint64)
    out[np.repeat(full, per_doc)] = combined[valid]
    first, n = word_starts[short], counts[short]
    value = np.full(len(short), (seed ^ _SEED_KEY) & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)
    with np.errstate(over="ignore"):
        factor = _U64(1)
        for r in range(shingle - 1):
            value += np.where(r < n, padded[np.minimum(first + r, total)], 0) * factor
            factor = factor * _SHINGLE_BASE
    out[starts[short]] = value
    return mix64(out, inplace=True), starts


def minhash_signatures(text: pa.Array, num_perm: int, shingle: int, seed: int = 1) -> np.ndarray:
    """The one-permutation MinHash signature of each text: an (n, num_perm) uint32 array.

    Two texts agree on a share of bins that estimates the Jaccard similarity of their
    shingle sets (as ``num_perm`` separate MinHash functions would, with a little less
    variance: bins sample without replacement).

    Args:
        text: a string array.
        num_perm: bins (the signature's length).
        shingle: words per shingle.
        seed: picks the hash function (the same seed, the same signatures).

    Returns:
        The signatures, one row per text (the low 32 bits of each bin's minimum: two texts'
        different minima agree on them once in 4 billion).
    """
    text = _as_strings(text)
    n = len(text)
    out = np.empty((n, num_perm), dtype=np.uint32)
    # about _CHUNK bytes of text at a time: every temporary then stays in the cache, which
    # makes the whole about twice as fast as one pass over a batch's 5 MB
    sizes = pc.fill_null(pc.binary_length(text), 0).to_numpy(zero_copy_only=False)
    ends = np.searchsorted(np.cumsum(sizes), np.arange(_CHUNK, int(sizes.sum()), _CHUNK))
    bounds = [0, *sorted(set(ends.tolist()) - {0, n}), n]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        out[lo:hi] = _signatures(text.slice(lo, hi - lo), num_perm, shingle, seed)
    return out


def _signatures(text: pa.Array, num_perm: int, shingle: int, seed: int) -> np.ndarray:
    """minhash_signatures of one chunk."""
    x, starts = shingle_hashes(text, shingle, seed)
    n = len(starts) - 1
    doc = np.repeat(np.arange(n, dtype=np.int64), np.diff(starts))
    out = np.empty((n, num_perm), dtype=np.uint32)
    for group, lo in enumerate(range(0, num_perm, _GROUP)):
        bins = min(_GROUP, num_perm - lo)
        # each group of bins hashes the shingles afresh, so that a group of bins gets a few
        # shingles per bin even from a short text: x is mixed already, and x * (an odd
        # constant) is another bijection whose high bits (the bin and the order within it)
        # depend on all of x
        with np.errstate(over="ignore"):
            h = x if group == 0 else x * _GROUP_KEYS[(group - 1) % len(_GROUP_KEYS)]
        # the high 32 bits pick the bin (multiply-shift: any count, not only powers of two)
        cell = (h >> _U64(32)).view(np.int64)
        cell *= bins
        cell >>= 32
        cell += doc * bins
        flat = np.full(n * bins, _ALL, dtype=np.uint64)
        np.minimum.at(flat, cell, h)
        sig = flat.reshape(n, bins)
        _densify(sig, seed + group)
        out[:, lo : lo + bins] = sig  # the low 32 bits
    return out


def _densify(sig: np.ndarray, seed: int) -> None:
    """Fill empty bins (still all ones) in place, by optimal densification."""
    empty = sig == _ALL
    rows, cols = np.nonzero(empty)
    if not len(rows):
        return
    num_perm = sig.shape[1]
    # the probe order depends only on the bin and the attempt: the same for every text
    attempt = np.arange(1, _PROBES + 1, dtype=np.uint64)[:, None] << _U64(32)
    key = mix64(attempt | np.arange(num_perm, dtype=np.uint64)[None, :] ^ _U64(seed & 0xFFFF))
    with np.errstate(over="ignore"):
        probes = (((key >> _U64(32)) * _U64(num_perm)) >> _U64(32)).astype(np.intp)
    # only bins filled to begin with are read, and only empty ones written: no copy needed
    for a in range(_PROBES):
        target = probes[a, cols]
        found = ~empty[rows, target]
        sig[rows[found], cols[found]] = sig[rows[found], target[found]]
        rows, cols = rows[~found], cols[~found]
        if not len(rows):
            return
    # still empty after the probes: the next filled bin to the right, circularly
    filled = np.concatenate([~empty, ~empty], axis=1)[rows]
    index = np.where(filled, np.arange(2 * num_perm), 2 * num_perm)
    nxt = np.minimum.accumulate(index[:, ::-1], axis=1)[:, ::-1]
    sig[rows, cols] = sig[rows, nxt[np.arange(len(rows)), cols] % num_perm]


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per band of each signature.

    Args:
        signatures: (n, num_perm) signatures.
        bands: bands per signature.
        rows: signature positions per band (``bands * rows <= num_perm``).

    Returns:
        An (n, bands) uint64 array; a key of one band never equals another band's.
    """
    n = signatures.shape[0]
    cut = signatures[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)
    keys = np.zeros((n, bands), dtype=np.uint64)
    for r in range(rows):
        keys = mix64(keys ^ cut[:, :, r])
    return mix64(keys ^ (np.arange(bands, dtype=np.uint64) * _SHINGLE_BASE))


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

    Args:
        threshold: the Jaccard similarity that makes a duplicate.
        num_perm: the signature's length.
        false_positive_weight: the weight of the false positive area (1 - it: negatives).

    Returns:
        ``(bands, rows)`` with ``bands * rows <= num_perm``.
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
