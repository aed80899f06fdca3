"""Test plugins for the executor tests, loaded as a local plugin file (shipped to workers).

``probe`` records which file its module was loaded from (so a test can tell a shipped copy
from the original) and, with ``seconds`` > 0, sleeps per batch after leaving a file named by
its process id in ``pid_dir`` (so a test can kill a worker mid-run); with ``gate``, each
batch waits until that file exists (so a test can change the cluster while every worker is
busy, then let the run go on).
"""

import os
import time
from pathlib import Path

import pyarrow as pa

import etl
from etl.schema import extend_schema


class Probe(etl.Transform):
    """Adds the column plugin_file; optionally sleeps per batch (for kill tests)."""

    name = "probe"
    options = (
        etl.Option("seconds", "float", 0.0, help="sleep this long per batch"),
        etl.Option("pid_dir", "str", "", help="leave a file named by the pid here"),
        etl.Option("gate", "str", "", help="wait (up to 5 minutes) until this file exists"),
    )

    def output_schema(self, schema):
        return extend_schema(schema, [pa.field("plugin_file", pa.string())])

    def process(self, batch, ctx):
        if self.opts.pid_dir:
            Path(self.opts.pid_dir, str(os.getpid())).touch()
        deadline = time.monotonic() + 300  # a test that fails never opens it
        while self.opts.gate and not Path(self.opts.gate).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.opts.seconds:
            time.sleep(self.opts.seconds)
        # batches arrive with every declared column already there (null): set it
        column = pa.array([__file__] * batch.num_rows, pa.string())
        return batch.set_column(batch.schema.get_field_index("plugin_file"), "plugin_file", column)


@etl.hookimpl
def etl_register_plugins(register):
    register(Probe)
