"""etl transforms ``normalize`` and ``language``.

* ``normalize``: Unicode normal form (NFC by default), mojibake repaired with ftfy, whitespace
  collapsed (paragraph breaks kept), boilerplate lines removed by pattern; counts recomputed,
  ``id`` unchanged.
* ``language``: language identification with py3langid's model, which ships inside its wheel
  (nothing is downloaded at run time), applied to the whole batch with numpy
  (``etl_nlp_langid``); writes ``language`` (ISO 639-1) and ``language_confidence``.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from etl_nlp_langid import labels

from etl import MissingDependency, Option, Transform, hookimpl
from etl.schema import (
    _space_mask,
    char_counts,
    extend_schema,
    normalize_newlines,
    set_column,
    utf8_bytes,
    word_counts,
)

__version__ = "0.1.0"

# Horizontal whitespace as str.split() sees it, newlines excluded (RE2 syntax).
_HSPACE = (
    r"[\t\x0b\x0c\x1c\x1d\x1e\x1f \x85\xa0\x{1680}\x{2000}-\x{200a}"
    r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
)
# UTF-8 read as Latin-1/cp1252 always leaves a lead byte's character (U+00C2-U+00F4) before a
# continuation byte's (U+0080-U+00BF, or what cp1252 maps 0x80-0x9F to). Only texts with such
# a pair go through ftfy; the rest never reach Python.
_MOJIBAKE = (
    r"[\x{c2}-\x{f4}][\x{80}-\x{bf}\x{152}\x{153}\x{160}\x{161}\x{178}\x{17d}\x{17e}\x{192}"
    r"\x{2c6}\x{2dc}\x{2013}\x{2014}\x{2018}-\x{201e}\x{2020}-\x{2022}\x{2026}\x{2030}"
    r"\x{2039}\x{203a}\x{20ac}\x{2122}]"
)


def _scatter(values: pa.Array, rows: np.ndarray, replacement: pa.Array) -> pa.Array:
    """``values`` with row ``rows[i]`` replaced by ``replacement[i]`` (rows sorted)."""
    mask = np.zeros(len(values), dtype=bool)
    mask[rows] = True
    positions = np.cumsum(mask) - 1
    spread = replacement.take(pa.array(np.where(mask, positions, 0)))
    return pc.if_else(pa.array(mask), spread, values)


def _untidy_rows(values: pa.Array) -> np.ndarray:
    """Rows the whitespace chain would change, found on the UTF-8 bytes with numpy.

    The chain changes a text only where it has a horizontal space other than one plain
    space, two spaces in a row, a space next to a newline, three newlines in a row, or a
    space or newline at either end; texts without any are left alone (most, in news), so
    they never go through its four regexes.
    """
    offsets, data = utf8_bytes(values)
    n, m = len(offsets) - 1, len(data)
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    newline = data == 10
    space = _space_mask(data)
    space &= ~newline
    suspect = space & (data != 32)
    suspect[:-1] |= space[:-1] & (space[1:] | newline[1:])
    suspect[:-1] |= newline[:-1] & space[1:]
    suspect[:-2] |= newline[:-2] & newline[1:-1] & newline[2:]
    rows = np.searchsorted(offsets, np.flatnonzero(suspect), side="right") - 1
    nonempty = np.flatnonzero(offsets[:-1] < offsets[1:])
    edge = space | newline
    ends = nonempty[edge[offsets[nonempty]] | edge[offsets[nonempty + 1] - 1]]
    return np.union1d(np.unique(rows[rows < n]), ends)


class NormalizeTransform(Transform):
    """Unicode normal form, mojibake fixed (ftfy), whitespace collapsed, boilerplate removed."""

    name = "normalize"
    options = (
        Option(
            "form",
            "str",
            "NFC",
            help="Unicode normal form: NFC, NFKC, NFD, NFKD or none",
            choices=("NFC", "NFKC", "NFD", "NFKD", "none"),
        ),
        Option("fix_mojibake", "bool", True, help="repair UTF-8 read as Latin-1/cp1252 (ftfy)"),
        Option(
            "whitespace",
            "bool",
            True,
            help="collapse spaces, strip lines, keep paragraph breaks (at most one blank line)",
        ),
        Option(
            "boilerplate",
            "list",
            [],
            help="regular expressions (RE2); a line of text matching one entirely is removed",
        ),
        Option("columns", "list", ["text", "title"], help="string columns to normalise"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "id" in self.opts.columns:
            raise self.error("option 'columns' may not include 'id'")
        self.patterns = []
        for pattern in self.opts.boilerplate:
            if not isinstance(pattern, str):
                raise self.error(f"option 'boilerplate': {pattern!r} is not a string")
            regex = f"(?m)^[ \\t]*(?:{pattern})[ \\t]*(?:\\n|$)"
            try:
                pc.replace_substring_regex(pa.array(["x"]), regex, "")
            except pa.ArrowInvalid as exc:
                raise self.error(f"option 'boilerplate': bad pattern {pattern!r}: {exc}") from exc
            self.patterns.append(regex)
        # found, not imported: ftfy compiles its regexes on import (0.05 s), which a driver
        # whose workers run the transform never needs
        if self.opts.fix_mojibake and importlib.util.find_spec("ftfy") is None:
            raise MissingDependency(self.name, "ftfy", "ftfy")

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        for column in self.opts.columns:
            index = schema.get_field_index(column)
            if index < 0 or not pa.types.is_string(schema.field(index).type):
                raise self.error(f"option 'columns': '{column}' is not a string column")
        return schema

    def normalize(self, values: pa.Array, ctx: Any = None) -> pa.Array:
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if self.opts.fix_mojibake and len(values):
            values = self._fix_mojibake(values, ctx)
        if self.opts.form != "none":
            values = pc.utf8_normalize(values, self.opts.form)
        for regex in self.patterns:
            values = pc.replace_substring_regex(values, regex, "")
        if self.opts.whitespace:
            values = normalize_newlines(values)
            rows = _untidy_rows(values)
            if len(rows):
                # only the rows the chain would change go through its regexes
                chosen = pa.array(rows)
                part = values.take(chosen)
                part = pc.replace_substring_regex(part, _HSPACE + "+", " ")
                part = pc.replace_substring_regex(part, r"(?m)^ | $", "")
                part = pc.replace_substring_regex(part, r"\n{3,}", "\n\n")
                part = pc.utf8_trim(part, "\n ")
                values = _scatter(values, rows, part)
        return values

    def _fix_mojibake(self, values: pa.Array, ctx: Any) -> pa.Array:
        import ftfy

        suspect = pc.fill_null(pc.match_substring_regex(values, _MOJIBAKE), False)
        rows = np.flatnonzero(suspect.to_numpy(zero_copy_only=False))
        if not len(rows):
            return values
        fixed = [ftfy.fix_encoding(t) for t in values.take(pa.array(rows)).to_pylist()]
        changed = sum(
            1 for t, f in zip(values.take(pa.array(rows)).to_pylist(), fixed, strict=True) if t != f
        )
        if changed and ctx is not None:
            ctx.count("normalize mojibake fixed", changed)
        return _scatter(values, rows, pa.array(fixed, pa.string()))

    def process(self, batch: pa.RecordBatch, ctx: Any) -> pa.RecordBatch:
        for column in self.opts.columns:
            batch = set_column(batch, column, self.normalize(batch.column(column), ctx))
        if "text" in self.opts.columns:
            text = batch.column("text")
            batch = set_column(batch, "char_count", char_counts(text))
            batch = set_column(batch, "word_count", word_counts(text))
        return batch


# ---------------------------------------------------------------------------------------------
# language

# py3langid labels that are not ISO 639-1 codes, or have a 639-1 code under another label
_ISO_639_1 = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro", "sh": "sr"}

_IDENTIFIERS: dict[tuple[str, ...], Any] = {}


def identifier(languages: tuple[str, ...] = ()) -> Any:
    """The batch identifier over py3langid's model (``etl_nlp_langid``), loaded once per process."""
    found = _IDENTIFIERS.get(languages)
    if found is None:
        try:
            import py3langid  # noqa: F401
        except ImportError as exc:
            raise MissingDependency("language", "py3langid", "py3langid") from exc
        from etl_nlp_langid import BatchLangid

        found = BatchLangid(languages)
        _IDENTIFIERS[languages] = found
    return found


#: characters every text is classified on first (see LanguageTransform._classify)
PROBE_CHARS = 300
#: a probe at least this confident is the answer; below it the text is read to max_chars
SURE = 0.99


class LanguageTransform(Transform):
    """Language of each article (ISO 639-1) with a confidence, by py3langid (model shipped)."""

    name = "language"
    options = (
        Option(
            "min_confidence",
            "float",
            0.0,
            min=0,
            max=1,
            help="below this confidence the language is left null (0 to 1)",
        ),
        Option(
            "languages",
            "list",
            [],
            help="only consider these language codes (default: every language the model knows)",
        ),
        Option(
            "max_chars",
            "int",
            1000,
            min=0,
            help="read at most this many characters (title first; 300 first, more only if unsure); 0 for all",
        ),
        Option("use_title", "bool", True, help="classify the title with the text"),
        Option(
            "overwrite",
            "bool",
            True,
            help="replace a language the source gave (false: only fill where it is null)",
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ident = identifier()
        unknown = [code for code in self.opts.languages if code not in ident.classes]
        if unknown:
            raise self.error(
                f"option 'languages': unknown code(s) {', '.join(map(str, unknown))}",
                hint=f"known: {', '.join(sorted(set(ident.classes)))}",
            )
        self.languages = tuple(self.opts.languages)
        # the model is not kept on the instance: executors ship plugins to workers by value,
        # and each worker loads the model once for itself (identifier() caches it)

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return extend_schema(schema, [pa.field("language_confidence", pa.float64())])

    def detect(self, text: pa.Array, title: pa.Array | None = None) -> tuple[pa.Array, pa.Array]:
        """(language, confidence) for each text; null where there is nothing to classify."""
        if title is not None:
            text = pc.binary_join_element_wise(
                pc.fill_null(title, ""), pc.fill_null(text, ""), "\n"
            )
        ident = identifier(self.languages)
        best, conf, text = self._classify(ident, text)
        empty = pc.fill_null(pc.equal(text, ""), True)
        language = pc.if_else(empty, pa.scalar(None, pa.string()), labels(ident, best, _ISO_639_1))
        confidence = pc.if_else(
            empty, pa.scalar(None, pa.float64()), pa.array(np.round(conf.astype(np.float64), 6))
        )
        if self.opts.min_confidence > 0:
            low = pc.fill_null(pc.less(confidence, self.opts.min_confidence), False)
            language = pc.if_else(low, pa.scalar(None, pa.string()), language)
        return language, confidence

    def _classify(self, ident: Any, text: pa.Array) -> tuple[np.ndarray, np.ndarray, pa.Array]:
        """(class, confidence, the text classified) per row: the first PROBE_CHARS first.

        The work is per byte, so a row whose beginning is already unambiguous (confidence
        at least SURE) keeps that answer; only the others are classified again on up to
        ``max_chars``, which is where a longer text changes the label or the confidence
        that ``min_confidence`` compares with.
        """
        limit = self.opts.max_chars
        full = pc.utf8_trim_whitespace(pc.utf8_slice_codeunits(text, 0, limit) if limit else text)
        if limit and limit <= PROBE_CHARS:
            best, conf, _ = ident.classify(full)
            return best, conf, full
        probe = pc.utf8_trim_whitespace(pc.utf8_slice_codeunits(text, 0, PROBE_CHARS))
        best, conf, _ = ident.classify(probe)
        longer = pc.greater(pc.utf8_length(full), pc.utf8_length(probe))
        again = np.flatnonzero((conf < SURE) & pc.fill_null(longer, False).to_numpy(False))
        if len(again):
            best2, conf2, _ = ident.classify(pc.take(full, pa.array(again)))
            best, conf = best.copy(), conf.copy()
            best[again], conf[again] = best2, conf2
        return best, conf, full

    def process(self, batch: pa.RecordBatch, ctx: Any) -> pa.RecordBatch:
        title = batch.column("title") if self.opts.use_title else None
        language, confidence = self.detect(batch.column("text"), title)
        if not self.opts.overwrite:
            given = batch.column("language")
            has = pc.is_valid(given)
            language = pc.if_else(has, given, language)
            confidence = pc.if_else(has, pa.scalar(None, pa.float64()), confidence)
        undetermined = pc.sum(pc.is_null(language)).as_py() or 0
        if undetermined:
            ctx.count("language undetermined", undetermined)
        batch = set_column(batch, "language", language)
        return set_column(batch, "language_confidence", confidence)


@hookimpl
def etl_register_plugins(register):
    register(NormalizeTransform)
    register(LanguageTransform)
