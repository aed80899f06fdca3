"""Can a worker reach what the run reads and writes? Checked before any task (a preflight).

A worker that cannot see the inputs (a folder only the driver has, a mount missing on one
machine, no credentials) rejected every input it was given as ``unreadable``, and one that
cannot write the dataset's staging folder failed each task in turn: minutes of work and
retries before the run failed, with a message about an input or a task and not about the
worker. Now the driver picks the first input it can open itself (:func:`first_unit`), and
every worker opens that input and writes a probe file in the run's staging folder before
any task is sent (:func:`check_reach`); a worker that cannot is named in one error, exit 2.

An input the driver cannot open either is no worker's fault: it is not checked, and the
run rejects it as a local run would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl.accounting import printable
from etl.errors import ConfigError, EtlError, InputError
from etl.plugin import WorkerFiles

if TYPE_CHECKING:
    from etl.plugin import WorkUnit
    from etl.run.plan import Plan

_INPUT_HINT = (
    "every worker must reach the inputs at the paths the driver lists them: a filesystem "
    "mounted at the same path on every machine, or an object store (docs/scaling.md)"
)


def first_unit(plan: Plan) -> int | None:
    """The index of the first unit this process can open; None if it cannot open the first
    one the listing found readable (or there is none)."""
    for index, unit in enumerate(plan.units):
        if unit.input.problem is not None:  # a reject already, wherever it is read
            continue
        try:
            plan.sources[unit.source_index].probe(unit)
        except (InputError, OSError):
            return None
        return index
    return None


def check_reach(plan: Plan, where: str, unit: WorkUnit | None) -> None:
    """On a worker: open ``unit`` (one the driver opened) and check that the sink's staged
    files can be written here.

    Raises:
        ConfigError: naming the worker (``where``) and what it cannot reach.
    """
    if unit is not None:
        try:
            plan.sources[unit.source_index].probe(unit)
        except InputError as exc:
            _cannot_open(where, unit, exc.reason + (f": {exc.detail}" if exc.detail else ""))
        except OSError as exc:
            _cannot_open(where, unit, f"{type(exc).__name__}: {exc.strerror or exc}")
    sink = plan.sink
    if isinstance(sink, WorkerFiles) and plan.workers_write_files():
        try:
            sink.check_worker(plan.run)
        except EtlError as exc:
            raise ConfigError(f"{where} {exc.message}", hint=exc.hint) from exc
        except OSError as exc:
            raise ConfigError(
                f"{where} cannot write the dataset {sink.location()}: "
                f"{type(exc).__name__}: {exc.strerror or exc}",
                hint="the dataset must be on a filesystem that the driver and every worker "
                "mount at the same path, writable by the workers",
            ) from exc


def _cannot_open(where: str, unit: WorkUnit, why: str) -> None:
    raise ConfigError(
        printable(f"{where} cannot open the input {unit.key}, which the driver can: {why}"),
        hint=_INPUT_HINT,
    )
