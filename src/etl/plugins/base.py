"""Base classes of the four plugin kinds and the data they exchange.

A plugin is a class with a ``name``, a tuple of :class:`~etl.plugins.options.Option`
declarations and one job:

* a :class:`Source` lists independent work units and yields article batches for one unit;
* a :class:`Transform` maps a batch to a batch;
* a :class:`Sink` writes a run's articles and joins its atomic commit;
* an :class:`Executor` runs a job's work units (in process, on processes, on a cluster).

What a plugin can do beyond its kind is declared with the capability base classes of
:mod:`etl.plugins.capabilities`, never found by probing for methods.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar

from etl.errors import ConfigError
from etl.plugins.options import Option, validate_options

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.context import Context
    from etl.executors.api import Job
    from etl.stream import StreamStats


class Plugin:
    """Common ground of every plugin kind.

    Subclasses set ``name`` (unique per kind), ``options`` and a docstring whose first line
    ``etl plugins`` shows. Build one with ``PluginClass(config, section=..., base_dir=...)``.

    Args:
        config: the option values from the pipeline file (the ``plugin`` key excluded).
        section: where it was configured, for messages (``[[sources]] #1 in p.toml``).
        base_dir: the folder relative paths are resolved against.
    """

    kind: ClassVar[str] = "plugin"
    name: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    #: distribution that supplied the class; filled in by the plugin manager
    supplier: ClassVar[str] = ""
    supplier_version: ClassVar[str] = ""

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        section: str = "",
        base_dir: Path | str | None = None,
    ) -> None:
        self.section = section or f"[{self.kind}] {self.name}"
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        self.config = dict(config or {})
        self.opts = SimpleNamespace(
            **validate_options(type(self), self.config, self.section, self.base_dir)
        )

    @classmethod
    def summary(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    def fingerprint(self) -> dict[str, Any]:
        """What in this plugin decides the rows an input gives: its name and the values of
        its options declared with ``fingerprint=True`` (the default).

        A change between runs makes ``etl run`` say the pipeline changed and offer
        ``--reprocess``. Override it to add what else decides the rows (the ``python``
        transform adds its function's source code).
        """
        opts = vars(self.opts)
        options = {o.name: opts.get(o.name) for o in type(self).options if o.fingerprint}
        return {"plugin": self.name, "options": options}

    def error(self, message: str, hint: str | None = None) -> ConfigError:
        """A configuration error that names this plugin and its section."""
        return ConfigError(f"plugin '{self.name}' ({self.section}): {message}", hint=hint)

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r} {self.section}>"


@dataclass(frozen=True, slots=True)
class InputRef:
    """One input that a work unit reads: a file, a URL, an object, a slice of a table.

    The framework's store remembers each input it ingested and skips it on the next append
    run while it is unchanged. "Unchanged" is decided from the ``fingerprint`` when the
    source gives one; else from ``size`` and ``mtime`` (and, when only the mtime moved, a
    hash of the file's bytes); an input with none of them is read on every run.

    Args:
        key: the path, URL or any stable name; rejects name it as their ``input``.
        size: bytes, when known without reading.
        mtime: modification time (seconds since the epoch), when known.
        fingerprint: a string that changes whenever the input's content may have changed
            (an ETag or version id, a content hash, a database's max rowid and row count).
            Cheap to compute at listing time; never read the whole input for it.
        problem: ``(reject reason, detail)`` when the listing found the input must not or
            cannot be read (a folder it could not list, a link leading out of the input
            folder): the readers of :mod:`etl.inputs` raise it as the input's reject
            without opening anything.
    """

    key: str
    size: int | None = None
    mtime: float | None = None
    fingerprint: str | None = None
    problem: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Part:
    """Where a work unit lies in its input, when a source split the input into parts.

    Set by a source that implements :class:`~etl.plugins.capabilities.SplitsInputs`. A
    part owns the records that *start* in ``[start, end)``; the framework accounts, dedups
    and remembers the input as a whole (see docs/design.md, "Byte-range units").

    Args:
        index: the part's position among its input's parts (0 first).
        count: how many parts the input was split into.
        start: first byte of the range (at a record boundary).
        end: the byte after the range (at a record boundary, or the input's size).
        first_line: lines before ``start``, so that a part reports the input's own line
            numbers (``line 1`` is the input's first line, whatever part reads it).
    """

    index: int
    count: int
    start: int
    end: int
    first_line: int = 0


@dataclass(frozen=True, slots=True)
class WorkUnit:
    """One independent piece of work: a file, a URL, a feed, a WARC file.

    Units must be picklable: executors ship them to other processes and machines.
    The executor joins the small batches of consecutive units into full batches, so a
    source may make one unit per file even when files hold one article each.

    Args:
        input: the input the unit reads.
        data: anything else the source needs to read the unit (picklable).
        source_index: which ``[[sources]]`` entry listed it; set by the runner.
        part: where in the input the unit lies, for a part of a split input; None for a
            whole input.
    """

    input: InputRef
    data: Any = None
    source_index: int = 0
    part: Part | None = None

    @property
    def key(self) -> str:
        return self.input.key


class Source(Plugin):
    """Lists work units and yields article batches for one unit."""

    kind: ClassVar[str] = "source"

    def units(self) -> Iterable[WorkUnit]:
        """Every independent input of this source, cheaply (no reading of contents)."""
        raise NotImplementedError

    def read(self, unit: WorkUnit, ctx: Context) -> Iterator[pa.RecordBatch]:
        """Yield article batches for one unit; report bad records with ``ctx.reject``.

        Build batches with ``ctx.articles(text=[...], uri=[...], ...)``, which fills in the
        id, counts, source, run id and the columns the source leaves empty.
        """
        raise NotImplementedError

    def probe(self, unit: WorkUnit) -> None:
        """Check that this machine can open the unit's input, without reading it through.

        The dask executor calls it before any task, on the driver and then on every worker
        with the first unit the driver could open: a worker that cannot reach the inputs
        fails the run at once, named in the error. Raise :class:`etl.errors.InputError` (or
        ``OSError``) where the input cannot be opened. The default checks nothing (for a
        source that cannot tell cheaply); file sources open the input and read a byte.
        """


class Transform(Plugin):
    """Maps an article batch to an article batch.

    A transform may drop rows and add the columns it declares in :meth:`output_schema`;
    it never changes ``id``.
    """

    kind: ClassVar[str] = "transform"

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        """The schema of the batches this transform returns, given its input schema."""
        return schema

    def open(self, run: Any) -> None:  # noqa: B027 - optional lifecycle step
        """Called once before the first batch, with the run's :class:`~etl.context.RunInfo`."""

    def process(self, batch: pa.RecordBatch, ctx: Context) -> pa.RecordBatch:
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional lifecycle step
        """Called once after the last batch."""


@dataclass
class WriteResult:
    """What a sink did with one batch (returning one from ``write`` is optional).

    Args:
        written: rows it will commit.
        duplicates: kept for older sinks; the framework removes duplicate ids itself.
        kept: kept for older sinks; ignored.
    """

    written: int = 0
    duplicates: int = 0
    kept: Any = None


class Sink(Plugin):
    """Writes a run's articles and takes part in its atomic commit.

    The framework owns the dataset's state, in a store at :meth:`location`: the writer lock,
    the inputs memory (incremental re-runs), the id index (exactly-once), the rejects table,
    run manifests and schema history. A sink only writes its data and joins the commit:

    1. ``open(run, schema)``, then ``write(batch)`` for each batch: every row is new (the
       framework drops ids the dataset or this run already holds before the sink sees them);
    2. ``prepare(summary)`` stages everything durably and returns a JSON-able payload;
    3. the store writes its commit point (with that payload), then calls ``commit(payload)``,
       which makes the data visible at once. ``commit`` must be idempotent: after a crash,
       the next run calls it again, with the same payload, on a sink built from the same
       options and never opened. What it returns (a dict, or None) is added to the run's
       manifest (the delta sink records its table version);
    4. on any failure before the commit point, ``abort()`` drops what was staged.

    A sink that can take files written by worker processes implements :class:`WorkerFiles`
    as well; every other sink runs under every executor, with the driver writing the
    workers' batches. A sink that can remove committed rows in its commit implements
    :class:`ReplacesRows`, and gets ``mode = "merge"`` and ``etl run --reprocess``.
    """

    kind: ClassVar[str] = "sink"
    #: True when the sink writes its data at a URL of any fsspec filesystem itself (its
    #: :meth:`location` may then be ``s3://...``: the store lives there too); False: a URL
    #: is refused before the run (``etl validate`` says so)
    object_stores: ClassVar[bool] = False

    def storage_options(self) -> dict[str, Any]:
        """The filesystem options of the sink's location when it is a URL: the section's
        ``storage_options`` (endpoint, region, credentials...), ``{}`` when it has none."""
        return dict(vars(self.opts).get("storage_options") or {})

    def location(self) -> str | None:
        """Where the framework keeps this dataset's state (``<location>/_etl/``).

        Default: the sink's ``path`` option plus ``.etl`` when it declares one (a sink
        writing ``news.duckdb`` keeps its state in ``news.duckdb.etl/``); None keeps the state
        in a temporary folder for this run only (no incremental re-runs, no dedup across runs).
        """
        path = vars(self.opts).get("path")
        return f"{path}.etl" if isinstance(path, str) and path else None

    def mode(self) -> str:
        """``append`` (keep what is there, skip known ids and unchanged inputs), ``overwrite``
        (replace the dataset at commit), ``merge`` (append, and a row whose :meth:`key`
        matches a committed row replaces it; needs :class:`ReplacesRows`) or ``error``
        (refuse an existing dataset).

        Default: the sink's ``mode`` option when it declares one, else ``append``. A run with
        ``[run] checkpoint`` in overwrite or error mode sets that option to ``append`` after
        its first checkpoint (which replaced or created the dataset); a sink without the
        option takes checkpoints in append and merge mode only.
        """
        mode = vars(self.opts).get("mode")
        return mode if mode in ("append", "overwrite", "merge", "error") else "append"

    def key(self) -> str:
        """The column that names an article across versions, for ``mode = "merge"``.

        Default: the sink's ``key`` option when it declares one, else ``uri``.
        """
        key = vars(self.opts).get("key")
        return key if isinstance(key, str) and key else "uri"

    def open(self, run: Any, schema: pa.Schema) -> None:
        """Prepare to receive batches of ``schema`` for the run ``run`` (a RunInfo)."""
        raise NotImplementedError

    def write(self, batch: pa.RecordBatch) -> WriteResult | None:
        """Stage one batch of new articles (at most ``run.batch_size`` rows)."""
        raise NotImplementedError

    def prepare(self, summary: Mapping[str, Any]) -> dict[str, Any]:
        """Stage everything durably; return what :meth:`commit` needs (JSON-able).

        ``summary`` holds the run's counts (``run_id``, ``read``, ``written``,
        ``duplicates``, ``dropped``, ``rejected``) and ``schema_change`` (None, "created",
        "added", "widened"...), for a sink that records them in its own log.
        """
        return {}

    def commit(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Make the run's data visible at once. Idempotent: may run again after a crash.

        Returns keys to add to the run's manifest, or None.
        """
        raise NotImplementedError

    def abort(self) -> None:
        """Drop everything this run staged; the dataset stays as it was."""
        raise NotImplementedError


class Executor(Plugin):
    """Runs the work units of a job through sources and transforms into the sink."""

    kind: ClassVar[str] = "executor"

    def execute(self, job: Job) -> StreamStats:
        """Run ``job.units``: stream them here, or on workers, handing results to the job.

        Returns the merged :class:`~etl.stream.StreamStats` of every unit; the job keeps the
        written counts and the framework commits afterwards. See :class:`etl.executors.api.Job`.
        A checkpointed run (``[run] checkpoint``) calls it once per checkpoint, with a job of
        that checkpoint's units.
        """
        raise NotImplementedError

    def split_bytes(self) -> int:
        """The size of the parts big inputs are split into, in bytes; 0 never splits.

        The framework splits an input larger than this into parts (when its source
        implements :class:`~etl.plugins.capabilities.SplitsInputs`), so that one big file
        runs on several workers. Default 0: an executor that runs one unit at a time
        gains nothing from parts.
        """
        return 0

    def prepare(self) -> None:  # noqa: B027 - optional lifecycle step
        """Called by a run about to execute, before the units are listed: start what takes
        time and can run beside the listing (another process; never block here). Not
        called by ``etl validate`` or a dry run; ``close`` is called after the run."""

    def close(self) -> None:  # noqa: B027 - optional lifecycle step
        """Called once after the run's last ``execute``, also when the run failed: stop what
        ``execute`` kept for the next call (worker processes, a cluster connection)."""


KINDS: dict[str, type[Plugin]] = {
    "source": Source,
    "transform": Transform,
    "sink": Sink,
    "executor": Executor,
}


@dataclass
class Registered:
    """A plugin class with where it came from."""

    cls: type[Plugin]
    supplier: str
    version: str = ""
    module: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
