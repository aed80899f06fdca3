"""Fixtures of the transform tests: real article texts from tests/data/transforms."""

from __future__ import annotations

import pytest

from tests.helpers.transforms import article


@pytest.fixture
def seed_text() -> str:
    return article("01-seed.txt")
