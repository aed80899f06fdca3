"""What an executor may know of a run: the :class:`Job` it is given, and chunk plumbing.

Executors import this module and nothing of the runner. A job runs in one of two ways:

* here: :meth:`Job.stream_here` reads, transforms and writes every unit in this process;
* on workers: the executor ships :meth:`Job.worker_spec` (bytes) to each worker, which calls
  :func:`open_worker` once and :meth:`WorkerSession.run_chunk` per chunk of units; each
  :class:`ChunkResult` goes back to :meth:`Job.take` on the driver (in any order: the job
  puts them in unit order). A worker that wants the driver to decide which of its ids are
  new first (so it writes no duplicate) sends :class:`ChunkIds` to :meth:`Job.ask`.

A transform that decides on the driver (:class:`~etl.plugin.DecidesOnDriver`) only takes
notes on the workers: they travel in :attr:`ChunkResult.noted` (and :attr:`ChunkIds.noted`),
plain data the executor passes on as it is.
"""

from __future__ import annotations

import math
import pickle
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from etl.errors import ConfigError, EtlError, PluginError, RunError

if TYPE_CHECKING:
    from etl.accounting import Totals
    from etl.context import RunInfo
    from etl.plugin import StagedFile, WorkUnit
    from etl.progress import Progress
    from etl.stream import StreamStats

#: automatic chunks: at most this many work units, and beyond ``BASE_AUTO_CHUNK`` units only
#: while the chunk's listed input stays within ``AUTO_CHUNK_BYTES`` (an input of unknown
#: size counts as ``AUTO_CHUNK_BYTES / BASE_AUTO_CHUNK``). Small files make long chunks:
#: each chunk costs a worker and the driver messages, a question, a staged file and its
#: adoption (100k news files: dask 17.9 -> 16.9 s, processes 15.4 -> 14.9 s, in chunks of
#: up to 4,000 rather than 1,000; docs/performance.md); big inputs keep chunks of 1,000
MAX_AUTO_CHUNK = 4000
BASE_AUTO_CHUNK = 1000
AUTO_CHUNK_BYTES = 16 * 1024 * 1024
#: small chunks at the head of the run, for the driver to run while its workers start
LANE_CHUNKS = 16

#: (chunk, keep): the driver's answer to a ChunkIds; keep is None when every id is new
Answer = tuple[int, "list[bool] | None"]


@dataclass
class ChunkResult:
    """What a worker returns for one chunk of work units (plain data).

    Args:
        chunk: the chunk's number (chunks are numbered in unit order).
        worker: the worker's name.
        stats: what sources and transforms did.
        totals: rows written per unit (worker-written files only).
        files: files the worker wrote for the sink to adopt (:class:`~etl.plugin.WorkerFiles`).
        batches: the chunk's articles as an Arrow IPC stream, for a sink without that
            capability (the driver writes them).
        error: (error class name, message, hint, traceback text) when the chunk failed.
        decided: the driver said which ids were new before the files were written.
        noted: the notes of a transform that decides on the driver (``etl.decisions``).
    """

    chunk: int
    worker: str = ""
    stats: StreamStats | None = None
    totals: Totals | None = None
    files: list[StagedFile] = field(default_factory=list)
    batches: bytes | None = None
    error: tuple[str, str, str | None, str] | None = None
    decided: bool = False
    noted: Any = None


@dataclass
class ChunkIds:
    """A worker asks the driver which of its chunk's article ids are new (plain data);
    ``noted``: the notes for a transform that decides on the driver, if any (pass them to
    :meth:`Job.ask`)."""

    chunk: int
    worker: str
    ids: list[str]
    noted: Any = None


class WorkerSession:
    """The plugins of a job, rebuilt on a worker; runs chunks there."""

    #: goes into the names of the files it writes; an executor that runs each chunk as an
    #: attempt of its own (Dask) sets it before each chunk
    name: str = ""
    #: the session would like to ask the driver which ids are new before writing
    can_ask: bool = False
    #: its question carries a deciding transform's notes (``ask(ids, noted)``), which the
    #: driver then keeps: only an executor whose driver answers in unit order may ask then
    asks_with_notes: bool = False

    def start_chunk(
        self,
        chunk: int,
        units: bytes,
        ask: Callable[..., Any] | None = None,
        hold_bytes: int = 0,
        hint: bool = False,
    ) -> Callable[[], ChunkResult]:
        """Read one chunk of units (:func:`pack_units` bytes) through sources and
        transforms; returns the function that finishes it (into files or batches for the
        driver) and gives its result. ``ask(ids, noted)`` sends a :class:`ChunkIds` and
        returns the driver's answer, or a function that waits for it: the finishing
        function waits then, so a worker may read its next chunk meanwhile. ``hint``: the
        answer is a hint (:meth:`Job.known_ids`), so the result says ``decided = False``
        and the driver checks the files when it takes them."""
        raise NotImplementedError

    def run_chunk(
        self,
        chunk: int,
        units: bytes,
        ask: Callable[..., Any] | None = None,
        hold_bytes: int = 0,
        hint: bool = False,
    ) -> ChunkResult:
        """:meth:`start_chunk` and its finishing, in one go."""
        return self.start_chunk(chunk, units, ask, hold_bytes, hint)()

    def close(self) -> None:
        """After the last chunk (transforms' ``close``)."""


class Job(ABC):
    """A run's work as an executor sees it.

    Attributes:
        run: the run's facts.
        units: the work units, in order; a unit's index is its position here.
        target: what the run writes to, for messages ("the dataset out/news").
    """

    run: RunInfo
    units: Sequence[WorkUnit]
    target: str

    @abstractmethod
    def stream_here(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Read, transform and write every unit in this process.

        ``progress(units done, articles written)`` is called as work finishes: units done
        are those whose articles were all written or dropped.
        """

    @abstractmethod
    def worker_spec(self) -> bytes:
        """What a worker rebuilds the job's plugins from (pass to :func:`open_worker`)."""

    @abstractmethod
    def take(self, result: ChunkResult) -> list[Answer]:
        """A worker's result, in any order; returns answers to questions it unblocked.

        Raises the worker's error if it reported one.
        """

    @abstractmethod
    def ask(self, chunk: int, ids: list[str], noted: Any = None) -> list[Answer]:
        """A worker's question (:class:`ChunkIds`: its ids and notes); returns the answers
        that can be given now.

        A chunk that asks again before its result was taken (its worker died and another
        runs it) gets the answer it was given, if it read the same ids.
        """

    def known_ids(self, ids: list[str]) -> list[bool] | None:
        """Which ids are new as far as the driver knows now (the dataset's, and those of the
        chunks taken so far), without claiming them: a hint for a worker that cannot wait
        for its chunk's turn to :meth:`ask` (Dask). True for the first occurrence of an id
        not known; None when all are new. The chunk's files are still checked when taken
        (its result says ``decided = False``)."""
        return None

    @abstractmethod
    def stats(self) -> StreamStats:
        """Everything sources and transforms did, merged."""

    @abstractmethod
    def written(self) -> int:
        """Articles written so far (for progress)."""

    def probe_unit(self) -> bytes | None:
        """The first unit this process can open, packed (:func:`pack_units`), for workers to
        check that they can open it too; None when there is none to check."""
        return None

    def rejected(self) -> int:
        """Rejects so far (for progress)."""
        return len(self.stats().rejects)

    def progress(self) -> Progress:
        """The run's progress display over :attr:`units`, for the executor to report to
        (``finished_prefix`` or ``finished_range``, then ``close``)."""
        from etl.progress import Progress

        return Progress(self.units, rejected=self.rejected)

    def summary_counter(self, key: str, n: int) -> None:  # noqa: B027 - optional
        """Add an executor's counter to the run summary (shown with -v)."""


def open_worker(spec: bytes, where: str, name: str) -> WorkerSession:
    """On a worker: rebuild the job's plugins from :meth:`Job.worker_spec`'s bytes.

    ``where`` names the worker in errors ("worker process 2 (pid 123)"); ``name`` is short
    and goes into the names of files it writes.
    """
    return pickle.loads(spec).open(where, name)


class DriverLane:
    """Chunks run in the driver's own process while an executor's workers start.

    A cluster takes a while to be ready (a local Dask cluster: 1 to 3 s on two cores); the
    driver's core would idle meanwhile, and in a run of a few thousand articles that
    start-up is a good part of the run. The lane runs whole chunks here as a worker would
    (staged files, or batches for a sink without that capability) and hands each result to
    :meth:`Job.take`.

    It must run the job's first chunks, in unit order, before any chunk goes to a worker:
    then each of its questions (:meth:`Job.ask`) is answered at once, and its files hold
    no duplicate the driver would have to rewrite.

    Args:
        job: the job whose chunks it runs.
        hold_bytes: articles held while the driver says which ids are new (as a worker's
            ``hold_bytes``).
    """

    name = "driver"

    def __init__(self, job: Job, hold_bytes: int) -> None:
        self._job = job
        self._hold_bytes = hold_bytes
        self._session: WorkerSession | None = None
        #: chunks run here
        self.ran = 0

    def run(self, number: int, units: bytes) -> None:
        """Run chunk ``number`` (:func:`pack_units` bytes) here and give the job its result."""
        if self._session is None:
            self._session = open_worker(self._job.worker_spec(), "the driver", self.name)
        session = self._session

        def ask(ids: list[str], noted: Any = None) -> list[bool] | None:
            for chunk, keep in self._job.ask(number, ids, noted):
                if chunk == number:
                    return keep
            raise RunError(f"the driver's chunk {number} was not answered at once (a bug)")

        result = session.run_chunk(
            number, units, ask if session.can_ask else None, self._hold_bytes
        )
        result.worker = self.name
        self.ran += 1
        self._job.take(result)

    def close(self) -> None:
        """After the lane's last chunk (the transforms' ``close`` of the driver's copy)."""
        if self._session is not None:
            self._session.close()
            self._session = None


def check_worker(spec: bytes, where: str, probe: bytes | None = None) -> None:
    """On a worker, before any chunk: raise if it cannot build the job's plugins, open the
    unit in ``probe`` (:meth:`Job.probe_unit`) or write the sink's staged files."""
    pickle.loads(spec).check(where, probe)


def failed(chunk: int, worker: str, exc: BaseException, where: str) -> ChunkResult:
    """A ChunkResult that carries an error back to the driver (exceptions may not pickle)."""
    from etl.stream import error_line

    if isinstance(exc, EtlError):
        info = (type(exc).__name__, exc.message, exc.hint, "")
    else:
        info = (
            "RunError",
            f"{where} failed: {error_line(exc)}",
            "run again with -v to see the worker's traceback",
            "".join(traceback.format_exception(exc)),
        )
    return ChunkResult(chunk, worker, error=info)


def raise_error(info: tuple[str, str, str | None, str]) -> None:
    """Raise on the driver the error a worker reported."""
    kind, message, hint, trace = info
    if trace:
        from etl import log

        log.get_logger(stage="stream").debug("worker traceback", traceback=trace)
    cls = {"ConfigError": ConfigError, "PluginError": PluginError}.get(kind, RunError)
    raise cls(message, hint=hint)


def chunk_bounds(
    units: int,
    workers: int,
    configured: int = 0,
    lead: int = 0,
    sizes: Sequence[int | None] | None = None,
) -> list[tuple[int, int]]:
    """(start, stop) of each chunk of work units, in unit order.

    A configured size gives equal chunks. Automatic chunks shrink as the work runs out
    (guided scheduling): each takes 1/(2 x workers) of what is left, at most
    ``BASE_AUTO_CHUNK`` units (up to ``MAX_AUTO_CHUNK`` of small inputs: ``sizes``, each
    unit's listed bytes) and at least 1/64 of a worker's share, so workers start on big
    chunks (few files, little overhead) and finish together on small ones. ``lead``: that
    many of the smallest chunks first (for a :class:`DriverLane`, which checks between
    chunks whether the workers are ready: a big chunk would keep them waiting).
    """
    if units <= 0:
        return []
    if configured > 0:
        return [(i, min(i + configured, units)) for i in range(0, units, configured)]
    reach = _small_input_reach(sizes, units)
    smallest = max(1, math.ceil(units / (workers * 64)))
    bounds = []
    start = 0
    while start < units:
        left = units - start
        cap = BASE_AUTO_CHUNK if reach is None else max(BASE_AUTO_CHUNK, reach[start] - start)
        guided = min(cap, max(smallest, math.ceil(left / (workers * 2))))
        size = smallest if len(bounds) < lead else guided
        bounds.append((start, min(start + size, units)))
        start += size
    return bounds


def _small_input_reach(sizes: Sequence[int | None] | None, units: int) -> Any:
    """For each unit index, where a chunk starting there must end to hold at most
    ``AUTO_CHUNK_BYTES`` of input and ``MAX_AUTO_CHUNK`` units (None without sizes)."""
    if sizes is None:
        return None
    import numpy as np

    unknown = AUTO_CHUNK_BYTES // BASE_AUTO_CHUNK
    listed = np.fromiter(
        (unknown if size is None or size < 0 else size for size in sizes), np.int64, units
    )
    ends = np.concatenate([[0], np.cumsum(listed)])
    reach = np.searchsorted(ends, ends[:-1] + AUTO_CHUNK_BYTES, side="right") - 1
    return np.minimum(reach, np.arange(units) + MAX_AUTO_CHUNK).tolist()


def unit_sizes(units: Sequence[WorkUnit]) -> list[int | None]:
    """Each unit's listed input size (None when unknown), for :func:`chunk_bounds`."""
    return [unit.input.size for unit in units]


def parts_alone(bounds: list[tuple[int, int]], units: Sequence[WorkUnit]) -> list[tuple[int, int]]:
    """``bounds`` with every part of a split input (``unit.part`` set) in a chunk of its own.

    A part is already a big piece of work (``split_bytes`` of input): two in one chunk would
    run one after the other on one worker, and the chunk's articles would outgrow what a
    worker holds while the driver says which ids are new (``hold_bytes``), so the driver
    would rewrite its files to drop duplicates found in other parts.
    """
    alone = {i for i, unit in enumerate(units) if unit.part is not None}
    if not alone:
        return bounds
    out = []
    for start, stop in bounds:
        run = start
        for i in range(start, stop):
            if i in alone:
                if run < i:
                    out.append((run, i))
                out.append((i, i + 1))
                run = i + 1
        if run < stop:
            out.append((run, stop))
    return out


def chunks(units: Sequence[WorkUnit], bounds: list[tuple[int, int]]) -> Iterator[tuple[int, bytes]]:
    """(chunk number, :func:`pack_units` of the chunk) in unit order, made as needed."""
    for number, (start, stop) in enumerate(bounds):
        yield number, pack_units(units, start, stop)


def pack_units(units: Sequence[WorkUnit], start: int, stop: int) -> bytes:
    """``units[start:stop]`` as bytes for a worker (:func:`unpack_units` reads them).

    Plain units (the classes themselves, not subclasses) travel as one tuple of columns
    (keys, sizes, mtimes...) instead of pickled dataclass objects: pickle handles a slotted
    dataclass through ``__getstate__``/``__setstate__`` in Python, which cost the driver
    about 0.5 s per 100k units and each worker as much again, more than the listing.
    """
    from etl.plugin import InputRef, WorkUnit

    part = units[start:stop]
    # parts of a split input (``part`` set) are few: they travel as objects
    if all(type(u) is WorkUnit and type(u.input) is InputRef and u.part is None for u in part):
        refs = [u.input for u in part]
        columns = (
            [r.key for r in refs],
            [r.size for r in refs],
            [r.mtime for r in refs],
            [r.fingerprint for r in refs],
            [r.problem for r in refs],
            [u.data for u in part],
            [u.source_index for u in part],
        )
        payload: tuple[Any, ...] = ("columns", start, columns)
    else:
        payload = ("objects", start, list(part))
    return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)


def unpack_units(data: bytes) -> list[tuple[int, WorkUnit]]:
    """[(unit index, unit), ...] from :func:`pack_units`' bytes (on a worker, after the
    plugins are loaded, so that units whose data refer to a plugin's classes load)."""
    from etl.plugin import InputRef, WorkUnit

    kind, start, body = pickle.loads(data)
    if kind == "objects":
        return list(enumerate(body, start))
    keys, sizes, mtimes, fingerprints, problems, datas, sources = body
    return list(
        enumerate(
            map(
                WorkUnit,
                map(InputRef, keys, sizes, mtimes, fingerprints, problems),
                datas,
                sources,
            ),
            start,
        )
    )
