"""py3langid's model, applied to a whole Arrow batch with numpy and a scipy sparse product.

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

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: trie depth of py3langid 0.4's model (checked when the model loads)
DEPTH = 6


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
        # each text's distinct features and their counts: one sort of (text, feature) keys,
        # in int32 where they fit (sorting half the bytes takes half the time)
        key_type = np.int32 if n * self.features < 2**31 else np.int64
        doc = np.repeat(np.arange(n, dtype=key_type), lengths + DEPTH)
        hit = feats >= 0
        keys = doc[hit] * key_type(self.features) + feats[hit]
        keys.sort()
        first = np.ones(len(keys), dtype=bool)
        np.not_equal(keys[1:], keys[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        ukeys = keys[starts]
        counts = np.diff(np.append(starts, len(keys)))
        udoc = ukeys // self.features
        ufeat = ukeys - udoc * self.features
        # imported here: scipy takes 0.15 s to import, and every etl process (each worker
        # too) imports this module when it loads the plugins' entry points
        import scipy.sparse

        # a text touches a few hundred of the model's 100,000 features: the weights are a
        # sparse (texts x features) matrix, and its product with the model reads only the
        # rows it needs (a dense product per group of texts multiplied mostly zeros: 2x slower)
        indptr = np.searchsorted(udoc, np.arange(n + 1))
        weights = scipy.sparse.csr_matrix(
            (np.log1p(counts.astype(np.float32)), ufeat, indptr), shape=(n, self.features)
        )
        has = np.diff(indptr) > 0
        scores = np.asarray(weights @ self.ptc, dtype=np.float32)
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


def labels(identifier: BatchLangid, best: np.ndarray, aliases: dict[str, Any]) -> pa.Array:
    """The class indices as language codes (``aliases`` maps model labels to ISO 639-1)."""
    names = pa.array([aliases.get(c, c) for c in identifier.classes], pa.string())
    return names.take(pa.array(best, pa.int64()))
