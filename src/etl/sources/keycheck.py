"""The check that the keys a record source's ``fields`` names exist in its input.

A misspelt key (``text = "Artcle Body"`` for a column ``Article Body``) made every record a
``no text`` reject, and the run committed an empty dataset with exit 0. The record sources
(``csv``, ``jsonl``) now check the first input they read and stop the run with a
configuration error (exit 2) naming the key and the columns or keys that exist.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from etl.errors import ConfigError
    from etl.plugin import Plugin
    from etl.sources.records import FieldMap

#: header columns or record keys named in a "not found" message, at most
_MAX_NAMES = 40


class KeyCheck:
    """Fails the run at once when a key that ``fields`` names is not in the input.

    A misspelt key (``text = "Artcle Body"``) would else reject every record as ``no text``
    or leave a column empty, without a word. The check is made once per source (in each
    process), on the first input that has records: a CSV file's header (:meth:`header`);
    for JSON the keys of its first batch of records, up to ``[run] batch_size``
    (:meth:`add_keys`, then :meth:`finish` at the end of the input), so a key that some
    records leave out still counts. A column given a list of keys fails only when none of
    them is found (a list covers several exports); a dotted key counts by its first segment.

    Args:
        plugin: the source (its name and section are in the message).
        fields: the source's field map.
    """

    def __init__(self, plugin: Plugin, fields: FieldMap) -> None:
        self.plugin = plugin
        self.wanted = {c: keys for c, keys in fields.keys.items() if c in fields.explicit and keys}
        self.done = not self.wanted
        self.seen: set[str] = set()
        self.records = 0

    def header(self, names: Iterable[str], where: str) -> None:
        """Check the header of the first CSV file read (keys are column names, exactly);
        ``where`` names it (``the header of data/a.csv``)."""
        if self.done:
            return
        self.done = True
        columns = list(names)
        missing = {c: k for c, k in self.wanted.items() if not any(key in columns for key in k)}
        if missing:
            raise self._error(missing, columns, where, "its columns")

    def add_keys(self, keys: Iterable[Any], records: int, limit: int, input: str) -> None:
        """Keys seen in ``records`` more records of ``input``; checks once ``limit`` are seen."""
        self.seen.update(str(k) for k in keys)
        self.records += records
        if self.records >= limit:
            self.finish(input)

    def unseen(self) -> bool:
        """Some column has none of its keys among the keys seen so far."""
        return any(not any(self._seen(k) for k in keys) for keys in self.wanted.values())

    def finish(self, input: str) -> None:
        """Check what the records seen so far hold (nothing to check if there were none)."""
        if self.done or not self.records:
            return
        self.done = True
        missing = {c: k for c, k in self.wanted.items() if not any(self._seen(key) for key in k)}
        if missing:
            first = f"first {self.records} records" if self.records > 1 else "first record"
            where = f"the {first} of {input}"
            raise self._error(missing, sorted(self.seen), where, "their keys")

    def _seen(self, key: str) -> bool:
        return key in self.seen or key.split(".", 1)[0] in self.seen

    def _error(
        self, missing: dict[str, tuple[str, ...]], names: list[str], where: str, what: str
    ) -> ConfigError:
        parts, guesses = [], []
        for column, keys in missing.items():
            said = repr(keys[0]) if len(keys) == 1 else f"any of {list(keys)!r}"
            parts.append(f"{column} = {said}")
            for key in keys:
                guesses += difflib.get_close_matches(key.split(".", 1)[0], names, n=1, cutoff=0.6)
        shown = ", ".join(names[:_MAX_NAMES]) + (", …" if len(names) > _MAX_NAMES else "")
        hint = (
            f"did you mean {', '.join(repr(g) for g in dict.fromkeys(guesses))}? "
            if guesses
            else ""
        )
        return self.plugin.error(
            f"fields: {'; '.join(parts)}: no such key in {where}; {what}: {shown or '(none)'}",
            hint=hint + "keys in `fields` are matched exactly, case included (map a column "
            'to "" to leave it empty)',
        )
