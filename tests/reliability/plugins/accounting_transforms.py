"""Test transforms that drop rows (``drop_short``) and fail on some batches (``sometimes_fails``),
so that the accounting sees every kind of outcome."""

from __future__ import annotations

import pyarrow.compute as pc

import etl
from etl.hookspecs import hookimpl


class DropShort(etl.Transform):
    """Drop articles of fewer than ``min_words`` words."""

    name = "drop_short"
    options = (etl.Option("min_words", "int", 40, help="fewest words kept"),)

    def process(self, batch, ctx):
        keep = pc.fill_null(
            pc.greater_equal(batch.column("word_count"), self.opts.min_words), False
        )
        ctx.count("drop_short:dropped", batch.num_rows - pc.sum(keep).as_py() or 0)
        return batch.filter(keep)


class SometimesFails(etl.Transform):
    """Raise on a batch whose first id starts with ``prefix`` (its rows become rejects)."""

    name = "sometimes_fails"
    options = (etl.Option("prefix", "str", "f", help="first-id prefix that fails"),)

    def process(self, batch, ctx):
        if batch.num_rows and str(batch.column("id")[0]).startswith(self.opts.prefix):
            raise RuntimeError("this batch is unlucky")
        return batch


class OddDetail(etl.Transform):
    """Keep every row; reject nothing but report one reject per batch whose detail holds a
    lone surrogate (as a "\\ud800" escape in a JSON value gives)."""

    name = "odd_detail"

    def process(self, batch, ctx):
        ctx.reject("odd value", location="batch", detail="a lone \ud800 surrogate")
        return batch


@hookimpl
def etl_register_plugins(register):
    register(DropShort)
    register(SometimesFails)
    register(OddDetail)
