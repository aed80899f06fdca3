"""The bundled ``csv`` source: one article per row of a CSV or TSV file with a header.

Columns are matched to article columns by ``fields`` (defaults matched case-insensitively:
``text``/``body``/``content``, ``title``/``headline``, ``url``/``link``, ``date``/``published``
...). The file is streamed row by row. A row that cannot be parsed (bad quoting) or has the
wrong number of fields is a reject with its line number; the rest of the file is read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from etl.hookspecs import hookimpl
from etl.inputs import InputError
from etl.plugin import Option, WorkUnit
from etl.sources.jsonl import FIELDS_HELP, input_name
from etl.sources.records import DATE_ORDER_OPTION, RecordBatcher, RecordSource

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.context import Context

DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024


class CsvSource(RecordSource):
    """CSV/TSV files with a header row; one article per row, columns mapped by `fields`."""

    name = "csv"
    default_include = ["*.csv", "*.tsv", "*.tab"]
    # paths, include, max_bytes (no limit by default), retries, timeout: from FileSource
    options = (
        Option("fields", "dict", {}, help=FIELDS_HELP),
        Option(
            "delimiter",
            "str",
            "auto",
            help="field separator; 'auto' is a tab for .tsv/.tab files, else a comma",
        ),
        Option("quotechar", "str", '"', help="the quoting character"),
        Option(
            "columns",
            "list",
            None,
            help="column names for files without a header row (else the first row names them)",
        ),
        Option("keep_extra", "bool", False, help="keep the other columns in metadata"),
        Option("encoding", "str", "utf-8", help="text encoding of the input (a BOM is skipped)"),
        DATE_ORDER_OPTION,
        Option(
            "max_record_bytes",
            "int",
            DEFAULT_MAX_RECORD_BYTES,
            min=1,
            help="the longest row allowed (characters, quoted line breaks included); a longer "
            "row is one reject",
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        delimiter = self.opts.delimiter
        if delimiter in ("\\t", "tab"):
            delimiter = "\t"
        if delimiter != "auto" and len(delimiter) != 1:
            raise self.error(
                f"option 'delimiter' must be one character (or 'auto'), got {delimiter!r}",
                hint='e.g. delimiter = ";" or delimiter = "\\t"',
            )
        self.delimiter = delimiter
        if len(self.opts.quotechar) != 1:
            raise self.error(
                f"option 'quotechar' must be one character, got {self.opts.quotechar!r}"
            )
        columns = self.opts.columns
        if columns is not None and not all(isinstance(c, str) and c for c in columns):
            raise self.error("option 'columns' must be a list of column names")
        if columns is not None:  # every file has this header: check `fields` before the run
            self.key_check.header(columns, "option 'columns'")

    def read(self, unit: WorkUnit, ctx: Context) -> Iterator[pa.RecordBatch]:
        delimiter = self.delimiter
        if delimiter == "auto":
            delimiter = "\t" if input_name(unit.key).endswith((".tsv", ".tab")) else ","
        limit = self.opts.max_record_bytes
        # the rows' length is bounded by _Lines; the csv module's own limit (per field, for
        # the whole process) must never strike first: it stops inside a quoted field, and
        # what follows would be read as rows
        if csv.field_size_limit() < limit:
            csv.field_size_limit(limit)
        encoding = self.opts.encoding
        if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
            encoding = "utf-8-sig"
        batcher: RecordBatcher | None = None
        line = 0
        rows = 0
        try:
            with self.open_input(unit) as stream:
                text = io.TextIOWrapper(stream, encoding=encoding, newline="")
                lines = _Lines(text, limit, self.opts.quotechar)
                reader = csv.reader(
                    lines, delimiter=delimiter, quotechar=self.opts.quotechar, strict=True
                )
                header = self.opts.columns
                while True:
                    start = lines.start()
                    try:
                        row = next(reader)
                    except StopIteration:
                        break
                    except _TooLarge as exc:
                        line = lines.line
                        rows += 1
                        ctx.reject(
                            "record too large",
                            location=f"line {start}",
                            detail=f"{exc.size} characters > max_record_bytes {limit}",
                        )
                        continue
                    except csv.Error as exc:
                        line = lines.line
                        rows += 1
                        ctx.reject("malformed CSV", location=f"line {start}", detail=str(exc))
                        continue
                    except UnicodeDecodeError as exc:
                        ctx.reject(
                            f"not valid {self.opts.encoding}",
                            location=f"line {lines.line + 1}",
                            detail=f"{exc}; the rest of the file is skipped",
                        )
                        rows += 1
                        break
                    line = lines.line
                    if not row or (len(row) == 1 and not row[0].strip()):
                        continue  # a blank line
                    if header is None:
                        header = [h.strip() for h in row]
                        # a key of `fields` the first file's header lacks is a typo: stop
                        # here rather than reject every row as "no text"
                        self.key_check.header(header, f"the header of {unit.key}")
                        continue
                    if batcher is None:
                        fields = self.fields.resolve_header(header)
                        batcher = RecordBatcher(
                            fields,
                            ctx,
                            keep_extra=self.opts.keep_extra,
                            date_order=self.opts.date_order,
                        )
                    rows += 1
                    if len(row) != len(header):
                        ctx.reject(
                            "wrong number of fields",
                            location=f"line {start}",
                            detail=f"{len(row)} fields, the header has {len(header)}: "
                            f"{delimiter.join(row)[:200]}",
                        )
                        continue
                    record = {
                        k: (v if v.strip() else None) for k, v in zip(header, row, strict=True)
                    }
                    batcher.add(record, f"line {start}")
                    if len(batcher) >= ctx.batch_size:
                        yield batcher.flush()
        except InputError as exc:
            ctx.reject(exc.reason, location=f"line {line + 1}" if line else None, detail=exc.detail)
            rows += 1
        if batcher is not None:
            batch = batcher.flush()
            if batch is not None:
                yield batch
        if rows == 0:
            ctx.reject("empty file", detail="no data rows" if line else "no rows at all")


class _TooLarge(Exception):
    """A row longer than the limit; it was read to its end (and no further)."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class _Lines:
    """The lines of a CSV text for ``csv.reader``, each row bounded by ``limit`` characters.

    A row that grows past the limit (one long line, or a quoted field over many lines) is
    read on to its end without being kept, and ``_TooLarge`` is raised out of the reader,
    which starts afresh at the next row: the row is one reject. The end of a row is a line
    end outside quotes; an odd count of quote characters on a line flips that (doubled
    quotes inside a field count two).

    Args:
        text: the decoded input (``newline=""``, as the csv module wants it).
        limit: the most characters a row may have.
        quote: the quoting character.
    """

    def __init__(self, text: IO[str], limit: int, quote: str) -> None:
        self.text = text
        self.limit = limit
        self.quote = quote
        #: lines read so far (the last one may be cut short by the end of the input)
        self.line = 0
        self._size = 0
        self._quoted = False

    def start(self) -> int:
        """A row begins: its first line's number."""
        self._size = 0
        self._quoted = False
        return self.line + 1

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        chunk = self._read(self.limit + 1 - self._size)
        if not chunk:
            raise StopIteration
        if self._size > self.limit:
            size = self._size
            while not self._ended(chunk):  # to the end of the row, keeping nothing
                chunk = self._read(1 << 20)
                if not chunk:
                    break
                size += len(chunk)
            raise _TooLarge(size)
        return chunk

    def _read(self, most: int) -> str:
        """Up to ``most`` characters of the current line (at least one), counted."""
        chunk = self.text.readline(max(most, 1))
        self._size += len(chunk)
        if chunk.count(self.quote) % 2:
            self._quoted = not self._quoted
        if chunk.endswith(("\n", "\r")):
            self.line += 1
        return chunk

    def _ended(self, chunk: str) -> bool:
        return chunk.endswith(("\n", "\r")) and not self._quoted


@hookimpl
def etl_register_plugins(register):
    register(CsvSource)
