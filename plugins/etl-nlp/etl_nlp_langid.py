"""py3langid's model, applied to a whole Arrow batch with numpy.

py3langid walks its byte automaton one byte at a time in a Python loop (about 1,400 articles
of 2,000 characters a second). The automaton is an Aho-Corasick machine over byte n-grams of
at most ``DEPTH`` bytes: the state after a byte is the longest suffix of the text so far that
is a node of its trie, so it depends on the last ``DEPTH`` bytes only. Running the automaton
from its start state over the ``DEPTH`` bytes that end at every position gives the same state
as the sequential walk, and that is ``DEPTH`` vectorised gathers over the batch's bytes. The
scoring (naive Bayes over log1p feature counts, a temperature of sqrt(bytes), a softmax, the
aliased columns folded) is py3langid 0.4's, so labels are the same and confidences agree to
float rounding.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: trie depth of py3langid 0.4's model (checked when the model loads)
DEPTH = 6
#: texts scored together: they share most of their features, so each feature's row of the
#: model is read once per group
_GROUP = 128


def _openblas() -> tuple[Any, Any] | None:
    """(get, set) of the thread count of the OpenBLAS numpy loaded, or None where unknown.

    Looked up as threadpoolctl does (the library mapped into this process), without it.
    """
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", maps.read())))
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                return get, put
    return None


_BLAS: list[tuple[Any, Any] | None] = []


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Products on one thread, restored after: OpenBLAS's threads on these small products
    cost more than they give (3-4x slower here on 2 busy cores), and the executors already
    run one worker per core."""
    if not _BLAS:
        _BLAS.append(_openblas())
    blas = _BLAS[0]
    if blas is None:
        yield
        return
    get, put = blas
    before = get()
    put(1)
    try:
        yield
    finally:
        put(before)


class BatchLangid:
    """py3langid's identifier (normalised probabilities) over a batch of texts at once."""

    def __init__(self, languages: tuple[str, ...] = ()) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        if languages:
            ident.set_languages(list(languages))
        codes = {"H": np.uint16, "I": np.uint32, "L": np.uint64}
        nextmove = np.frombuffer(ident.tk_nextmove, codes[ident.tk_nextmove.typecode])
        rows = np.frombuffer(ident.tk_row, codes[ident.tk_row.typecode]).astype(np.int64)
        out = np.asarray(ident.tk_output, dtype=np.int32)
        # one table lookup per byte: the entry for (state, byte) is where the next state's
        # row starts, so the walk is x = table[x + byte]; the last step reads the feature
        # x = row(state)*256 + byte indexes nextmove (rows are shared between states)
        self.table = (rows * 256).astype(np.int32)[nextmove]
        self.feature = out[nextmove]
        self.start = int(rows[0] * 256)
        if not (self.table.reshape(-1, 256)[:, 0] == self.start).all():
            raise RuntimeError("py3langid model: byte 0 does not reset the automaton")
        # float32: numpy converts float16 slowly, and py3langid sums in float32 too
        self.ptc = np.asarray(ident.nb_ptc, dtype=np.float32)
        self.pc = np.asarray(ident.nb_pc, dtype=np.float32)
        self.classes = list(ident.nb_classes)
        self.alias_pairs = list(ident._alias_pairs)
        self.features = self.ptc.shape[0]

    def classify(self, text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(class index, confidence, has_features) for each text, as py3langid classifies it.

        Texts are prepared as py3langid prepares them: lower-cased when entirely upper case,
        NFC, UTF-8.
        """
        n = len(text)
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        text = pc.fill_null(text, "")
        text = pc.if_else(pc.fill_null(pc.utf8_is_upper(text), False), pc.utf8_lower(text), text)
        text = pc.utf8_normalize(text, "NFC")
        # DEPTH NUL bytes before each text: byte 0 resets the automaton, so no window reaches
        # into the text before
        padded = pc.binary_join_element_wise(pa.scalar("\0" * DEPTH), text, "")
        if isinstance(padded, pa.ChunkedArray):
            padded = padded.combine_chunks()
        offsets = np.frombuffer(padded.buffers()[1], dtype=np.int32)[
            padded.offset : padded.offset + n + 1
        ].astype(np.int64)
        data = np.frombuffer(padded.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        offsets -= offsets[0]
        lengths = np.diff(offsets) - DEPTH  # bytes of each text
        m = len(data)
        feats = np.full(m, -1, dtype=np.int32)
        if m > DEPTH:
            b = data.astype(np.int32)
            # x[i]: row start of the state after reading data[i-DEPTH+1 .. i] from the start
            span = m - DEPTH + 1
            x = np.full(span, self.start, dtype=np.int32)
            for k in range(DEPTH - 1):
                x = self.table[x + b[k : k + span]]
            feats[DEPTH - 1 :] = self.feature[x + b[DEPTH - 1 :]]
        doc = np.repeat(np.arange(n, dtype=np.int64), lengths + DEPTH)
        hit = feats >= 0
        keys = doc[hit] * self.features + feats[hit]
        ukeys, counts = np.unique(keys, return_counts=True)
        udoc = ukeys // self.features
        ufeat = ukeys - udoc * self.features
        weight = np.log1p(counts.astype(np.float32))
        classes = len(self.pc)
        scores = np.zeros((n, classes), dtype=np.float32)
        has = np.zeros(n, dtype=bool)
        has[udoc] = True
        # per group of texts: their distinct features' rows of the model, once each, and a
        # (texts x features) weight matrix, so the sum is one BLAS product
        bounds = np.searchsorted(udoc, np.arange(0, n + _GROUP, _GROUP))
        with _one_blas_thread():
            self._products(scores, bounds, udoc, ufeat, weight, n)
        scores[has] += self.pc
        # no features: py3langid scores 0.0 for every class, i.e. uniform after the softmax
        scores *= (1.0 / np.sqrt(np.maximum(lengths, 1))).astype(np.float32)[:, None]
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        for i, j in self.alias_pairs:
            scores[:, i] += scores[:, j]
            scores[:, j] = 0.0
        best = scores.argmax(axis=1)
        return best, scores[np.arange(n), best], has

    def _products(
        self,
        scores: np.ndarray,
        bounds: np.ndarray,
        udoc: np.ndarray,
        ufeat: np.ndarray,
        weight: np.ndarray,
        n: int,
    ) -> None:
        for g in range(len(bounds) - 1):
            lo, hi = int(bounds[g]), int(bounds[g + 1])
            if lo == hi:
                continue
            feats_here, local = np.unique(ufeat[lo:hi], return_inverse=True)
            d0 = g * _GROUP
            d1 = min(d0 + _GROUP, n)
            weights = np.zeros((d1 - d0, len(feats_here)), dtype=np.float32)
            weights[udoc[lo:hi] - d0, local] = weight[lo:hi]
            scores[d0:d1] = weights @ self.ptc[feats_here]


def labels(identifier: BatchLangid, best: np.ndarray, aliases: dict[str, Any]) -> pa.Array:
    """The class indices as language codes (``aliases`` maps model labels to ISO 639-1)."""
    names = pa.array([aliases.get(c, c) for c in identifier.classes], pa.string())
    return names.take(pa.array(best, pa.int64()))
