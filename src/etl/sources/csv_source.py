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
from typing import TYPE_CHECKING, Any

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
            help="the longest field allowed; a longer one makes its row a reject",
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
        if csv.field_size_limit() < self.opts.max_record_bytes:
            csv.field_size_limit(self.opts.max_record_bytes)
        encoding = self.opts.encoding
        if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
            encoding = "utf-8-sig"
        batcher: RecordBatcher | None = None
        line = 0
        rows = 0
        try:
            with self.open_input(unit) as stream:
                text = io.TextIOWrapper(stream, encoding=encoding, newline="")
                reader = csv.reader(
                    text, delimiter=delimiter, quotechar=self.opts.quotechar, strict=True
                )
                header = self.opts.columns
                while True:
                    start = reader.line_num + 1
                    try:
                        row = next(reader)
                    except StopIteration:
                        break
                    except csv.Error as exc:
                        line = reader.line_num
                        rows += 1
                        ctx.reject("malformed CSV", location=f"line {start}", detail=str(exc))
                        continue
                    except UnicodeDecodeError as exc:
                        ctx.reject(
                            f"not valid {self.opts.encoding}",
                            location=f"line {reader.line_num + 1}",
                            detail=f"{exc}; the rest of the file is skipped",
                        )
                        rows += 1
                        break
                    line = reader.line_num
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


@hookimpl
def etl_register_plugins(register):
    register(CsvSource)
