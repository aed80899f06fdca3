"""Building blocks for sources: :class:`FileSource`, the base of every source that reads files
or URLs (the bundled ``text``, ``jsonl`` and ``csv``, the ``html``, ``feed`` and ``warc``
plugins, and third-party ones alike)."""

from etl.sources.files import DEFAULT_MAX_BYTES, FileSource

__all__ = ["DEFAULT_MAX_BYTES", "FileSource"]
