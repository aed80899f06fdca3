"""The commit protocol: a run becomes visible at once, or not at all, whatever the sink.

1. The sink stages its data (``Sink.prepare``, which returns a JSON payload) and the store
   stages its own files in ``_etl/staging/<run>/``: the rejects, the per-input account, the
   inputs memory, the ids the run wrote, the schema document. Everything is fsynced.
2. ``_etl/staging/<run>/COMMIT.json`` is written atomically: the sink's name and payload,
   the store's renames and deletes, the manifest. This is the commit point.
3. The sink makes its data visible (``Sink.commit(payload)``, idempotent), the store renames
   its files into place, the manifest goes to ``_etl/runs/``, staging is removed.

Before writing, a new run (or ``etl recover``) finishes any staged run that has a
COMMIT.json (roll forward: step 3 again, with the sink's payload) and deletes any that has
none (roll back). Every path in a commit record must lie inside the store.

On an object store (:mod:`etl.store.fs`) there is no rename and no fsync: COMMIT.json is one
PUT, and each rename of step 3 is a copy then a delete (idempotent: a staged object already
gone, with its destination there, was moved by an earlier attempt).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from etl.errors import RunError
from etl.store.faults import fault_point
from etl.store.fs import fs_of
from etl.store.fsio import COMMIT_FILE, fsync_dir, fsync_files, json_text, write_json_atomic
from etl.store.layout import REJECTS_SUFFIX, RUN_INPUTS_SUFFIX, Layout

#: finishes the sink's part of a commit: (plugin name, payload) -> keys for the manifest
SinkFinisher = Callable[[str, dict[str, Any]], "dict[str, Any] | None"]


def write_commit_point(layout: Layout, run_id: str, record: dict[str, Any]) -> str:
    """fsync what ``record`` names, then write COMMIT.json; return the manifest's JSON text."""
    staging = layout.staging(run_id)
    fsync_files([layout.inside(staged) for staged, _ in record.get("renames", [])])
    for directory in {layout.inside(s).parent for s, _ in record.get("renames", [])}:
        fsync_dir(directory)
    fsync_dir(staging)
    fault_point("before-commit-point")
    # the manifest is encoded once, for COMMIT.json and for the run's manifest file
    manifest_text = json_text(record.get("manifest"))
    rest = {k: v for k, v in record.items() if k != "manifest"}
    rest_text = json_text(rest)
    pieces = (rest_text[:-1], "," if rest else "", '"manifest":', manifest_text, "}")
    write_json_atomic(staging / COMMIT_FILE, None, text=pieces)
    fault_point("after-commit-point")
    return manifest_text


def apply(
    layout: Layout,
    run_id: str,
    finish_sink: SinkFinisher | None,
    written: tuple[dict[str, Any], str] | None = None,
) -> None:
    """Apply (or finish applying) a staged run's COMMIT.json; idempotent.

    ``written``: the record (without manifest) and the manifest's text, when the caller has
    just written them.
    """
    staging = layout.staging(run_id)
    if written is not None:
        record, manifest_text = written
    else:
        record = json.loads((staging / COMMIT_FILE).read_text(encoding="utf-8"))
        manifest_text = None
    _check_paths(layout, record)
    sink = record.get("sink")
    if sink is not None:
        if finish_sink is None:
            raise RunError(
                f"run {run_id} in {layout.root} was committed by the sink '{sink.get('plugin')}', "
                "which this command cannot finish",
                hint="run the pipeline again: it finishes the commit before anything else",
            )
        extra = finish_sink(sink.get("plugin", ""), sink.get("payload") or {})
        if extra:
            manifest = record["manifest"] if manifest_text is None else json.loads(manifest_text)
            record["manifest"] = {**manifest, **extra}
            manifest_text = None
    # a record from before sinks committed their own data holds the data files' renames
    layout.apply_moves(
        record.get("deletes", []), record.get("renames", []), mark_first=sink is None
    )
    _apply_legacy(layout, run_id, record)
    fsync_dir(layout.meta)
    fault_point("before-manifest")
    layout.runs_dir.mkdir(parents=True, exist_ok=True)
    path = layout.runs_dir / f"{run_id}.json"
    if manifest_text is None:
        write_json_atomic(path, record["manifest"])
    else:
        write_json_atomic(path, None, text=manifest_text)
    fault_point("after-manifest")
    fs_of(staging).rmtree(staging)
    fsync_dir(layout.staging_root)
    layout.prune_empty(record.get("deletes", []))


def _check_paths(layout: Layout, record: dict[str, Any]) -> None:
    """Refuse a record that names a path outside the store (a planted or corrupt record)."""
    for pair in record.get("renames", []):
        for rel in pair:
            layout.inside(rel)
    for rel in record.get("deletes", []):
        layout.inside(rel)
    for key in ("rejects", "inputs", "run_inputs"):
        if record.get(key):
            layout.inside(record[key])


def _apply_legacy(layout: Layout, run_id: str, record: dict[str, Any]) -> None:
    """Records written before the store staged everything as renames name three files apart."""
    moves = (
        ("rejects", layout.rejects_dir / f"{run_id}{REJECTS_SUFFIX}"),
        ("inputs", layout.inputs_path),
        ("run_inputs", layout.runs_dir / f"{run_id}{RUN_INPUTS_SUFFIX}"),
    )
    for key, final in moves:
        if record.get(key):
            staged = layout.inside(record[key])
            if staged.exists():
                final.parent.mkdir(parents=True, exist_ok=True)
                fs_of(staged).replace(staged, final)


def recover(layout: Layout, finish_sink: SinkFinisher | None) -> list[tuple[str, str]]:
    """Finish or roll back every staged run; return (run_id, "committed"|"rolled back")."""
    done: list[tuple[str, str]] = []
    if not layout.staging_root.is_dir():
        return done
    for staging in sorted(layout.staging_root.iterdir()):
        if not staging.is_dir():
            continue
        if (staging / COMMIT_FILE).is_file():
            try:
                apply(layout, staging.name, finish_sink)
            except ValueError:
                # COMMIT.json is written atomically; an unreadable one was never complete
                fs_of(staging).rmtree(staging)
                done.append((staging.name, "rolled back"))
                continue
            done.append((staging.name, "committed"))
        else:
            fs_of(staging).rmtree(staging)
            done.append((staging.name, "rolled back"))
    return done
