"""Helpers of the transform tests: real article texts from tests/data/transforms."""

from __future__ import annotations

from tests.helpers import DATA

ARTICLES = DATA / "transforms" / "articles"


def article(name: str) -> str:
    """The text of one file in tests/data/transforms/articles, decoded as the text source
    decodes it, with CRLF/CR made LF."""
    from etl.decode import decode_bytes

    text, _ = decode_bytes((ARTICLES / name).read_bytes())
    return text.replace("\r\n", "\n").replace("\r", "\n")
