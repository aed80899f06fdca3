"""Base classes of the four plugin kinds, and their typed options.

A plugin is a class with a ``name``, a tuple of :class:`Option` declarations and one job:

* a :class:`Source` lists independent work units and yields article batches for one unit;
* a :class:`Transform` maps a batch to a batch;
* a :class:`Sink` writes batches and commits once;
* an :class:`Executor` runs the plan's work units (in process, on processes, on a cluster).

Options are checked when the plugin is built, before anything runs, so a misspelt or
mistyped option is a :class:`~etl.errors.ConfigError` that names the plugin and the section.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar

from etl.errors import ConfigError, PluginError

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.context import Context
    from etl.executors.api import Job
    from etl.stream import StreamStats

_MISSING = object()

# Types an option may declare; "path" and "paths" are strings resolved against the
# pipeline file's folder (URLs are left alone).
_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
    "path": (str,),
    "paths": (list, str),
    "any": (object,),
}


@dataclass(frozen=True)
class Option:
    """One typed option of a plugin.

    Args:
        name: the key in the pipeline file.
        type: one of ``str int float bool list dict path paths any``. ``paths`` accepts one
            string or a list, and resolves relative paths against the pipeline file's folder.
        default: the value when the key is absent; omit it and set ``required=True`` for a
            mandatory option.
        help: one line shown by ``etl plugins``.
        required: the pipeline must set it.
        choices: the allowed values, if only some are.
        min: the smallest value allowed (``int`` and ``float`` options); a value below it is
            a configuration error that names the plugin, its section and the bound.
        max: the largest value allowed.
        min_exclusive: the value must be more than ``min``, not equal to it (``timeout``
            above 0).
        max_exclusive: the value must be less than ``max``.
    """

    name: str
    type: str = "str"
    default: Any = None
    help: str = ""
    required: bool = False
    choices: tuple[Any, ...] | None = None
    min: int | float | None = None
    max: int | float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise PluginError(f"option '{self.name}': unknown type '{self.type}'")
        if self.min is None and self.max is None:
            return
        if self.type not in ("int", "float"):
            raise PluginError(
                f"option '{self.name}': min and max apply to int and float options, not {self.type}"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PluginError(f"option '{self.name}': min {self.min} is more than max {self.max}")
        if self.default is not None and self.out_of_bounds(self.default):
            raise PluginError(
                f"option '{self.name}': the default {self.default!r} breaks its own bound: "
                f"it must be {self.bounds()}"
            )

    def bounds(self) -> str | None:
        """The bounds in words (``at least 1``, ``between 2 and 1024``), or None."""
        low = high = None
        if self.min is not None:
            low = f"{'more than' if self.min_exclusive else 'at least'} {_number(self.min)}"
        if self.max is not None:
            high = f"{'less than' if self.max_exclusive else 'at most'} {_number(self.max)}"
        if low and high:
            if not self.min_exclusive and not self.max_exclusive:
                return f"between {_number(self.min)} and {_number(self.max)}"
            return f"{low} and {high}"
        return low or high

    def out_of_bounds(self, value: Any) -> bool:
        """``value`` (a number) breaks ``min`` or ``max``."""
        if self.min is not None and (
            value < self.min or (self.min_exclusive and value == self.min)
        ):
            return True
        return self.max is not None and (
            value > self.max or (self.max_exclusive and value == self.max)
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "required": self.required,
            "choices": list(self.choices) if self.choices else None,
            "min": self.min,
            "max": self.max,
            "bounds": self.bounds(),
            "help": self.help,
        }


def _number(value: int | float) -> str:
    """``1`` for 1 and 1.0, ``0.5`` for 0.5: bounds read as people write them."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def resolve_path(value: str, base_dir: Path) -> str:
    """Resolve a relative local path against ``base_dir``; URLs and absolute paths stay."""
    if "://" in value:
        return value
    expanded = os.path.expanduser(value)
    if os.path.isabs(expanded):
        return os.path.normpath(expanded)
    return os.path.normpath(base_dir / expanded)


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

    def error(self, message: str, hint: str | None = None) -> ConfigError:
        """A configuration error that names this plugin and its section."""
        return ConfigError(f"plugin '{self.name}' ({self.section}): {message}", hint=hint)

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r} {self.section}>"


def check_option_declarations(cls: type[Plugin]) -> None:
    """Refuse a class that declares one option twice (it would silently shadow)."""
    seen: set[str] = set()
    for opt in cls.options:
        if opt.name in seen:
            raise PluginError(
                f"plugin '{cls.name}' ({cls.__module__}.{cls.__qualname__}) declares option "
                f"'{opt.name}' twice",
                hint="give each Option in `options` a distinct name",
            )
        seen.add(opt.name)


def validate_options(
    cls: type[Plugin], config: Mapping[str, Any], section: str, base_dir: Path
) -> dict[str, Any]:
    """Check ``config`` against ``cls.options``; return every option's value."""
    where = f"plugin '{cls.name}' ({section})"
    declared = {opt.name: opt for opt in cls.options}
    unknown = [key for key in config if key not in declared]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, declared, n=1)
        valid = ", ".join(declared) or "none"
        hint = f"did you mean '{close[0]}'?" if close else None
        raise ConfigError(f"{where}: unknown option '{key}'; valid: {valid}", hint=hint)
    values: dict[str, Any] = {}
    for opt in cls.options:
        if opt.name not in config:
            if opt.required:
                raise ConfigError(
                    f"{where}: missing required option '{opt.name}'",
                    hint=f"add `{opt.name} = ...` ({opt.help})" if opt.help else None,
                )
            values[opt.name] = opt.default
            continue
        value = config[opt.name]
        allowed = _TYPES[opt.type]
        if isinstance(value, bool) and bool not in allowed and opt.type != "any":
            allowed = ()
        if not isinstance(value, allowed):
            raise ConfigError(
                f"{where}: option '{opt.name}' must be {opt.type}, got "
                f"{type(value).__name__} {value!r}"
            )
        if opt.choices is not None and value not in opt.choices:
            choices = ", ".join(repr(c) for c in opt.choices)
            raise ConfigError(f"{where}: option '{opt.name}' is {value!r}; choose one of {choices}")
        if (opt.min is not None or opt.max is not None) and opt.out_of_bounds(value):
            raise ConfigError(
                f"{where}: option '{opt.name}' must be {opt.bounds()}, got {value!r}",
                hint=f"leave it out for the default, {opt.default!r}"
                if opt.default is not None and not opt.required
                else None,
            )
        if opt.type == "float":
            value = float(value)
        elif opt.type == "path":
            value = resolve_path(value, base_dir)
        elif opt.type == "paths":
            items = [value] if isinstance(value, str) else value
            if not all(isinstance(v, str) for v in items):
                raise ConfigError(f"{where}: option '{opt.name}' must be a list of strings")
            value = [resolve_path(v, base_dir) for v in items]
        values[opt.name] = value
    return values


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
    """

    key: str
    size: int | None = None
    mtime: float | None = None
    fingerprint: str | None = None


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
    """

    input: InputRef
    data: Any = None
    source_index: int = 0

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


class ReadsMany:
    """Capability of a source: read several small units in one call.

    Declare it by subclassing (``class MySource(Source, ReadsMany)``). The streamer then
    hands the source up to a batch of consecutive units at once, so per-batch work (compute
    kernels, hashing) runs once per batch and not once per small file. If the call raises,
    the units are read again one by one with ``read``, so an error rejects its own unit only.
    """

    def read_many(
        self, units: Sequence[WorkUnit], ctx: Context
    ) -> tuple[pa.RecordBatch, Sequence[int]]:
        """The articles of ``units`` and, for each row, the position in ``units`` it came
        from. Rejects name their unit (``ctx.reject(..., input=unit.key)``)."""
        raise NotImplementedError


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
    workers' batches.
    """

    kind: ClassVar[str] = "sink"

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
        (replace the dataset at commit) or ``error`` (refuse an existing dataset).

        Default: the sink's ``mode`` option when it declares one, else ``append``.
        """
        mode = vars(self.opts).get("mode")
        return mode if mode in ("append", "overwrite", "error") else "append"

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


@dataclass
class StagedFile:
    """A file a worker wrote for the driver's sink to adopt (plain data, picklable).

    Args:
        path: where it is, in the sink's terms (e.g. relative to the dataset folder).
        rows: rows it holds.
        ids: the article id of each row, in order (the framework decides duplicates).
        input_values, input_lengths: the unit index of each row, run-length encoded.
        extra: anything else the sink needs to adopt it (a partition folder...).
    """

    path: str
    rows: int
    ids: list[str]
    input_values: list[int]
    input_lengths: list[int]
    extra: dict[str, Any] = field(default_factory=dict)


class WorkerWriter:
    """Writes one worker task's articles into files for the driver's sink to adopt."""

    def write(self, batch: pa.RecordBatch, units: Any) -> None:
        """Write a batch of new articles; ``units`` is each row's unit index (numpy int32)."""
        raise NotImplementedError

    def close(self) -> list[StagedFile]:
        """Finish every file; return them in the order written."""
        raise NotImplementedError

    def abort(self) -> None:
        """Delete this task's files."""
        raise NotImplementedError


class WorkerFiles:
    """Capability of a sink: take files written by worker processes or Dask workers.

    Declare it by subclassing (``class MySink(Sink, WorkerFiles)``); ``etl validate`` shows
    it, and the ``processes`` and ``dask`` executors then let workers write files instead
    of shipping batches to the driver.
    """

    def worker_writer(self, run: Any, schema: pa.Schema, worker: str) -> WorkerWriter:
        """A writer for one worker task, on a sink built from the same options, never opened.

        ``worker`` is a name unique to the task (use it in file names).
        """
        raise NotImplementedError

    def adopt(self, files: list[StagedFile], keep: list[Any]) -> None:
        """Take workers' files into this run's commit, in unit order (on the opened sink).

        ``keep[i]`` is None to take file ``i`` whole, or a numpy bool mask of the rows to
        keep (the framework found the others to be duplicates); a file whose mask keeps no
        row is dropped.
        """
        raise NotImplementedError


def capabilities(plugin: Plugin) -> list[str]:
    """The declared capabilities of a plugin, by name (``etl validate`` shows them)."""
    return ["worker-files"] if isinstance(plugin, WorkerFiles) else []


class Executor(Plugin):
    """Runs the work units of a job through sources and transforms into the sink."""

    kind: ClassVar[str] = "executor"

    def execute(self, job: Job) -> StreamStats:
        """Run ``job.units``: stream them here, or on workers, handing results to the job.

        Returns the merged :class:`~etl.stream.StreamStats` of every unit; the job keeps the
        written counts and the framework commits afterwards. See :class:`etl.executors.api.Job`.
        """
        raise NotImplementedError


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
