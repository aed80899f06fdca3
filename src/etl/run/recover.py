"""``etl recover DATASET``: finish or roll back runs a crash left in a store.

A run past its commit point names its sink and the payload the sink's ``commit`` needs. The
sink is rebuilt from the store's location alone: with ``path`` set to the store folder (the
parquet and delta sinks keep their state inside their dataset) or to the folder's name
without ``.etl`` (the default location of any other sink with a ``path`` option).
"""

from __future__ import annotations

import os
from typing import Any

from etl.errors import EtlError, RunError
from etl.store import Store


def recover_store(path: str, disable: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Finish or roll back every staged run of the store at ``path``, under its lock."""
    from etl.plugins import get_plugin_manager

    store = Store(path)
    pm = get_plugin_manager(disable=disable)

    def finish(name: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        return _rebuild_sink(pm, name, store.root).commit(payload)

    store.acquire_lock("recover")
    try:
        return store.recover(finish)
    finally:
        store.release_lock()


def _rebuild_sink(pm: Any, name: str, root: Any) -> Any:
    cls = pm.get("sink", name, "[sink]")
    candidates = [str(root)]
    if root.name.endswith(".etl"):
        candidates.append(str(root)[: -len(".etl")])
    for path in candidates:
        try:
            sink = cls({"path": path}, section="[sink]")
        except EtlError:
            continue
        location = sink.location()
        if location is not None and os.path.normpath(location) == os.path.normpath(str(root)):
            return sink
    raise RunError(
        f"cannot rebuild the sink '{name}' that committed into {root} from its location alone",
        hint="run the pipeline that wrote it once: it finishes the commit before anything else",
    )
