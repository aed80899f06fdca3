"""Helpers for testing etl plugins, registered as a pytest plugin (``pytest11`` entry point).

Everything below is importable from ``etl.testing``; the modules say more.

Fixtures (:mod:`etl.testing.fixtures`; available in any project that has ``etl`` installed):

* ``etl_pm``: a plugin manager with the builtin plugins only, so plugins installed in the
  environment do not leak into a plugin's tests;
* ``etl_cli``: the tuple ``(run_cli, read_parquet_dataset, read_rejects)``, for end-to-end
  tests that run the real ``etl`` command and read the dataset back;
* ``per_input``: :func:`last_run_inputs`, the last run's accounting per input, as a dict of
  dicts.

Runners (:mod:`etl.testing.running`): each builds a real pipeline, runs it with the real
runner in a temporary folder, and returns a :class:`RunResult` (output table, rejects,
per-stage counts, summary, plan):

* :func:`run_pipeline`: a small pipeline (a dict, as a TOML file parses to, or a file);
* :func:`run_transform`, :func:`run_source`, :func:`run_sink`: one plugin on given input.

Articles may be given as a list of dicts (``{"text": ..., "title": ...}``), a pyarrow
table or batch, or a list of files (read with the builtin ``text`` source);
:func:`sample_articles` makes a few.

Reading one unit (:mod:`etl.testing.reading`): :func:`source_context` (a real ``Context``
to call ``Source.read`` with), :func:`read_unit` (read one unit; ``(table, rejects)``) and
:func:`run_info` (a real ``RunInfo``).

Contract checks (:mod:`etl.testing.checks`), which raise ``AssertionError`` with a message
that says what is wrong: :func:`check_options`, :func:`check_transform`,
:func:`check_source`, :func:`check_sink_roundtrip`.

Reading what a run committed (:mod:`etl.testing.datasets`): :func:`read_parquet_dataset`,
:func:`read_rejects`, :func:`last_run_inputs`; and :func:`run_cli`, the real command.
"""

from __future__ import annotations

from etl.testing.articles import sample_articles
from etl.testing.checks import (
    check_options,
    check_sink_roundtrip,
    check_source,
    check_transform,
)
from etl.testing.datasets import last_run_inputs, read_parquet_dataset, read_rejects, run_cli
from etl.testing.fixtures import etl_cli, etl_pm, per_input
from etl.testing.harness import COLLECT_SINK, GIVEN_SOURCE, plugin_manager
from etl.testing.reading import read_unit, run_info, source_context
from etl.testing.running import RunResult, run_pipeline, run_sink, run_source, run_transform

__all__ = [
    "COLLECT_SINK",
    "GIVEN_SOURCE",
    "RunResult",
    "check_options",
    "check_sink_roundtrip",
    "check_source",
    "check_transform",
    "etl_cli",
    "etl_pm",
    "last_run_inputs",
    "per_input",
    "plugin_manager",
    "read_parquet_dataset",
    "read_rejects",
    "read_unit",
    "run_cli",
    "run_info",
    "run_pipeline",
    "run_sink",
    "run_source",
    "run_transform",
    "sample_articles",
    "source_context",
]
