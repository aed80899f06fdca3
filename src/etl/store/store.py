"""A dataset's state, owned by the framework: one object over layout, lock, inputs memory,
id index, manifests, rejects, schema history and the commit protocol.

The runner opens a :class:`Store` at the sink's :meth:`~etl.plugin.Sink.location`; the sink
only writes its data and joins the commit. See docs/design.md ("The store layer").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.store import commit as protocol
from etl.store.fs import StorePath, arrow, fs_of, store_path
from etl.store.fsio import COMMIT_FILE, write_json_atomic
from etl.store.ids import IdIndex, id_set
from etl.store.layout import REJECTS_SUFFIX, RUN_INPUTS_SUFFIX, STAGED_SUFFIX, Layout
from etl.store.lock import WriterLock
from etl.store.memory import InputsMemory

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.accounting import InputRows
    from etl.plugin import WorkUnit


class Store:
    """The state of the dataset rooted at ``root`` (its metadata lives in ``root/_etl``).

    Args:
        root: the store's folder; for the parquet sink, the dataset folder itself. A URL
            (``s3://bucket/out``, ``memory://out``) puts it on that fsspec filesystem.
        storage_options: for a URL, the filesystem's options (a section's
            ``storage_options``: endpoint, region, credentials...).
    """

    def __init__(
        self, root: StorePath | str, storage_options: Mapping[str, Any] | None = None
    ) -> None:
        self.root = store_path(root, storage_options)
        self.layout = Layout(self.root)
        self.lock = WriterLock(self.layout.lock_path, self.root)
        self.memory = InputsMemory(self.layout, self.manifests, self.run_inputs)
        self.index = IdIndex(self.layout)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # paths (kept as attributes: tools and tests read them)

    @property
    def meta(self) -> StorePath:
        return self.layout.meta

    @property
    def runs_dir(self) -> StorePath:
        return self.layout.runs_dir

    @property
    def rejects_dir(self) -> StorePath:
        return self.layout.rejects_dir

    @property
    def staging_root(self) -> StorePath:
        return self.layout.staging_root

    @property
    def inputs_path(self) -> StorePath:
        return self.layout.inputs_path

    def staging(self, run_id: str) -> StorePath:
        return self.layout.staging(run_id)

    def data_files(self) -> list[StorePath]:
        return self.layout.data_files()

    # reading committed state

    def exists(self) -> bool:
        runs = self.runs_dir
        return runs.is_dir() and any(runs.glob("*.json")) or bool(self.data_files())

    def version(self) -> str | None:
        """What changes with every commit: the newest manifest's name (with how many there
        are); None while a commit is being applied (a staged ``COMMIT.json`` exists)."""
        if self.staging_root.is_dir() and any(self.staging_root.glob(f"*/{COMMIT_FILE}")):
            return None
        names = (
            sorted(p.name for p in self.runs_dir.glob("*.json")) if self.runs_dir.is_dir() else []
        )
        return f"{len(names)}:{names[-1] if names else ''}"

    def manifests(self) -> list[dict[str, Any]]:
        """Manifests of committed runs, in commit order (runs commit one at a time, under the
        lock; ids of runs from before ids carried microseconds sort by start second only)."""
        if not self.runs_dir.is_dir():
            return []
        out = []
        for path in sorted(self.runs_dir.glob("*.json")):
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        out.sort(key=lambda m: str(m.get("finished_at") or ""))
        return out

    def rejects_files(self) -> list[StorePath]:
        folder = self.rejects_dir
        return sorted(folder.glob(f"*{REJECTS_SUFFIX}")) if folder.is_dir() else []

    def run_inputs(self, manifest: dict[str, Any]) -> list[dict[str, Any]]:
        """A committed run's per-input account, one dict per input (docs/reliability.md).

        Read from ``_etl/runs/<run>.inputs.pq``; manifests written before that file existed
        hold the list themselves (``summary.per_input``).
        """
        import pyarrow.parquet as pq

        summary = manifest.get("summary", {})
        name = summary.get("inputs_file")
        if not name:
            return list(summary.get("per_input", []))
        try:
            where, fs = arrow(self.runs_dir / Path(name).name)
            return pq.read_table(where, filesystem=fs).to_pylist()
        except (OSError, ValueError):
            return []

    def remembered_inputs(self) -> dict[str, tuple[Any, Any, Any, Any]]:
        """What earlier runs ingested: ``{key_digest: (size, mtime, content_hash, fingerprint)}``."""
        return self.memory.remembered()

    def changed_units(self, units: Sequence[WorkUnit]) -> list[WorkUnit]:
        """The units an append run must read: those the memory does not know unchanged."""
        return self.memory.changed(units)

    def ids(self) -> set[str]:
        """The ids of every committed article: the id index, or for a dataset written
        before the index existed, the ``id`` column of its data files."""
        files = self.index.files()
        if files or self.index.exists() or not self.runs_dir.is_dir():
            return self.index.ids(files)
        return id_set(self.data_files())

    # writing

    def acquire_lock(self, run_id: str, *, wait: float = 0.0) -> None:
        """Take the store's writer lock, or fail naming its holder (see WriterLock)."""
        self.lock.acquire(run_id, wait=wait)

    def release_lock(self) -> None:
        self.lock.release()

    def begin(self, run_id: str) -> StorePath:
        """Make the run's staging folder and return it."""
        staging = self.staging(run_id)
        staging.mkdir(parents=True, exist_ok=True)
        return staging

    def committed_point(self, run_id: str) -> bool:
        """True once the run's COMMIT.json exists (it will be finished, never rolled back)."""
        return (self.staging(run_id) / COMMIT_FILE).is_file()

    def committed(self, run_id: str) -> bool:
        """True once the run passed its commit point: its COMMIT.json exists or, once the
        commit is finished (staging removed), its manifest does."""
        return self.committed_point(run_id) or (self.runs_dir / f"{run_id}.json").is_file()

    def commit(
        self,
        run_id: str,
        *,
        sink: tuple[str, dict[str, Any]],
        finish_sink: protocol.SinkFinisher,
        manifest: dict[str, Any],
        rejects: pa.Table | None = None,
        account: InputRows | None = None,
        ids: pa.Array | None = None,
        id_inputs: pa.Array | None = None,
        removed_ids: pa.Array | None = None,
        schema_document: dict[str, Any] | None = None,
        replace: bool = False,
    ) -> None:
        """Stage the store's files, write the commit point, then apply it.

        Args:
            run_id: the run.
            sink: the sink's name and the payload its ``prepare`` returned.
            finish_sink: calls the sink's ``commit`` with a payload.
            manifest: the run manifest (its summary's ``per_input`` goes to a table).
            rejects: the run's rejects table.
            account: the per-input account (remembered rows join the inputs memory).
            ids: the ids the run wrote (they join the id index).
            id_inputs: the key digest of each id's input (what ``--reprocess`` replaces by).
            removed_ids: ids of committed rows the sink's commit removes (the index forgets
                them).
            schema_document: the new ``schema.json`` content.
            replace: an overwrite run: forget earlier inputs and ids.
        """
        import pyarrow.parquet as pq

        layout = self.layout
        staging = self.begin(run_id)
        renames: list[list[str]] = []
        deletes: list[str] = []

        def stage(name: str, final: StorePath) -> Any:
            path = staging / name
            renames.append([layout.relative(path), layout.relative(final)])
            where, fs = arrow(path)
            return {"where": where, "filesystem": fs}

        # written even when empty: every run has one, so a reader's glob over the rejects
        # folder (the documented query) finds a file on any dataset
        if rejects is not None:
            pq.write_table(
                rejects,
                **stage(f"rejects{STAGED_SUFFIX}", self.rejects_dir / f"{run_id}{REJECTS_SUFFIX}"),
                compression="zstd",
            )
        summary = dict(manifest.get("summary", {}))
        if account is not None:
            # one row per input: paths, keys and hashes are distinct (no dictionary)
            pq.write_table(
                account.table,
                **stage(
                    f"run-inputs{STAGED_SUFFIX}", self.runs_dir / f"{run_id}{RUN_INPUTS_SUFFIX}"
                ),
                compression="zstd",
                use_dictionary=["source"],
            )
            summary.pop("per_input", None)
            summary["inputs_file"] = f"{run_id}{RUN_INPUTS_SUFFIX}"
        if account is not None or replace:
            staged = self.memory.stage(run_id, account, replace=replace)
            renames.append([staged, layout.relative(layout.inputs_path)])
        if replace:
            deletes += [layout.relative(f) for f in self.index.files()]
        elif removed_ids is not None:
            kept, emptied = self.index.stage_removal(run_id, removed_ids)
            renames += kept
            deletes += emptied
        if ids is not None and len(ids):
            renames.append([self.index.stage(run_id, ids, id_inputs), self.index.final(run_id)])
        if schema_document is not None:
            stage("schema.json.staged", self.meta / "schema.json")
            write_json_atomic(staging / "schema.json.staged", schema_document)
        record = {
            "sink": {"plugin": sink[0], "payload": sink[1]},
            "renames": renames,
            "deletes": deletes,
            "manifest": {**manifest, "summary": summary},
        }
        # a run that stalled past its lease may have lost the lock to another host's run:
        # then it must not commit (the other run owns the dataset now)
        self.lock.check()
        manifest_text = protocol.write_commit_point(layout, run_id, record)
        rest = {k: v for k, v in record.items() if k != "manifest"}
        protocol.apply(layout, run_id, finish_sink, written=(rest, manifest_text))

    def abort(self, run_id: str) -> None:
        """Drop a run's staging, unless it passed the commit point (then finish it)."""
        staging = self.staging(run_id)
        if (staging / COMMIT_FILE).is_file():
            return  # finished by the caller or by the next run's recovery
        fs_of(staging).rmtree(staging)

    def apply(self, run_id: str, finish_sink: protocol.SinkFinisher | None = None) -> None:
        """Finish a run past its commit point (idempotent)."""
        protocol.apply(self.layout, run_id, finish_sink)

    def recover(self, finish_sink: protocol.SinkFinisher | None = None) -> list[tuple[str, str]]:
        """Finish or roll back every staged run; return (run_id, "committed"|"rolled back").

        ``finish_sink`` finishes a sink's part of a commit; without it, a run whose record
        names a sink is refused with a message saying how to finish it.
        """
        finished = protocol.recover(self.layout, finish_sink)
        self.memory.forget()  # a run rolled forward brought its memory
        return finished
