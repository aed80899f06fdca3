"""The plugin base classes, options and capabilities under their first module name.

They live in :mod:`etl.plugins` (``options``, ``base``, ``capabilities``); this module keeps
``from etl.plugin import Source`` working for plugins written against it.
"""

from etl.plugins.base import (
    KINDS,
    Executor,
    InputRef,
    Part,
    Plugin,
    Registered,
    Sink,
    Source,
    Transform,
    WorkUnit,
    WriteResult,
)
from etl.plugins.capabilities import (
    DecidesOnDriver,
    ReadsMany,
    ReplacesRows,
    SplitsInputs,
    StagedFile,
    WorkerFiles,
    WorkerWriter,
    capabilities,
)
from etl.plugins.options import Option, check_option_declarations, resolve_path, validate_options

__all__ = [
    "KINDS",
    "DecidesOnDriver",
    "Executor",
    "InputRef",
    "Option",
    "Part",
    "Plugin",
    "ReadsMany",
    "ReplacesRows",
    "Registered",
    "Sink",
    "Source",
    "SplitsInputs",
    "StagedFile",
    "Transform",
    "WorkUnit",
    "WorkerFiles",
    "WorkerWriter",
    "WriteResult",
    "capabilities",
    "check_option_declarations",
    "resolve_path",
    "validate_options",
]
