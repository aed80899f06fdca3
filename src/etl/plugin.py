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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar

from etl.errors import ConfigError, PluginError

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.context import Context

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
    """One input that a work unit reads: a file or a URL.

    Args:
        key: the path or URL; rejects name it as their ``input``.
        size: bytes, when known without reading.
        mtime: modification time (seconds since the epoch), when known.
    """

    key: str
    size: int | None = None
    mtime: float | None = None


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
    """What a sink did with one batch.

    Args:
        written: rows it will commit.
        duplicates: rows it skipped because their id was already present.
        kept: a boolean mask over the batch's rows, True for the rows written (None: all
            rows were written); the runner uses it to account for every input.
    """

    written: int = 0
    duplicates: int = 0
    kept: Any = None


class Sink(Plugin):
    """Writes batches and commits them once, atomically, at the end of the run."""

    kind: ClassVar[str] = "sink"

    def open(self, run: Any, schema: pa.Schema) -> None:
        """Prepare to receive batches of ``schema`` for the run ``run`` (a RunInfo)."""
        raise NotImplementedError

    def write(self, batch: pa.RecordBatch) -> WriteResult:
        raise NotImplementedError

    def commit(self, rejects: pa.Table, manifest: dict[str, Any]) -> None:
        """Make everything written visible at once, with the run's rejects and manifest."""
        raise NotImplementedError

    def abort(self) -> None:
        """Drop everything written by this run; the dataset stays as it was."""
        raise NotImplementedError


class Executor(Plugin):
    """Runs the work units of a plan through sources and transforms into the sink."""

    kind: ClassVar[str] = "executor"

    def execute(self, plan: Any) -> tuple[Any, Any]:
        """Run ``plan.units`` through sources and transforms into ``plan.sink``.

        Returns the merged :class:`~etl.stream.StreamStats` and the driver's
        :class:`~etl.runner.Totals`; the runner commits afterwards.
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
