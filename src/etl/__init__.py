"""etl: plugin-based ingestion of news articles into Parquet datasets.

The public API: the hook marker, the plugin base classes, the article schema and the errors.
Names are imported on first use (a module ``__getattr__``), so ``import etl`` and
``etl --help`` do not pay for pyarrow until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    # user code for the `python` transform declares how it is called with these decorators
    "per_article": "etl.transforms.python",
    "per_batch": "etl.transforms.python",
    "REJECTS_SCHEMA": "etl.context",
    "Context": "etl.context",
    "RunInfo": "etl.context",
    "ConfigError": "etl.errors",
    "EtlError": "etl.errors",
    "MissingDependency": "etl.errors",
    "PluginError": "etl.errors",
    "RunError": "etl.errors",
    "hookimpl": "etl.hookspecs",
    "Executor": "etl.plugin",
    "InputRef": "etl.plugin",
    "Option": "etl.plugin",
    "Plugin": "etl.plugin",
    "Sink": "etl.plugin",
    "Source": "etl.plugin",
    "Transform": "etl.plugin",
    "WorkUnit": "etl.plugin",
    "WriteResult": "etl.plugin",
    "DecidesOnDriver": "etl.plugin",
    "ReadsMany": "etl.plugin",
    "ReplacesRows": "etl.plugin",
    "Part": "etl.plugin",
    "SplitsInputs": "etl.plugin",
    "StagedFile": "etl.plugin",
    "WorkerFiles": "etl.plugin",
    "WorkerWriter": "etl.plugin",
    "ARTICLE_SCHEMA": "etl.schema",
    "article_ids": "etl.schema",
    "make_articles": "etl.schema",
    "FileSource": "etl.sources",
    "set_column": "etl.schema",
}

__all__ = [
    "ARTICLE_SCHEMA",
    "REJECTS_SCHEMA",
    "ConfigError",
    "Context",
    "DecidesOnDriver",
    "EtlError",
    "Executor",
    "FileSource",
    "InputRef",
    "MissingDependency",
    "Option",
    "Part",
    "Plugin",
    "PluginError",
    "RunError",
    "ReadsMany",
    "ReplacesRows",
    "RunInfo",
    "Sink",
    "Source",
    "SplitsInputs",
    "StagedFile",
    "Transform",
    "WorkUnit",
    "WorkerFiles",
    "WorkerWriter",
    "WriteResult",
    "__version__",
    "article_ids",
    "hookimpl",
    "make_articles",
    "per_article",
    "per_batch",
    "set_column",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'etl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from etl.context import REJECTS_SCHEMA, Context, RunInfo
    from etl.errors import ConfigError, EtlError, MissingDependency, PluginError, RunError
    from etl.hookspecs import hookimpl
    from etl.plugin import (
        DecidesOnDriver,
        Executor,
        InputRef,
        Option,
        Part,
        Plugin,
        ReadsMany,
        ReplacesRows,
        Sink,
        Source,
        SplitsInputs,
        StagedFile,
        Transform,
        WorkerFiles,
        WorkerWriter,
        WorkUnit,
        WriteResult,
    )
    from etl.schema import ARTICLE_SCHEMA, article_ids, make_articles
    from etl.transforms.python import per_article, per_batch
