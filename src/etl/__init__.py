"""etl: plugin-based ingestion of news articles into Parquet datasets.

The public API: the hook marker, the plugin base classes, the article schema and the errors.
"""

# user code for the `python` transform declares how it is called with these decorators
from etl.builtin.transforms.python import per_article, per_batch
from etl.context import REJECTS_SCHEMA, Context, RunInfo
from etl.errors import ConfigError, EtlError, MissingDependency, PluginError, RunError
from etl.hookspecs import hookimpl
from etl.plugin import (
    Executor,
    InputRef,
    Option,
    Plugin,
    Sink,
    Source,
    Transform,
    WorkUnit,
    WriteResult,
)
from etl.schema import ARTICLE_SCHEMA, article_ids, make_articles

__version__ = "0.1.0"

__all__ = [
    "ARTICLE_SCHEMA",
    "REJECTS_SCHEMA",
    "ConfigError",
    "Context",
    "EtlError",
    "Executor",
    "InputRef",
    "MissingDependency",
    "Option",
    "Plugin",
    "PluginError",
    "RunError",
    "RunInfo",
    "Sink",
    "Source",
    "Transform",
    "WorkUnit",
    "WriteResult",
    "__version__",
    "article_ids",
    "hookimpl",
    "make_articles",
    "per_article",
    "per_batch",
]
