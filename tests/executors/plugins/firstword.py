"""A third-party transform that decides on the driver (``etl.DecidesOnDriver``), written
against the documented contract only: keep the first article of the run for each first
word of its text; later ones are dropped as repeats of it.

Which rows it drops depends on every row before them in the run, so under workers each
worker only takes notes (each row's id and first word) and the driver decides on them in
unit order: every executor keeps the rows ``local`` keeps.
"""

import etl


class FirstWord(etl.Transform, etl.DecidesOnDriver):
    """Keep the first article for each first word of the text."""

    name = "firstword"
    options = (etl.Option("fail_on", "str", "", help="raise on a batch holding this first word"),)

    def open(self, run):
        self.first = {}  # first word -> the id of the article kept for it

    def notes(self, batch, ctx):
        ids = batch.column("id").to_pylist()
        words = [(text or "").split()[:1] for text in batch.column("text").to_pylist()]
        notes = [(i, w[0] if w else "") for i, w in zip(ids, words, strict=True)]
        if self.opts.fail_on and any(word == self.opts.fail_on for _, word in notes):
            raise ValueError(f"cannot take notes of {self.opts.fail_on!r}")
        return notes

    def decide(self, notes, ctx):
        verdict = []
        for article_id, word in notes:
            kept = self.first.setdefault(word, article_id)
            verdict.append(None if kept == article_id else kept)
        dropped = sum(v is not None for v in verdict)
        if dropped:
            ctx.count("firstword repeats", dropped)
        return verdict

    def process(self, batch, ctx):
        return self.decide_here(batch, ctx)


@etl.hookimpl
def etl_register_plugins(register):
    register(FirstWord)
