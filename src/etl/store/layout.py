"""Where a store keeps things under its root.

Layout of a store (for the parquet sink, the root is the dataset folder itself)::

    part-<run>-<n>.parquet              data of a folder dataset (or key=value/ folders)
    _etl/runs/<run>.json                one manifest per committed run
    _etl/runs/<run>.inputs.pq           each run's per-input account
    _etl/rejects/<run>.rejects.pq       rejects of each run (Parquet; not matched by *.parquet)
    _etl/ids/<run>.ids.pq               ids each run committed (the id index)
    _etl/inputs.pq                      the inputs memory: what was ingested, by fingerprint
    _etl/schema.json                    the dataset's schema and its history
    _etl/staging/<run>/                 files of a run in flight (never *.parquet names)
    _etl/lock                           who is writing now
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from etl.errors import RunError
from etl.store.faults import fault_point
from etl.store.fs import ObjectPath, StorePath, fs_of
from etl.store.fsio import fsync_dir

META_DIR = "_etl"
DATA_SUFFIX = ".parquet"
STAGED_SUFFIX = ".staged"
REJECTS_SUFFIX = ".rejects.pq"
IDS_SUFFIX = ".ids.pq"
INPUTS_FILE = "inputs.pq"
#: a run's per-input account (etl.accounting), beside its manifest in _etl/runs
RUN_INPUTS_SUFFIX = ".inputs.pq"


@dataclass(frozen=True)
class Layout:
    """The paths of a store rooted at ``root`` (a local folder, or an
    :class:`~etl.store.fs.ObjectPath` on an fsspec filesystem).

    Args:
        root: the store's root.
    """

    root: StorePath

    @property
    def remote(self) -> bool:
        """True when the store is on an object store (no renames, no folders)."""
        return isinstance(self.root, ObjectPath)

    @property
    def meta(self) -> StorePath:
        return self.root / META_DIR

    @property
    def runs_dir(self) -> StorePath:
        return self.meta / "runs"

    @property
    def rejects_dir(self) -> StorePath:
        return self.meta / "rejects"

    @property
    def ids_dir(self) -> StorePath:
        return self.meta / "ids"

    @property
    def staging_root(self) -> StorePath:
        return self.meta / "staging"

    @property
    def inputs_path(self) -> StorePath:
        return self.meta / INPUTS_FILE

    @property
    def lock_path(self) -> StorePath:
        return self.meta / "lock"

    def staging(self, run_id: str) -> StorePath:
        return self.staging_root / run_id

    def inside(self, rel: str) -> StorePath:
        """``rel`` under the root; a RunError if it would lead anywhere else."""
        if not isinstance(rel, str):
            raise RunError(f"refusing to write outside the dataset {self.root}: {rel!r}")
        path = self.root / rel
        if self.remote:
            root = posixpath.normpath(str(self.root))
            inside = posixpath.normpath(str(path)).startswith(root + "/")
        else:
            root = os.path.normpath(self.root)
            inside = os.path.normpath(path).startswith(root + os.sep)
        if "\0" in rel or os.path.isabs(rel) or ".." in Path(rel).parts or not inside:
            raise RunError(f"refusing to write outside the dataset {self.root}: {rel!r}")
        return path

    def apply_moves(
        self, deletes: list[str], renames: list[list[str]], *, mark_first: bool = False
    ) -> None:
        """Delete ``deletes``, rename each staged file of ``renames`` (``[staged, final]``,
        relative) into place, then fsync the folders they went to. Idempotent: a file already
        moved is skipped, so a commit can be finished again after a crash. ``mark_first``:
        the fault point ``mid-apply`` strikes after the first rename."""
        fs = fs_of(self.root)
        for rel in deletes:
            self.inside(rel).unlink(missing_ok=True)
        folders = set()
        for n, (staged_rel, final_rel) in enumerate(renames):
            staged, final = self.inside(staged_rel), self.inside(final_rel)
            if self.remote:
                fs.replace(staged, final)  # a copy and a delete; done if staged is gone
            elif staged.exists():
                if not final.parent.is_dir():
                    final.parent.mkdir(parents=True, exist_ok=True)
                    fsync_dir(final.parent.parent)
                fs.replace(staged, final)
            folders.add(final.parent)
            if n == 0 and mark_first:
                fault_point("mid-apply")
        for folder in folders:
            fsync_dir(folder)

    def prune_empty(self, deleted: list[str]) -> None:
        """Remove the folders that deleting ``deleted`` left empty (up to the root)."""
        if self.remote:
            return  # an object store has no folders to leave behind
        for rel in deleted:
            parent = (self.root / rel).parent
            while parent != self.root and parent.is_dir():
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

    def relative(self, path: StorePath) -> str:
        return str(path.relative_to(self.root))  # type: ignore[arg-type]

    def data_files(self) -> list[StorePath]:
        """Data files of a folder dataset (``*.parquet`` outside ``_etl``), in a stable order.

        A folder with its own ``_etl/`` is another dataset: its files are not this one's.
        """
        if isinstance(self.root, ObjectPath):
            return self._object_files()[0]
        if not self.root.is_dir():
            return []
        found = []
        for dirpath, dirs, files in os.walk(self.root):
            dirs[:] = sorted(
                d
                for d in dirs
                if d != META_DIR
                and not d.startswith(".")
                and not os.path.isdir(os.path.join(dirpath, d, META_DIR))
            )
            found.extend(Path(dirpath) / f for f in sorted(files) if f.endswith(DATA_SUFFIX))
        return found

    def _object_files(self) -> tuple[list[StorePath], list[StorePath]]:
        """The data files of a store on an object store (as :meth:`data_files`), and the
        datasets inside it: one listing of every key below the root."""
        assert isinstance(self.root, ObjectPath)
        files: list[StorePath] = []
        nested: set[str] = set()
        keys = self.root.find()
        for item in keys:
            parts = item.relative_to(self.root).parts
            if META_DIR in parts[1:]:
                nested.add("/".join(parts[: parts.index(META_DIR)]))
        for item in keys:
            rel = item.relative_to(self.root)
            folders = rel.parts[:-1]
            if (
                not rel.name.endswith(DATA_SUFFIX)
                or any(p == META_DIR or p.startswith(".") for p in folders)
                or any("/".join(folders[: n + 1]) in nested for n in range(len(folders)))
            ):
                continue
            files.append(item)
        return files, [self.root / rel for rel in sorted(nested)]

    def other_datasets(self) -> tuple[list[StorePath], StorePath | None]:
        """Datasets inside this folder (folders with their own ``_etl/``), and the dataset
        this folder lies inside, if any: writing here would mix the two."""
        if isinstance(self.root, ObjectPath):
            outer = next((p for p in self.root.parents if (p / META_DIR / "runs").is_dir()), None)
            return self._object_files()[1], outer
        inside: list[StorePath] = []
        if self.root.is_dir():
            for dirpath, dirs, _ in os.walk(self.root):
                if Path(dirpath) != self.root and META_DIR in dirs:
                    inside.append(Path(dirpath))
                    dirs[:] = []
                    continue
                dirs[:] = [d for d in dirs if d != META_DIR and not d.startswith(".")]
        outer = None
        for parent in self.root.resolve().parents:
            if (parent / META_DIR / "runs").is_dir():
                outer = parent
                break
        return inside, outer
