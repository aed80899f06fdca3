"""The first-party packages under plugins/ have the layout `etl new plugin` writes.

pyproject.toml with `[project.entry-points.etl]`, one top-level module per entry point
(listed in `py-modules`), tests/ with test files, and a README.md.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from etl.scaffold import new_plugin
from tests.helpers import ROOT


def _packages() -> list[Path]:
    """Packages under plugins/; in a git checkout, only committed ones (others are in progress)."""
    found = sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))
    try:
        tracked = subprocess.run(
            ["git", "ls-files", "plugins/*/pyproject.toml"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return found
    return [p for p in found if f"plugins/{p.name}/pyproject.toml" in tracked]


PACKAGES = _packages()


def layout_problems(pkg: Path) -> list[str]:
    problems = []
    meta = tomllib.loads((pkg / "pyproject.toml").read_text(encoding="utf-8"))
    name = meta.get("project", {}).get("name", "")
    if not name.startswith("etl-"):
        problems.append(f"distribution name {name!r} does not start with 'etl-'")
    entry_points = meta.get("project", {}).get("entry-points", {}).get("etl", {})
    if not entry_points:
        problems.append("no [project.entry-points.etl]")
    modules = meta.get("tool", {}).get("setuptools", {}).get("py-modules", [])
    for ep, module in entry_points.items():
        if not (pkg / f"{module}.py").is_file():
            problems.append(f"entry point {ep} = {module!r}: no {module}.py beside pyproject.toml")
        if module not in modules:
            problems.append(f"{module} is not in [tool.setuptools] py-modules")
    if not list((pkg / "tests").glob("test_*.py")):
        problems.append("no tests/test_*.py")
    if not (pkg / "README.md").is_file():
        problems.append("no README.md")
    return problems


def test_the_scaffold_has_the_layout(tmp_path):
    for kind in ("source", "transform", "sink"):
        assert layout_problems(new_plugin("demo", kind, tmp_path / kind)) == []


@pytest.mark.parametrize("pkg", PACKAGES, ids=[p.name for p in PACKAGES])
def test_first_party_package_has_the_scaffold_layout(pkg):
    assert layout_problems(pkg) == [], pkg.name
