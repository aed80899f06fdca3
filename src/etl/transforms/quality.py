"""The ``quality`` transform: document heuristics for news text, as a score and a filter.

Checks (each on the whole batch with pyarrow.compute; the thresholds are options, the
defaults follow the Gopher / C4 rules of thumb, loosened for short news):

* ``words``: word count within [min_words, max_words];
* ``word_length``: mean word length (non-space characters per word) within bounds;
* ``punctuation``: the share of non-empty lines ending in terminal punctuation;
* ``symbols``: ``#`` and ellipses per word at most ``max_symbol_ratio``;
* ``repeated_lines``: the share of non-empty lines that repeat an earlier line of the same
  article at most ``max_repeated_lines``.

``quality_score`` is the share of checks passed (0 to 1); ``quality_issues`` lists the
failed checks (empty when none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.plugin import Option, Transform
from etl.schema import _space_mask, extend_schema, set_column, utf8_bytes

if TYPE_CHECKING:
    from etl.context import Context

CHECKS = ("words", "word_length", "punctuation", "symbols", "repeated_lines")
# A line "ends in" the last byte before its newline (or the text's end) that is not a space
# or tab. ASCII terminal punctuation, and the last bytes of the UTF-8 forms of … ” ’ »:
_TERMINAL_ASCII = np.zeros(256, dtype=bool)
_TERMINAL_ASCII[list(b".!?:;\"')]")] = True
_TERMINAL_MULTI = [s.encode() for s in "…”’»"]


class QualityTransform(Transform):
    """News-text heuristics (length, word length, punctuation, symbols, repeats) as a score."""

    name = "quality"
    options = (
        Option("min_words", "int", 50, min=0, help="fewest words"),
        Option("max_words", "int", 100_000, min=0, help="most words"),
        Option("min_mean_word_length", "float", 3.0, min=0, help="shortest mean word length"),
        Option("max_mean_word_length", "float", 10.0, min=0, help="longest mean word length"),
        Option(
            "min_punctuation_lines",
            "float",
            0.5,
            min=0,
            max=1,
            help="least share of non-empty lines ending in . ! ? : ; quotes or brackets",
        ),
        Option("max_symbol_ratio", "float", 0.1, min=0, help="most '#' and '…' per word"),
        Option(
            "max_repeated_lines",
            "float",
            0.3,
            min=0,
            max=1,
            help="most share of lines repeating another line",
        ),
        Option(
            "drop_below",
            "float",
            None,
            min=0,
            max=1,
            help="drop articles whose quality_score is below this (default: drop none)",
        ),
    )

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return extend_schema(
            schema,
            [
                pa.field("quality_score", pa.float64()),
                pa.field("quality_issues", pa.list_(pa.string())),
            ],
        )

    def process(self, batch: pa.RecordBatch, ctx: Context) -> pa.RecordBatch:
        failed = self.failures(batch.column("text"))
        n = batch.num_rows
        passed = len(CHECKS) - np.sum([f for f in failed.values()], axis=0) if n else np.zeros(0)
        score = pa.array(np.asarray(passed, dtype=np.float64) / len(CHECKS), pa.float64())
        # empty strings, not nulls: binary_join_element_wise(null_handling="skip") has been
        # seen to return fewer rows than it was given
        names = [pc.if_else(pa.array(failed[c]), pa.scalar(c), pa.scalar("")) for c in CHECKS]
        joined = pc.binary_join_element_wise(*names, ",")
        joined = pc.utf8_trim(pc.replace_substring_regex(joined, ",{2,}", ","), ",")
        issues = pc.if_else(
            pc.equal(joined, ""),
            pa.scalar([], pa.list_(pa.string())),
            pc.split_pattern(joined, ","),
        )
        batch = set_column(batch, "quality_score", score)
        batch = set_column(batch, "quality_issues", issues.cast(pa.list_(pa.string())))
        if self.opts.drop_below is not None:
            keep = pc.greater_equal(score, self.opts.drop_below)
            kept = batch.filter(keep)
            if kept.num_rows < n:
                ctx.count("quality dropped", n - kept.num_rows)
            return kept
        return batch

    def failures(self, text: pa.Array) -> dict[str, np.ndarray]:
        """For each check, a boolean array: True where the article fails it."""
        o = self.opts
        text = pc.fill_null(text, "")
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        words, spaces, lines, terminal, symbols = _byte_counts(text)
        chars = _np(pc.utf8_length(text))
        safe_words = np.maximum(words, 1)
        mean_len = (chars - spaces) / safe_words
        repeated = self._repeated_lines(text)
        safe_lines = np.maximum(lines, 1)
        return {
            "words": (words < o.min_words) | (words > o.max_words),
            "word_length": (words == 0)
            | (mean_len < o.min_mean_word_length)
            | (mean_len > o.max_mean_word_length),
            "punctuation": (lines == 0) | (terminal / safe_lines < o.min_punctuation_lines),
            "symbols": symbols / safe_words > o.max_symbol_ratio,
            "repeated_lines": repeated / safe_lines > o.max_repeated_lines,
        }

    @staticmethod
    def _repeated_lines(text: pa.Array) -> np.ndarray:
        """Non-empty lines per article that repeat an earlier line of the same article."""
        n = len(text)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        lines = pc.split_pattern(text, "\n")
        if isinstance(lines, pa.ChunkedArray):
            lines = lines.combine_chunks()
        flat = pc.utf8_trim_whitespace(lines.flatten())
        parents = pc.list_parent_indices(lines)
        table = pa.table({"article": parents, "line": flat}).filter(pc.not_equal(flat, ""))
        if table.num_rows == 0:
            return np.zeros(n, dtype=np.int64)
        groups = table.group_by(["article", "line"], use_threads=False).aggregate(
            [("line", "count")]
        )
        extra = pc.subtract(groups.column("line_count"), 1)
        per = pa.table({"article": groups.column("article"), "extra": extra})
        sums = per.group_by("article", use_threads=False).aggregate([("extra", "sum")])
        out = np.zeros(n, dtype=np.int64)
        out[_np(sums.column("article"))] = _np(sums.column("extra_sum"))
        return out


def _np(values: Any) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.to_numpy(zero_copy_only=False)


def _per_row(positions: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """How many of ``positions`` (byte indexes, sorted) fall in each row."""
    if len(positions) == 0:
        return np.zeros(len(offsets) - 1, dtype=np.int64)
    edges = np.searchsorted(positions, offsets)
    return np.diff(edges).astype(np.int64)


def _byte_counts(text: pa.Array) -> tuple[np.ndarray, ...]:
    """Per row, from the UTF-8 bytes with numpy (no regex, no Python per article): words (as
    ``str.split()`` counts them), whitespace characters, non-empty lines, lines ending in
    terminal punctuation, and symbols (``#``, ``…`` and non-overlapping ``...``)."""
    offsets, data = utf8_bytes(text)
    n = len(offsets) - 1
    m = len(data)
    if m == 0:
        zero = np.zeros(n, dtype=np.int64)
        return zero, zero, zero, zero, zero
    space = _space_mask(data)
    row_start = np.zeros(m, dtype=bool)
    row_start[offsets[:-1][offsets[:-1] < m]] = True
    # words: a non-space byte after a space or at the start of its row
    begins = ~space
    begins[1:] &= space[:-1] | row_start[1:]
    words = _per_row(np.flatnonzero(begins), offsets)
    # whitespace characters: the space bytes that are not UTF-8 continuation bytes
    spaces = _per_row(np.flatnonzero(space & ((data < 0x80) | (data >= 0xC0))), offsets)
    # the last byte of each line that is not a space or tab: before each newline and each
    # row's end, the nearest byte that is not a space or tab, if it is in the same line
    blank = (data == 32) | (data == 9)
    newline = data == 10
    solid_at = np.arange(m, dtype=np.int32)  # offsets are int32, so m fits
    solid_at[blank] = -1
    np.maximum.accumulate(solid_at, out=solid_at)
    nonempty = offsets[:-1] < offsets[1:]
    line_ends = np.concatenate([np.flatnonzero(newline), offsets[1:][nonempty]])
    line_rows = np.concatenate(
        [
            np.searchsorted(offsets, np.flatnonzero(newline), side="right") - 1,
            np.flatnonzero(nonempty),
        ]
    )
    order = np.argsort(line_ends, kind="stable")
    line_ends, line_rows = line_ends[order], line_rows[order]
    before = line_ends - 1
    inside = before >= offsets[line_rows]
    last = solid_at[np.maximum(before, 0)]
    keep = inside & (last >= offsets[line_rows])
    last = last[keep]
    last = last[~newline[last]]
    lines = _per_row(last, offsets)
    ends = _TERMINAL_ASCII[data[last]]
    for form in _TERMINAL_MULTI:
        k = len(form) - 1
        ok = last >= k
        for j, byte in enumerate(form):
            ok &= data[np.maximum(last - k + j, 0)] == byte
        ends |= ok
    terminal = _per_row(last[ends], offsets)
    # symbols: '#', the three bytes of '…' (counted at its first), runs of dots // 3
    marks = [np.flatnonzero(data == 0x23)]
    e2 = np.flatnonzero(data[:-2] == 0xE2)
    marks.append(e2[(data[e2 + 1] == 0x80) & (data[e2 + 2] == 0xA6)])
    dot = data == 0x2E
    run_start = dot.copy()
    run_start[1:] &= ~dot[:-1] | row_start[1:]
    starts = np.flatnonzero(run_start)
    if len(starts):
        run_end = dot.copy()
        run_end[:-1] &= ~dot[1:] | row_start[1:]
        per_run = (np.flatnonzero(run_end) + 1 - starts) // 3
        marks.append(np.repeat(starts, per_run))
    symbols = _per_row(np.sort(np.concatenate(marks)), offsets)
    return words, spaces, lines, terminal, symbols
