"""Decisions taken on the driver (:class:`~etl.plugin.DecidesOnDriver`): what a worker
ships for them.

On a worker the streamer calls the transform's ``notes`` where ``process`` would run,
numbers the rows that entered it (the hidden column :data:`ROW_COLUMN`, which rides along
to the end of the chain as ``__etl_input`` does) and keeps the notes in a :class:`Noted`.
The chunk's result carries it to the driver, which calls ``decide`` on the notes in unit
order (``etl.run.decide``) and drops the rows it names by their numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: the number of a row among the rows that entered the deciding transform in its chunk
ROW_COLUMN = "__etl_row"


@dataclass
class Noted:
    """A chunk's notes for the transform that decides on the driver (plain data).

    Args:
        section: the transform's section label.
        notes: its notes, one entry per batch it saw, in order.
        sizes: the rows of each of those batches (their rows are numbered in order).
        units: the unit index of each numbered row.
        ends: the numbers of the rows that reached the end of the chain, in stream order.
        written: for each of ``ends``, whether the worker wrote it to a staged file (rows
            with an id repeated in the chunk are not); empty when the rows were shipped.
        ids: for each written row, its id (ids of written rows are unique in a chunk).
    """

    section: str
    notes: list[Any] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    units: list[np.ndarray] = field(default_factory=list)
    ends: list[np.ndarray] = field(default_factory=list)
    written: list[np.ndarray] = field(default_factory=list)
    ids: list[list[str]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Rows numbered so far."""
        return sum(self.sizes)

    def add(self, notes: Any, units: np.ndarray) -> np.ndarray:
        """The notes of one batch (its rows' units); the numbers given to its rows."""
        start = self.rows
        self.notes.append(notes)
        self.sizes.append(len(units))
        self.units.append(np.asarray(units, np.int32))
        return np.arange(start, start + len(units), dtype=np.int64)

    def ended(self, rows: np.ndarray, written: np.ndarray | None, ids: list[str]) -> None:
        """Rows that reached the end of the chain: ``written`` says which went into a file
        (None: all of them, or shipped), ``ids`` are the ids of those."""
        self.ends.append(np.asarray(rows, np.int64))
        if written is not None:
            self.written.append(np.asarray(written, bool))
        else:
            self.written.append(np.ones(len(rows), bool))
        self.ids.append(ids)

    def all_units(self) -> np.ndarray:
        return np.concatenate(self.units) if self.units else np.zeros(0, np.int32)

    def all_ends(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(row numbers, written or not, ids of the written ones) of every row that ended."""
        if not self.ends:
            return np.zeros(0, np.int64), np.zeros(0, bool), []
        ids = [i for part in self.ids for i in part]
        return np.concatenate(self.ends), np.concatenate(self.written), ids
