"""Crash safety: runs killed (SIGKILL or os._exit) at any point lose and double nothing.

A corpus of 3000 generated articles (30 files, some articles repeated across files) is run
once without interruption: the reference. Then runs over the same inputs are killed at every
named point of the commit protocol (``ETL_CRASH_AT``) and at random moments, and re-run; the
final dataset must equal the reference row for row by id. After every kill, every Parquet
file a reader can see must read whole, and no id may appear twice.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from etl.dataset import CRASH_EXIT, FAULT_POINTS
from tests.helpers.reliability import etl, etl_process, manifests, rows_by_id, visible_files

pytestmark = pytest.mark.slow

PLUGIN = Path(__file__).parent / "plugins" / "lines_source.py"
FILES, LINES, REPEATS = 30, 100, 60
#: points after which the run is committed (recovery rolls forward)
COMMITTED_FROM = FAULT_POINTS.index("after-commit-point")


def lines_pipeline(path: Path, inputs: list[Path], dataset: Path, executor: str = "local") -> Path:
    files = ", ".join(f'"{p}"' for p in inputs)
    path.write_text(
        f'plugins = ["{PLUGIN}"]\n'
        "[run]\nbatch_size = 500\n"
        f'[[sources]]\nplugin = "lines"\npaths = [{files}]\n'
        f'[sink]\nplugin = "parquet"\npath = "{dataset}"\nmax_rows_per_file = 400\n'
        "row_group_size = 100\n"
        + (f'[executor]\nplugin = "{executor}"\nworkers = 2\n' if executor != "local" else ""),
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The corpus, the reference dataset (one clean run) and a base (first half committed)."""
    root = tmp_path_factory.mktemp("crash")
    rng = random.Random(1234)
    words = [
        "storm",
        "vote",
        "river",
        "court",
        "market",
        "rail",
        "farm",
        "school",
        "bridge",
        "water",
        "energy",
        "housing",
    ]
    all_lines = []
    files = []
    for f in range(FILES):
        lines = [
            f"article {f}-{i}: " + " ".join(rng.choice(words) for _ in range(rng.randint(8, 30)))
            for i in range(LINES)
        ]
        if f >= 5:  # repeats of earlier articles: exact duplicates by id
            for j in range(REPEATS // (FILES - 5)):
                lines[j * 7] = rng.choice(all_lines)
        all_lines.extend(lines)
        path = root / "corpus" / f"part{f:02d}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files.append(path)
    reference = root / "reference"
    started = time.monotonic()
    # in a process, as the killed runs below: their kill times are spread over this duration
    etl_process("run", str(lines_pipeline(root / "ref.toml", files, reference)), check=True)
    duration = time.monotonic() - started
    base = root / "base"
    etl("run", str(lines_pipeline(root / "base.toml", files[:15], base)), check=True)
    ref_rows = rows_by_id(reference)
    assert len(ref_rows) > 2800  # 3000 articles less the repeats
    return {
        "root": root,
        "files": files,
        "reference": ref_rows,
        "base": rows_by_id(base),
        "base_path": base,
        "duration": duration,
    }


def check_visible_state(dataset: Path, world: dict) -> dict:
    """What a reader sees right after a kill: whole files, no id twice, nothing foreign."""
    for path in visible_files(dataset):
        assert ".staged" not in path.name
    rows = rows_by_id(dataset)  # reads every visible file whole; asserts no id twice
    assert set(rows) <= set(world["reference"])
    return rows


def fresh_copy(world: dict, name: str) -> Path:
    target = world["root"] / name
    shutil.copytree(world["base_path"], target)
    return target


# every point in one process. The commit is the same code under every executor once the files
# are staged, so worker processes (files staged by workers, adopted by the driver) need one
# point: the last one before the commit point, where the adopted files must vanish (the
# checkpoint tests take mid-apply under processes and dask)
CASES = [("local", p) for p in FAULT_POINTS] + [("processes", "before-commit-point")]


@pytest.mark.parametrize(("executor", "point"), CASES)
def test_crash_at_each_point_then_recover_or_rerun(world, executor, point):
    name = f"crash-{executor}-{point}"
    dataset = fresh_copy(world, name)
    pipeline = lines_pipeline(world["root"] / f"{name}.toml", world["files"], dataset, executor)

    proc = etl_process("run", str(pipeline), env={"ETL_CRASH_AT": point})
    assert proc.returncode == CRASH_EXIT, f"never reached {point}: {proc.stderr}"
    assert (dataset / "_etl" / "lock").exists()  # died holding the lock

    seen = check_visible_state(dataset, world)
    committed = FAULT_POINTS.index(point) >= COMMITTED_FROM
    if not committed:
        assert seen == world["base"], "a run killed before its commit point changed the dataset"

    # half the points: `etl recover` first (it must break the dead run's lock); else re-run
    if FAULT_POINTS.index(point) % 2 == 0:
        rec = etl("recover", str(dataset), check=True)
        rows = check_visible_state(dataset, world)
        if committed:
            assert rows == world["reference"], rec.stdout
            assert "rolled back" not in rec.stdout
        else:
            assert rows == world["base"]
        assert not any((dataset / "_etl" / "staging").glob("*/COMMIT.json"))

    (etl if executor == "local" else etl_process)("run", str(pipeline), check=True)
    assert rows_by_id(dataset) == world["reference"]
    last = manifests(dataset)[-1]["summary"]
    if committed:  # the crashed run counts as done: its inputs are remembered
        assert last["inputs_skipped"] == FILES and last["written"] == 0
    assert not (dataset / "_etl" / "lock").exists()
    leftovers = list((dataset / "_etl" / "staging").iterdir())
    assert leftovers == []


def test_random_sigkills_then_rerun(world):
    """SIGKILL at random moments (some land mid-stream, some mid-commit), over and over."""
    dataset = fresh_copy(world, "random-kills")
    pipeline = lines_pipeline(world["root"] / "random.toml", world["files"], dataset)
    rng = random.Random(2026)
    # the run's duration without its interpreter start-up, plus a margin past the commit
    span = max(world["duration"], 0.5) * 1.2
    outcomes = []
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-m", "etl.cli", "run", str(pipeline)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.2, span))
        proc.send_signal(signal.SIGKILL)
        outcomes.append(proc.wait())
        rows = check_visible_state(dataset, world)
        assert set(world["base"]) <= set(rows), "a committed article went missing"
        if rows == world["reference"]:  # one run got through: start again from the base
            shutil.rmtree(dataset)
            shutil.copytree(world["base_path"], dataset)
    assert -signal.SIGKILL in outcomes, "no run was killed; the test proved nothing"
    etl("run", str(pipeline), check=True)
    assert rows_by_id(dataset) == world["reference"]
    assert not list((dataset / "_etl" / "staging").iterdir())
