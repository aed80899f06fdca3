"""The ``fields`` transform: rename, derive, set constant and drop columns.

Each transform sees the columns the ones before it produced, so a column renamed or dropped
here is still there for the transforms before this one. Operations apply in the order
rename, derive, set, drop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from etl.plugin import Option, Transform
from etl.schema import extend_schema, set_column
from etl.stream import INPUT_COLUMN
from etl.transforms.expr import ExpressionError, compile_expression, result_type

if TYPE_CHECKING:
    from etl.context import Context

#: columns no transform may rename, drop or overwrite
PROTECTED = ("id", INPUT_COLUMN)

_CONSTANT_TYPES = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}


class FieldsTransform(Transform):
    """Rename, derive (e.g. published_date for partitions), set constant and drop columns."""

    name = "fields"
    options = (
        Option("rename", "dict", {}, help='columns to rename: {publisher = "outlet"}'),
        Option(
            "derive",
            "dict",
            {},
            help="new or replaced columns from expressions: {published_date = "
            '"date(published_at)"}',
        ),
        Option("set", "dict", {}, help='columns set to a constant: {collection = "news-2024"}'),
        Option(
            "drop",
            "list",
            [],
            help="columns to leave out of the output",
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.opts
        if not (o.rename or o.derive or o.set or o.drop):
            raise self.error("nothing to do", hint="set at least one of rename, derive, set, drop")
        for new in o.rename.values():
            if not isinstance(new, str) or not new:
                raise self.error("option 'rename': each new name must be a non-empty string")
        renamed = [*o.rename, *o.rename.values()]
        for option, names in (
            ("rename", renamed),
            ("derive", o.derive),
            ("set", o.set),
            ("drop", o.drop),
        ):
            for name in names:
                if name in PROTECTED:
                    raise self.error(
                        f"option '{option}' may not change the column '{name}'",
                        hint="id is the content hash every row is known by",
                    )
        self.derived = {}
        for name, text in o.derive.items():
            if not isinstance(text, str):
                raise self.error(f"option 'derive': {name} must be an expression string")
            try:
                self.derived[name] = compile_expression(text)
            except ExpressionError as exc:
                raise self.error(f"option 'derive': {name}: {exc}") from exc
        for name, value in o.set.items():
            if type(value) not in _CONSTANT_TYPES:
                raise self.error(
                    f"option 'set': {name} = {value!r}: a constant must be a string, number or "
                    "true/false"
                )

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        o = self.opts
        self.types: dict[str, pa.DataType] = {}
        for old, new in o.rename.items():
            index = schema.get_field_index(old)
            if index < 0:
                raise self.error(
                    f"option 'rename': no column '{old}'",
                    hint=f"columns: {', '.join(schema.names)}",
                )
            if new in schema.names and new not in o.rename:
                raise self.error(
                    f"option 'rename': '{old}' -> '{new}', but '{new}' exists already",
                    hint=f"drop '{new}' in an earlier fields transform, or choose another name",
                )
            schema = schema.set(index, schema.field(index).with_name(new))
        for name, compiled in self.derived.items():
            try:
                self.types[name] = result_type(compiled, schema)
            except ExpressionError as exc:
                raise self.error(f"option 'derive': {name}: {exc}") from exc
            if pa.types.is_null(self.types[name]):
                self.types[name] = pa.string()
            schema = extend_schema(schema, [pa.field(name, self.types[name])])
        for name, value in o.set.items():
            index = schema.get_field_index(name)
            kind = schema.field(index).type if index >= 0 else _CONSTANT_TYPES[type(value)]
            self.types[name] = kind
            schema = extend_schema(schema, [pa.field(name, kind)])
        for name in o.drop:
            index = schema.get_field_index(name)
            if index < 0:
                raise self.error(
                    f"option 'drop': no column '{name}'", hint=f"columns: {', '.join(schema.names)}"
                )
            schema = schema.remove(index)
        return schema

    def process(self, batch: pa.RecordBatch, ctx: Context) -> pa.RecordBatch:
        n = batch.num_rows
        if self.opts.rename:
            # the core added the new names as null columns; the renamed data takes their place
            placeholders = [new for new in self.opts.rename.values() if new in batch.schema.names]
            placeholders = [p for p in placeholders if p not in self.opts.rename]
            batch = batch.drop_columns(placeholders)
            names = [self.opts.rename.get(name, name) for name in batch.schema.names]
            batch = batch.rename_columns(names)
        for name, compiled in self.derived.items():
            value = compiled.evaluate(batch)
            if isinstance(value, pa.Scalar):
                value = pa.array([value.as_py()] * n, value.type)
            batch = set_column(batch, name, value.cast(self.types[name]))
        for name, constant in self.opts.set.items():
            batch = set_column(batch, name, pa.array([constant] * n, self.types[name]))
        gone = [name for name in self.opts.drop if name in batch.schema.names]
        if gone:
            batch = batch.drop_columns(gone)
        return batch
