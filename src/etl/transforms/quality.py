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
    zero = np.zeros(n, dtype=np.int64)
    if m == 0:
        return zero, zero, zero, zero, zero
    nonempty = np.flatnonzero(offsets[:-1] < offsets[1:])
    firsts = offsets[nonempty]

    def per_row(flags: np.ndarray) -> np.ndarray:
        # positions and a binary search: reduceat over a bool array is several times slower
        return _per_row(np.flatnonzero(flags), offsets)

    space = _space_mask(data)
    # words: a non-space byte after a space or at the start of its row
    begins = ~space
    begins[1:] &= space[:-1]
    begins[firsts] = ~space[firsts]
    words = per_row(begins)
    # whitespace characters: the space bytes that are not UTF-8 continuation bytes
    spaces = per_row(space & ((data < 0x80) | (data >= 0xC0)))
    # each line's last byte that is not a space or tab (if any): walk back from the byte
    # before each newline and each row end over spaces and tabs, no further than the line.
    # One numpy step per trailing blank: lines rarely end in more than a few
    newlines = np.flatnonzero(data == 10)
    # row ends first: at a tie (a row starting with a newline) the row before ends first
    ends = np.concatenate([offsets[1:][nonempty], newlines])
    line_rows = np.concatenate([nonempty, np.searchsorted(offsets, newlines, side="right") - 1])
    is_newline = np.r_[np.zeros(len(nonempty), np.int64), np.ones(len(newlines), np.int64)]
    order = np.argsort(ends, kind="stable")
    ends, line_rows, is_newline = ends[order], line_rows[order], is_newline[order]
    # a line starts after the newline before it, or at its row's start
    floor = np.maximum(offsets[line_rows], np.r_[0, ends[:-1] + is_newline[:-1]])
    last = ends - 1
    active = np.flatnonzero(last >= floor)
    found = np.full(len(ends), -1, dtype=np.int64)
    while len(active):
        at = last[active]
        blank = (data[at] == 32) | (data[at] == 9)
        found[active[~blank]] = at[~blank]
        active = active[blank]
        last[active] -= 1
        active = active[last[active] >= floor[active]]
    last = found[found >= 0]
    last = last[data[last] != 10]
    lines = _per_row(last, offsets)
    terminal_end = _TERMINAL_ASCII[data[last]]
    for form in _TERMINAL_MULTI:
        k = len(form) - 1
        ok = last >= k
        for j, byte in enumerate(form):
            ok &= data[np.maximum(last - k + j, 0)] == byte
        terminal_end |= ok
    terminal = _per_row(last[terminal_end], offsets)
    # symbols: '#', '…' (counted at its first byte), and each run of dots // 3
    marks = [np.flatnonzero(data == 0x23)]
    e2 = np.flatnonzero(data[:-2] == 0xE2)
    marks.append(e2[(data[e2 + 1] == 0x80) & (data[e2 + 2] == 0xA6)])
    dots = np.flatnonzero(data == 0x2E)
    if len(dots):
        row_of = np.searchsorted(offsets, dots, side="right") - 1
        new_run = np.r_[True, (dots[1:] != dots[:-1] + 1) | (row_of[1:] != row_of[:-1])]
        starts = np.flatnonzero(new_run)
        lengths = np.diff(np.r_[starts, len(dots)])
        marks.append(np.repeat(dots[starts], lengths // 3))
    symbols = _per_row(np.sort(np.concatenate(marks)), offsets)
    return words, spaces, lines, terminal, symbols
