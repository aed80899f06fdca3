"""A test source: every non-empty line of a UTF-8 file is one article (fast, many per file)."""

from __future__ import annotations

import etl
from etl.hookspecs import hookimpl
from etl.inputs import InputError, expand_paths, read_input_bytes


class LinesSource(etl.Source):
    """One article per line of each file."""

    name = "lines"
    options = (etl.Option("paths", "paths", required=True, help="files or folders"),)

    def units(self):
        for ref in expand_paths(self.opts.paths, plugin=self.name, section=self.section):
            yield etl.WorkUnit(ref)

    def read(self, unit, ctx):
        try:
            data = read_input_bytes(unit.input, max_bytes=1 << 24)
        except InputError as exc:
            ctx.reject(exc.reason, detail=exc.detail)
            return
        lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
        if not lines:
            ctx.reject("empty file")
            return
        for start in range(0, len(lines), 250):
            part = lines[start : start + 250]
            yield ctx.articles(
                text=part, uri=[f"{unit.key}#{start + i + 1}" for i in range(len(part))]
            )


@hookimpl
def etl_register_plugins(register):
    register(LinesSource)
