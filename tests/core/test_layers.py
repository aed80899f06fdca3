"""The layout shows the architecture (docs/design.md, "Layers"): checked on the source."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "etl"
MODULES = sorted(p for p in SRC.rglob("*.py") if "templates" not in p.parts)


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_tree_has_modules():
    assert len(MODULES) > 40 and (SRC / "store" / "store.py").is_file()


def test_executors_import_the_job_interface_not_the_runner():
    for path in (SRC / "executors").glob("*.py"):
        bad = {m for m in imports(path) if m.startswith(("etl.run", "etl.runner"))}
        assert not bad, f"{path.name} imports {bad}"


def test_the_store_imports_nothing_above_it():
    for path in (SRC / "store").glob("*.py"):
        bad = {
            m
            for m in imports(path)
            if m.startswith(
                (
                    "etl.run",
                    "etl.executors",
                    "etl.sources",
                    "etl.sinks",
                    "etl.transforms",
                    "etl.cli",
                )
            )
        }
        assert not bad, f"store/{path.name} imports {bad}"


def test_no_capability_probing():
    """Capabilities are base classes checked with isinstance, never methods found by name."""
    probe = re.compile(
        r"(getattr|hasattr)\(\s*(self\.)?(plan\.)?(sink|source|plugin|transform|executor)\b"
    )
    for path in MODULES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not probe.search(line), f"{path.relative_to(SRC)}:{number}: {line.strip()}"


def test_no_module_over_500_lines():
    long = {
        str(p.relative_to(SRC)): n
        for p in MODULES
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert not long, long


def test_executor_execute_is_typed():
    from etl.executors.dask import DaskExecutor
    from etl.executors.local import LocalExecutor
    from etl.executors.processes import ProcessesExecutor
    from etl.plugin import Executor

    for cls in (Executor, LocalExecutor, ProcessesExecutor, DaskExecutor):
        assert cls.execute.__annotations__ == {"job": "Job", "return": "StreamStats"}, cls
