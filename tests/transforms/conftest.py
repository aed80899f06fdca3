"""Shared inputs for the transform tests: real article texts from tests/data/transforms."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "transforms"
ARTICLES = DATA / "articles"


def article(name: str) -> str:
    """The text of one file in tests/data/transforms/articles, decoded as the text source
    decodes it, with CRLF/CR made LF."""
    from etl.decode import decode_bytes

    text, _ = decode_bytes((ARTICLES / name).read_bytes())
    return text.replace("\r\n", "\n").replace("\r", "\n")


@pytest.fixture
def seed_text() -> str:
    return article("01-seed.txt")
