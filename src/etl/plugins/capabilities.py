"""Capabilities: what a plugin can do beyond its kind, declared by subclassing.

``class MySink(Sink, WorkerFiles)`` says the sink adopts files written by workers;
``class MySource(Source, ReadsMany)`` says the source reads many units in one call;
``class MySource(Source, SplitsInputs)`` that it can split one big input into parts;
``class MyTransform(Transform, DecidesOnDriver)`` that its decisions need the whole run (near
duplicates). The framework checks them with ``isinstance`` and ``etl validate`` shows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.context import Context
    from etl.plugins.base import Plugin, WorkUnit


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


class SplitsInputs:
    """Capability of a source: split one big input into parts that read on their own.

    Declare it by subclassing (``class MySource(Source, SplitsInputs)``). When the executor
    runs units in parallel (:meth:`~etl.plugin.Executor.split_bytes` is not 0) and an
    input is larger than that, the framework calls :meth:`split` and runs the parts on
    different workers. It keeps everything per input: the parts' rows, duplicates and
    rejects are counted against the input, the input is remembered only when every part
    committed (they commit together), and a duplicate found in two parts keeps the row of
    the first part (input order), as a whole read would.

    ``read`` then gets units whose ``part`` is set (:class:`~etl.plugin.Part`); it reads
    the records that start in ``[part.start, part.end)``, numbers lines from
    ``part.first_line``, and reports no "empty" reject of its own for a part that holds no
    record (the framework rejects an input whose parts all gave nothing).
    """

    def split(self, unit: WorkUnit, parts_hint: int) -> list[WorkUnit]:
        """The parts of ``unit`` (about ``parts_hint`` of them), in input order, or
        ``[unit]`` to keep it whole (compressed, remote, not splittable at all).

        Parts must cover the input without gap or overlap, each starting at a record
        boundary, and carry ``part`` (:class:`~etl.plugin.Part`) and the unit's ``input``
        unchanged (the framework remembers the input by it). Called on the driver, before
        the run; it may read the input (to find boundaries), but should be quick.
        """
        raise NotImplementedError


class DecidesOnDriver:
    """Capability of a transform: which rows it drops depends on every row before them in
    the run (near duplicates), so under workers the decision is taken on the driver.

    Declare it by subclassing (``class MyTransform(Transform, DecidesOnDriver)``). Under
    ``local`` the framework calls ``process`` as for any transform. Under ``processes``
    and ``dask`` each worker calls :meth:`notes` where ``process`` would run (the costly
    part: signatures, where the text is) and passes the batch on unchanged; the driver
    calls :meth:`decide` on the notes of every batch of the run, in unit order, on the
    transform it opened itself (one index for the whole run), and drops the rows it names
    before the sink takes them. So every executor keeps the rows ``local`` keeps, provided
    ``process(batch)`` drops exactly the rows ``decide(notes(batch))`` names (the helper
    :meth:`decide_here` does that) and the answers do not depend on how the rows were cut
    into batches. The rows it drops are counted as dropped by this transform, and its
    ``ctx.count`` counters in ``decide`` go into the run summary.

    Under workers the transforms after it see the rows it will drop (their own counters
    count them), and it can only drop rows, not change them: :meth:`driver_problem` says
    why an instance cannot run that way, and the run is refused before it starts. At most
    one transform of a pipeline may decide on the driver.
    """

    def decides_on_driver(self) -> bool:
        """Whether this instance (with its options) decides on the driver; default True."""
        return True

    def driver_problem(self) -> str | None:
        """Why this instance cannot decide on the driver under workers (an option that
        changes rows rather than dropping them...), or None; a non-None answer stops a run
        on workers before it starts, with this message."""
        return None

    def notes(self, batch: pa.RecordBatch, ctx: Context) -> Any:
        """On a worker: what :meth:`decide` needs of the batch's rows, as plain data
        (picklable: numpy arrays, lists), for every row of ``batch`` in order."""
        raise NotImplementedError

    def decide(self, notes: Any, ctx: Context) -> Sequence[str | None]:
        """On the driver, in unit order: for each row of the batch ``notes`` came from,
        None to keep it, or the id of the earlier row it duplicates to drop it. Keep the
        run's state (an index) on ``self``, reset in ``open``."""
        raise NotImplementedError

    def decide_here(self, batch: pa.RecordBatch, ctx: Context) -> pa.RecordBatch:
        """``batch`` without the rows ``decide(notes(batch))`` names: a ``process`` that
        gives the same rows as the driver's decision."""
        import pyarrow as pa

        verdict = self.decide(self.notes(batch, ctx), ctx)
        if all(v is None for v in verdict):
            return batch
        return batch.filter(pa.array([v is None for v in verdict], pa.bool_()))


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

    def check_worker(self, run: Any) -> None:
        """On a worker, before any task (on a sink built as for :meth:`worker_writer`):
        raise if the worker cannot write this run's files (an ``EtlError`` whose message
        follows the worker's name, or an ``OSError``). The default checks nothing."""

    def adopt(self, files: list[StagedFile], keep: list[Any]) -> None:
        """Take workers' files into this run's commit, in unit order (on the opened sink).

        ``keep[i]`` is None to take file ``i`` whole, or a numpy bool mask of the rows to
        keep (the framework found the others to be duplicates); a file whose mask keeps no
        row is dropped.
        """
        raise NotImplementedError


class ReplacesRows:
    """Capability of a sink: replace committed rows, in the same commit as the new ones.

    Declare it by subclassing (``class MySink(Sink, ReplacesRows)``). It is what
    ``mode = "merge"`` (a new version of an article replaces the row with the same key) and
    ``etl run --reprocess`` (the rows of the inputs read again are replaced) need; a sink
    without it refuses both with a message naming it.
    """

    def stage_replace(self, column: str, values: pa.Array) -> pa.Array:
        """Stage the removal of every committed row whose ``column`` holds one of ``values``.

        Called once per commit on the opened sink, after the last write and before
        :meth:`~etl.Sink.prepare`, whose payload must carry the removal: ``commit(payload)``
        applies it with the new rows (idempotently, as a crash may replay it) and ``abort``
        drops it. Rows this run wrote are not committed yet and must be left alone.

        Returns:
            The ``id`` of every row that will be removed (the framework's id index forgets
            them, so their text may come back later as a new row).
        """
        raise NotImplementedError


def capabilities(plugin: Plugin) -> list[str]:
    """The declared capabilities of a plugin, by name (``etl validate`` shows them)."""
    names = []
    if isinstance(plugin, WorkerFiles):
        names.append("worker-files")
    if isinstance(plugin, ReplacesRows):
        names.append("replaces-rows")
    if isinstance(plugin, SplitsInputs):
        names.append("splits-inputs")
    if isinstance(plugin, DecidesOnDriver) and plugin.decides_on_driver():
        names.append("decides-on-driver")
    return names
