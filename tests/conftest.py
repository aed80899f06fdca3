"""Fixtures shared by the whole test suite (plain helpers are in tests/helpers)."""
