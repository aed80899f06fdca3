"""The ``filter`` transform: keep the articles for which an expression holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from etl.plugin import Option, Transform
from etl.transforms.expr import ExpressionError, compile_expression, result_type

if TYPE_CHECKING:
    from etl.context import Context


class FilterTransform(Transform):
    """Keep articles matching an expression (`word_count >= 50 and language = 'en'`)."""

    name = "filter"
    options = (
        Option(
            "where",
            "str",
            required=True,
            help="condition over columns, e.g. \"word_count >= 50 and language = 'en'\"",
        ),
        Option(
            "label",
            "str",
            "",
            help="name of this filter in the run summary's counters (default: the expression)",
        ),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        try:
            self.expr = compile_expression(self.opts.where)
        except ExpressionError as exc:
            raise self.error(f"option 'where': {exc}", hint=_HINT) from exc
        self.counter = f"filter dropped: {self.opts.label or self.opts.where}"

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        try:
            kind = result_type(self.expr, schema)
        except ExpressionError as exc:
            raise self.error(f"option 'where': {exc}", hint=_HINT) from exc
        if kind != pa.bool_():
            raise self.error(
                f"option 'where' gives {kind}, not a true/false condition",
                hint="compare it: word_count >= 50",
            )
        return schema

    def process(self, batch: pa.RecordBatch, ctx: Context) -> pa.RecordBatch:
        mask = self.expr.evaluate(batch)
        if isinstance(mask, pa.Scalar):
            mask = pa.array([mask.as_py()] * batch.num_rows, pa.bool_())
        kept = batch.filter(mask, null_selection_behavior="drop")
        dropped = batch.num_rows - kept.num_rows
        if dropped:
            ctx.count(self.counter, dropped)
        return kept


_HINT = (
    "columns, constants, and / or / not, == = != < <= > >=, in (...), is None, + - * /, "
    "and the functions lower upper length strip contains icontains matches startswith "
    "endswith is_null coalesce date year month day list_length host metadata "
    "(see docs/transforms.md)"
)
