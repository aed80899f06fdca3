"""What a stream produced, as plain data: its counts (:class:`StreamStats`) and the reject
reasons that decide whether an input is read again next run."""

from __future__ import annotations

import traceback
from collections import Counter
from dataclasses import dataclass, field

from etl.rejects import Rejects

#: reject reasons that may not recur on a re-read (I/O trouble, a plugin's exception, a
#: fetch that failed, a permission since fixed): their inputs are not remembered as ingested.
#: A source may add its own by starting the reason with "transient" or "HTTP ".
RETRY_REASONS = frozenset(
    {
        "source error",
        "unreadable",
        "read failed",
        "timeout",
        "fetch failed",
        "connection refused",
        "permission denied",
        "not found",
    }
)
#: reject reasons of an input not read past a limit: the inputs memory must not read it
#: whole to hash it either (it remembers it by size and mtime)
LIMIT_REASONS = frozenset({"too large", "decompression bomb"})
#: the reject an input gets that gave neither articles nor a reject of its own
NOTHING_REASON = "no articles"


def is_retry_reason(reason: str) -> bool:
    return reason in RETRY_REASONS or reason.startswith(("transient", "HTTP "))


#: reasons of a transform's rejects that are faults in code, not in the data
CODE_FAULT_PREFIXES = ("transform error", "python function error")


def is_code_fault(reason: str) -> bool:
    """A reject that a fixed pipeline may not repeat: its input is read again next run."""
    return is_retry_reason(reason) or reason.startswith(CODE_FAULT_PREFIXES)


@dataclass
class StreamStats:
    """Counts one stream produced; executors merge them (they are plain data)."""

    #: every reject, in order (spilled to disk past a few thousand: see etl.rejects)
    rejects: Rejects = field(default_factory=Rejects)
    counters: Counter[str] = field(default_factory=Counter)
    #: rows read per unit index
    read: Counter[int] = field(default_factory=Counter)
    #: rows dropped by transforms per unit index
    dropped: Counter[int] = field(default_factory=Counter)
    #: rejects per unit index
    rejected: Counter[int] = field(default_factory=Counter)
    #: rows in and out of each transform, by section label
    transform_rows: dict[str, list[int]] = field(default_factory=dict)
    #: of ``rejected``: rows a transform rejected (they were read first)
    rows_rejected: Counter[int] = field(default_factory=Counter)
    #: unit indexes not to remember as ingested (a read that failed in a way that may pass)
    retry: set[int] = field(default_factory=set)
    #: content hash of the raw input bytes, per unit index, where the source reported it
    digests: dict[int, str] = field(default_factory=dict)
    #: seconds spent in each plugin, by section label (the summary's "where the time went")
    seconds: Counter[str] = field(default_factory=Counter)

    def merge(self, other: StreamStats) -> None:
        self.rejects.extend(other.rejects)
        self.counters.update(other.counters)
        self.read.update(other.read)
        self.dropped.update(other.dropped)
        self.rejected.update(other.rejected)
        self.rows_rejected.update(other.rows_rejected)
        self.retry.update(other.retry)
        self.digests.update(other.digests)
        self.seconds.update(other.seconds)
        for key, (n_in, n_out) in other.transform_rows.items():
            mine = self.transform_rows.setdefault(key, [0, 0])
            mine[0] += n_in
            mine[1] += n_out


def error_line(exc: BaseException) -> str:
    """The last line of the exception's traceback: ``ValueError: bad date``."""
    return traceback.format_exception_only(type(exc), exc)[-1].strip()
