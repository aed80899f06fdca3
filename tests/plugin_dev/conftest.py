"""Fixtures of the plugin-author tests: a throwaway virtualenv with scaffolded plugins installed.

The virtualenv is made once per session and sees this interpreter's packages (etl, pytest,
pip, setuptools) through a ``.pth`` file, so nothing is downloaded or reinstalled; the
scaffolded packages are installed into it with ``pip install -e`` as a user would, and never
into the environment running these tests.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import run_etl
from tests.helpers.plugin_dev import BREAK_ENV


@dataclass
class PluginEnv:
    """A virtualenv with the scaffolded packages etl-flagdemo (transform) and etl-brokendemo installed."""

    root: Path
    python: Path
    flagdemo: Path
    brokendemo: Path
    install_log: str

    def run(self, *args: str, env: dict | None = None, cwd: Path | None = None, timeout=300):
        """Run ``python ARGS`` with the venv's interpreter."""
        inherited = {
            k: v for k, v in os.environ.items() if k not in ("ETL_LOAD_PLUGINS", BREAK_ENV)
        }
        full_env = {**inherited, "ETL_PROGRESS": "0", **(env or {})}
        return subprocess.run(
            [str(self.python), *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd,
            timeout=timeout,
        )

    def etl(self, *args: str, env: dict | None = None, cwd: Path | None = None):
        """The real ``etl`` command, run by the venv's interpreter."""
        return self.run("-m", "etl.cli", *args, env=env, cwd=cwd)


def _make_venv(root: Path) -> Path:
    venv = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # addsitedir (not a bare path line) so the parent's own .pth files run too: etl itself
    # is usually an editable install, found through one of them
    parents = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    Path(purelib, "_etl_test_parent.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in parents), encoding="utf-8"
    )
    return python


@pytest.fixture(scope="session")
def plugin_env(tmp_path_factory) -> PluginEnv:
    for needed in ("pip", "setuptools"):  # found, not imported: setuptools patches distutils
        if importlib.util.find_spec(needed) is None:
            pytest.skip(f"{needed} is not installed")
    root = tmp_path_factory.mktemp("plugin-env")
    python = _make_venv(root)
    flagdemo = root / "etl-flagdemo"
    brokendemo = root / "etl-brokendemo"
    for name, folder in (("flagdemo", flagdemo), ("brokendemo", brokendemo)):
        proc = run_etl("new", "plugin", name, "--kind", "transform", "--dir", str(folder))
        assert proc.returncode == 0, proc.stderr
    module = brokendemo / "etl_brokendemo.py"
    module.write_text(
        module.read_text("utf-8") + "\n\nimport os  # noqa: E402\n\n"
        f"if os.environ.get({BREAK_ENV!r}):\n"
        "    import no_such_module_for_etl_test  # noqa: F401\n",
        encoding="utf-8",
    )
    # one pip for both (each pip start is 1-2 s of CPU)
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
        + ["--disable-pip-version-check", "-e", str(flagdemo), "-e", str(brokendemo)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PIP_NO_INDEX": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return PluginEnv(root, python, flagdemo, brokendemo, proc.stdout + proc.stderr)
