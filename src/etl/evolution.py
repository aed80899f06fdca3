"""Schema evolution: a dataset's columns may grow across runs; a column's type may only widen.

The dataset's current schema and its history live in ``_etl/schema.json``::

    {"version": 1,
     "schema": [{"name": "id", "type": "string", "nullable": false}, ...],
     "arrow": "<base64 of the serialized Arrow schema>",
     "history": [{"run_id": ..., "at": ..., "change": "created", "columns": 14},
                 {"run_id": ..., "at": ..., "change": "added", "added": ["tags"]},
                 {"run_id": ..., "at": ..., "change": "widened",
                  "widened": [{"name": "n", "from": "int32", "to": "int64"}]}]}

A sink calls :func:`plan_schema` when it opens (before anything is written): it compares the
run's schema with the dataset's, refuses a change that cannot be widened safely (a
:class:`~etl.errors.ConfigError` naming the column, both types and the way out), and returns
the unified schema. At commit, :func:`stage_schema` writes the new ``schema.json`` into the
run's staging folder and returns the rename that the dataset's commit applies with the data
files, so the schema changes exactly when the data does.

Older files are never rewritten: readers unify by column name (DuckDB ``union_by_name``,
Polars ``how="diagonal_relaxed"``, Spark ``mergeSchema``, ``pyarrow.dataset`` given
:func:`unified_schema`), and rows written before a column existed read as null in it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from etl.errors import ConfigError

SCHEMA_FILE = "schema.json"
FORMAT_VERSION = 1

_INT_RANK = {pa.int8(): 1, pa.int16(): 2, pa.int32(): 3, pa.int64(): 4}
_UINT_RANK = {pa.uint8(): 1, pa.uint16(): 2, pa.uint32(): 3, pa.uint64(): 4}
_FLOAT_RANK = {pa.float16(): 1, pa.float32(): 2, pa.float64(): 3}
_STRING_RANK = {pa.string(): 1, pa.large_string(): 2}
_BINARY_RANK = {pa.binary(): 1, pa.large_binary(): 2}
_FAMILIES = (_INT_RANK, _UINT_RANK, _FLOAT_RANK, _STRING_RANK, _BINARY_RANK)


def wider_type(old: pa.DataType, new: pa.DataType) -> pa.DataType | None:
    """The type both ``old`` and ``new`` values fit in without loss, or None if there is none.

    Safe widenings: equal types; anything from or to null; a signed integer to a wider signed
    integer (and the same for unsigned, floats, string -> large_string, binary ->
    large_binary). Everything else (string <-> number, integer <-> float, timestamp units or
    zones, nested types that differ) is refused: readers would disagree on what the old rows
    mean, or refuse to read them as one column.
    """
    if old.equals(new):
        return old
    if pa.types.is_null(old):
        return new
    if pa.types.is_null(new):
        return old
    for family in _FAMILIES:
        if old in family and new in family:
            return old if family[old] >= family[new] else new
    return None


@dataclass
class SchemaPlan:
    """What a run does to the dataset's schema (from :func:`plan_schema`)."""

    schema: pa.Schema
    #: what the history records for this run: created, added, widened, overwrite, or None
    change: str | None
    added: list[str] = field(default_factory=list)
    widened: list[dict[str, str]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def schema_path(root: Any) -> Any:
    from etl.store.fs import store_path

    return store_path(root) / "_etl" / SCHEMA_FILE


def _encode(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def _decode(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def read_schema_file(root: Path) -> dict[str, Any] | None:
    """The parsed ``_etl/schema.json`` of a dataset, or None where there is none."""
    path = schema_path(root)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None


def _files_schema(root: Path) -> pa.Schema | None:
    """The unified schema of a dataset's data files (footers only), for datasets that predate
    ``schema.json``; partition columns read as strings, as hive readers see them."""
    import pyarrow.parquet as pq

    from etl.store import Store as Dataset
    from etl.store.fs import arrow

    files = Dataset(root).data_files()
    if not files:
        return None
    fields: dict[str, pa.Field] = {}
    for path in files:
        where, fs = arrow(path)
        for f in pq.read_schema(where, filesystem=fs):
            known = fields.get(f.name)
            if known is None:
                fields[f.name] = f
            else:
                wide = wider_type(known.type, f.type) or known.type
                fields[f.name] = known.with_type(wide).with_nullable(known.nullable or f.nullable)
        rel = path.relative_to(root).parts[:-1]
        for segment in rel:
            name, _, _ = segment.partition("=")
            if name and name not in fields:
                fields[name] = pa.field(name, pa.string())
    return pa.schema(list(fields.values()))


def unified_schema(root: str | Path) -> pa.Schema | None:
    """The dataset's current schema: every column any committed run wrote, at its widest type.

    From ``_etl/schema.json``; a dataset written before it existed gets the union of its data
    files' schemas. None for an empty dataset.
    """
    return _current_schema(root, read_schema_file(root))


def _current_schema(root: Path, meta: dict[str, Any] | None) -> pa.Schema | None:
    """:func:`unified_schema`, with the dataset's ``schema.json`` as read (``meta``)."""
    if meta and meta.get("arrow"):
        try:
            return _decode(meta["arrow"])
        except (ValueError, pa.ArrowInvalid):
            pass
    return _files_schema(root)


def schema_history(root: str | Path) -> list[dict[str, Any]]:
    return _history(read_schema_file(root))


def _history(meta: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list(meta.get("history", [])) if meta else []


def plan_schema(
    root: str | Path,
    schema: pa.Schema,
    *,
    mode: str,
    plugin: str = "parquet",
    section: str = "[sink]",
    current: pa.Schema | None = None,
) -> SchemaPlan:
    """Compare a run's schema with the dataset's; refuse an unsafe type change.

    Args:
        root: the dataset folder (or table location).
        schema: the schema this run writes.
        mode: the sink's mode; ``overwrite`` replaces the schema without checks.
        plugin, section: named in the error.
        current: the dataset's schema when the caller knows it (a Delta table's); else read
            with :func:`unified_schema`.

    Raises:
        ConfigError: a column's type changes in a way no reader can unify.
    """
    from etl.store.fs import store_path

    root = store_path(root)
    meta = read_schema_file(root)
    history = _history(meta)
    old = current if current is not None else _current_schema(root, meta)
    if old is None:
        return SchemaPlan(schema, "created", history=history)
    if mode == "overwrite":
        return SchemaPlan(schema, "overwrite" if not old.equals(schema) else None, history=history)
    fields: list[pa.Field] = []
    widened: list[dict[str, str]] = []
    new_names = set(schema.names)
    for f in old:
        if f.name not in new_names:
            # a column this run does not write stays: its rows in this run read as null
            fields.append(f.with_nullable(True))
            continue
        nf = schema.field(f.name)
        wide = wider_type(f.type, nf.type)
        if wide is None:
            raise ConfigError(
                f"plugin '{plugin}' ({section}): column '{f.name}' is {f.type} in the dataset "
                f"{root} but {nf.type} in this run; {f.type} cannot be widened to {nf.type} "
                "safely, so nothing was written",
                hint='to replace the dataset and its schema, run with mode = "overwrite" '
                "(--set sink.mode=overwrite); to keep both, write to a new dataset path; "
                f"or cast '{f.name}' back to {f.type} in a transform",
            )
        if not wide.equals(f.type):
            widened.append({"name": f.name, "from": str(f.type), "to": str(wide)})
        fields.append(f.with_type(wide).with_nullable(f.nullable or nf.nullable))
    old_names = set(old.names)
    added = [f.name for f in schema if f.name not in old_names]
    # a column added by a later run has no value in the older rows
    fields.extend(schema.field(n).with_nullable(True) for n in added)
    change = "added" if added else None
    if widened:
        change = "widened" if not added else "added+widened"
    return SchemaPlan(pa.schema(fields), change, added, widened, history)


def schema_document(plan: SchemaPlan, run_id: str) -> dict[str, Any]:
    """The ``schema.json`` content after a run that followed ``plan``."""
    history = list(plan.history)
    if plan.change is not None or not history:
        entry: dict[str, Any] = {
            "run_id": run_id,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "change": plan.change or "created",
            "columns": len(plan.schema),
        }
        if plan.added and plan.change != "created":
            entry["added"] = plan.added
        if plan.widened:
            entry["widened"] = plan.widened
        history.append(entry)
    return {
        "version": FORMAT_VERSION,
        "schema": [
            {"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in plan.schema
        ],
        "arrow": _encode(plan.schema),
        "history": history,
    }


def stage_schema(root: Path, staging: Path, plan: SchemaPlan, run_id: str) -> list[list[str]]:
    """Write the new ``schema.json`` into ``staging``; return the rename for the commit plan.

    The rename (``[staged, "_etl/schema.json"]``, relative to the dataset root) goes into the
    run's COMMIT.json with the data files, so the schema is replaced atomically with them and
    rolled forward with them after a crash.
    """
    from etl.store import write_json_atomic

    staged = staging / "schema.json.staged"
    write_json_atomic(staged, schema_document(plan, run_id))
    return [[str(staged.relative_to(root)), str(schema_path(root).relative_to(root))]]
