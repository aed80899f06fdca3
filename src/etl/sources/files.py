"""The base class of file sources: what every source that reads files or URLs shares.

A :class:`FileSource` subclass declares only its own options and ``read``; it gets:

* the options every file source has, with one name, meaning and bound everywhere:
  ``paths`` (files, folders, globs, URLs), ``include`` (name patterns for folders),
  ``max_bytes`` (larger inputs are rejected, not read) and the fetch options ``retries``,
  ``backoff``, ``timeout`` and ``deadline`` (:data:`etl.inputs.REMOTE_OPTIONS`);
* ``units()``: one work unit per input that :func:`etl.inputs.expand_paths` lists (local
  folders walked, globs expanded, URLs and fsspec stores), in a stable order, each once;
* readers that apply those options and turn a failed read into a reject:
  :meth:`FileSource.read_bytes` (the whole input, for one-article-per-file sources) and
  :meth:`FileSource.open_input` (a stream, for line- or record-oriented sources), both with
  compression undone, size and decompression-bomb limits, and remote fetches retried.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from etl.inputs import REMOTE_OPTIONS, InputError, expand_paths, open_input, read_input_bytes
from etl.inputs import remote_kwargs as _remote_kwargs
from etl.plugin import Option, Source, WorkUnit
from etl.remote import STORAGE_OPTION

if TYPE_CHECKING:
    import io

    from etl.context import Context

#: the default of ``max_bytes``: larger inputs are rejected, not read
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

#: options that come before a subclass's own, and after them
_HEAD = ("paths", "include", "allow_outside_links")
_TAIL = ("max_bytes", "retries", "backoff", "timeout", "deadline")
_UNSET: Any = object()


class FileSource(Source):
    """A source that reads files, folders, globs or URLs: one work unit per input.

    Subclasses set ``name``, declare only their own ``options`` and implement ``read``. The
    common options are added around them: ``paths`` and ``include`` first, then the
    subclass's own, then ``max_bytes``, ``retries``, ``backoff``, ``timeout`` and
    ``deadline``. Class attributes adjust the common options:

    - ``default_include``: the default of ``include`` (``["*"]``: every file in a folder);
    - ``default_max_bytes``: the default of ``max_bytes`` (None: no limit);
    - ``max_bytes_option``: False to offer no ``max_bytes`` option (the source limits sizes
      its own way);
    - ``remote_options``: False to offer no ``retries``/``backoff``/``timeout``/``deadline``
      options (remote inputs are then fetched with the defaults).

    An own option with the name of a common one replaces it in place (another help text,
    default or bound).

    Read an input with :meth:`read_bytes` (whole) or :meth:`open_input` (a stream); both
    apply ``max_bytes`` and the fetch options and undo compression.
    """

    default_include: ClassVar[Sequence[str]] = ("*",)
    default_max_bytes: ClassVar[int | None] = DEFAULT_MAX_BYTES
    max_bytes_option: ClassVar[bool] = True
    remote_options: ClassVar[bool] = True
    #: the options the subclass declared itself (``options`` holds them with the common ones)
    own_options: ClassVar[tuple[Option, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("options", cls.own_options)
        cls.own_options = tuple(own)
        cls.options = cls.file_options(cls.own_options)

    @classmethod
    def common_options(cls) -> tuple[Option, ...]:
        """The options every file source has, with this class's defaults."""
        options = [
            Option(
                "paths",
                "paths",
                required=True,
                help="files, directories (recursive), globs or URLs",
                fingerprint=False,
            ),
            Option(
                "include",
                "list",
                list(cls.default_include),
                help="file name patterns to take from directories (compressed ones match too)",
                fingerprint=False,
            ),
            Option(
                "allow_outside_links",
                "bool",
                False,
                help="read files that links in a folder or glob lead to outside it (else such "
                "a link is a reject)",
                fingerprint=False,
            ),
        ]
        if cls.max_bytes_option:
            options.append(
                Option(
                    "max_bytes",
                    "int",
                    cls.default_max_bytes,
                    min=1,
                    help="larger inputs are rejected, not read (decompressed size)",
                )
            )
        if cls.remote_options:
            options.extend(REMOTE_OPTIONS)
        options.append(STORAGE_OPTION)
        return tuple(options)

    @classmethod
    def file_options(cls, own: Iterable[Option] = ()) -> tuple[Option, ...]:
        """The common options around ``own``; an own option named like a common one replaces
        it in place."""
        own = tuple(own)
        named = {opt.name: opt for opt in own}
        common = cls.common_options()
        head = [named.get(o.name, o) for o in common if o.name in _HEAD]
        tail = [named.get(o.name, o) for o in common if o.name not in _HEAD]
        replaced = {o.name for o in common}
        return (*head, *(o for o in own if o.name not in replaced), *tail)

    # listing

    def units(self) -> Iterable[WorkUnit]:
        """One work unit per input that ``paths`` names (folders filtered by ``include``)."""
        for ref in expand_paths(
            self.opts.paths,
            plugin=self.name,
            section=self.section,
            include=self.opts.include,
            outside_links=self.opts.allow_outside_links,
            storage_options=vars(self.opts).get("storage_options"),
        ):
            yield WorkUnit(ref)

    # reading

    @property
    def remote_kwargs(self) -> dict[str, Any]:
        """The fetch settings (``retries``, ``timeout``) for :mod:`etl.inputs`' readers."""
        return _remote_kwargs(self.opts)

    def read_bytes(
        self,
        unit: WorkUnit,
        ctx: Context,
        *,
        max_bytes: int | None = _UNSET,
        input: str | None = None,
    ) -> bytes | None:
        """The whole (decompressed) content of the unit's input; None when it could not be
        read, which is then a reject (reason ``too large``, ``unreadable``, ``HTTP 404``...).

        Args:
            unit: the work unit.
            ctx: the context the reject goes to.
            max_bytes: the limit, if not the ``max_bytes`` option (None: no limit).
            input: the reject's ``input`` (for a source that reads several units at once).
        """
        if max_bytes is _UNSET:
            max_bytes = getattr(self.opts, "max_bytes", None)
        try:
            return read_input_bytes(unit.input, max_bytes=max_bytes, **self.remote_kwargs)
        except InputError as exc:
            ctx.reject(exc.reason, detail=exc.detail, input=input)
            return None

    @contextlib.contextmanager
    def open_input(
        self, unit: WorkUnit, *, max_bytes: int | None = _UNSET
    ) -> Iterator[io.BufferedReader]:
        """A buffered stream of the unit's (decompressed) content, ``max_bytes`` and the fetch
        options applied. Opening and reading may raise :class:`etl.inputs.InputError`; the
        source rejects it where it knows the location (``ctx.reject(exc.reason, location=...,
        detail=exc.detail)``), keeping what it read before."""
        if max_bytes is _UNSET:
            max_bytes = getattr(self.opts, "max_bytes", None)
        with open_input(unit.input, max_bytes=max_bytes, **self.remote_kwargs) as stream:
            yield stream

    def probe(self, unit: WorkUnit) -> None:
        """Open the unit's input and read a byte, once (see :meth:`etl.Source.probe`).

        No retries: the driver opened the input a moment before, so a machine that fails
        to is one that cannot reach it, and it should say so at once rather than after
        minutes of backing off (the source's ``timeout`` still bounds each attempt).
        """
        kwargs = {**self.remote_kwargs, "retries": 0}
        with open_input(unit.input, max_bytes=None, **kwargs) as stream:
            stream.read(1)


FileSource.options = FileSource.file_options()
