"""The store layer: a dataset's state, owned by the framework and not by any sink.

:class:`Store` is the facade; its parts each do one job: :mod:`~etl.store.layout` (paths),
:mod:`~etl.store.lock` (the writer lock), :mod:`~etl.store.memory` (the inputs memory),
:mod:`~etl.store.ids` (the id index), :mod:`~etl.store.commit` (the commit protocol),
:mod:`~etl.store.hashing` (key digests, content hashes), :mod:`~etl.store.faults` (fault
injection for the crash tests), :mod:`~etl.store.fs` (a local folder or an fsspec URL: the
filesystem seam).
"""

from etl.store.faults import (
    CRASH_ENV,
    CRASH_EXIT,
    FAIL_ENV,
    FAULT_POINTS,
    RACE_POINTS,
    SLOW_ENV,
    fault_point,
)
from etl.store.fsio import (
    COMMIT_FILE,
    fsync_dir,
    fsync_file,
    fsync_files,
    json_text,
    write_json_atomic,
)
from etl.store.hashing import (
    CONTENT_HASH,
    ContentHasher,
    content_hash,
    file_content_hash,
    file_sha256,
    key_digest,
)
from etl.store.layout import (
    DATA_SUFFIX,
    IDS_SUFFIX,
    INPUTS_FILE,
    META_DIR,
    REJECTS_SUFFIX,
    RUN_INPUTS_SUFFIX,
    STAGED_SUFFIX,
    Layout,
)
from etl.store.store import Store

__all__ = [
    "COMMIT_FILE",
    "CONTENT_HASH",
    "CRASH_ENV",
    "CRASH_EXIT",
    "DATA_SUFFIX",
    "FAIL_ENV",
    "FAULT_POINTS",
    "IDS_SUFFIX",
    "INPUTS_FILE",
    "META_DIR",
    "RACE_POINTS",
    "REJECTS_SUFFIX",
    "RUN_INPUTS_SUFFIX",
    "SLOW_ENV",
    "STAGED_SUFFIX",
    "ContentHasher",
    "Layout",
    "Store",
    "content_hash",
    "file_content_hash",
    "file_sha256",
    "fault_point",
    "fsync_dir",
    "fsync_file",
    "fsync_files",
    "json_text",
    "key_digest",
    "write_json_atomic",
]
