"""Write failures: a full disk or a refused write aborts the run cleanly: exit 1, a clear
message, nothing partial visible, no staging or lock left behind."""

from __future__ import annotations

import contextlib
import random
import string
import subprocess
from pathlib import Path

import pytest

from tests.helpers.reliability import etl, make_corpus, rows_by_id, visible_files, write_pipeline


def noisy_corpus(folder: Path, files: int, chars: int) -> None:
    """Articles of random letters: they compress badly, so they fill a small disk."""
    rng = random.Random(5)
    folder.mkdir(parents=True)
    for i in range(files):
        body = "".join(rng.choice(string.ascii_letters + "     ") for _ in range(chars))
        (folder / f"n{i:04d}.txt").write_text(f"Noise {i}\n\n{body}\n")


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({proc.stderr.strip()}); the injected faults cover it"
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def assert_clean(dataset: Path, before: dict) -> None:
    assert dataset.is_dir(), dataset
    assert rows_by_id(dataset) == before
    staging = dataset / "_etl" / "staging"
    assert not staging.exists() or not list(staging.iterdir())
    assert not (dataset / "_etl" / "lock").exists()


@pytest.mark.slow
def test_full_disk_aborts_cleanly(tmp_path):
    small = tmp_path / "corpus-small"
    make_corpus(small, 5)
    big = tmp_path / "corpus-big"
    noisy_corpus(big, 120, 30_000)  # ~3.6 MB of text, ~2.5 MB as Parquet
    with tmpfs(tmp_path / "disk", "1500k") as disk:
        dataset = disk / "ds"
        etl("run", str(write_pipeline(tmp_path / "a.toml", str(small), dataset)), check=True)
        before = rows_by_id(dataset)
        proc = etl(
            "run",
            str(
                write_pipeline(tmp_path / "b.toml", str(big), dataset, sink="compression = 'none'")
            ),
        )
        assert proc.returncode == 1, proc.stderr
        assert "No space left on device" in proc.stderr
        assert "nothing of this run was committed" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert_clean(dataset, before)
        for path in visible_files(dataset):  # whatever is visible reads whole
            assert path.stat().st_size > 0


def test_read_only_filesystem_aborts_cleanly(tmp_path):
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 5)
    more = tmp_path / "more"
    make_corpus(more, 5, seed=99)
    with tmpfs(tmp_path / "disk", "4m") as disk:
        dataset = disk / "ds"
        etl("run", str(write_pipeline(tmp_path / "a.toml", str(corpus), dataset)), check=True)
        before = rows_by_id(dataset)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        proc = etl("run", str(write_pipeline(tmp_path / "b.toml", str(more), dataset)))
        assert proc.returncode == 1, proc.stderr
        assert "Read-only file system" in proc.stderr and "Traceback" not in proc.stderr
        assert rows_by_id(dataset) == before


@pytest.mark.parametrize(
    ("point", "code", "says"),
    [
        ("write", "ENOSPC", "No space left on device"),
        ("write", "EACCES", "Permission denied"),
        ("before-commit-point", "ENOSPC", "No space left on device"),
        ("commit-point-tmp", "EDQUOT", "quota"),
    ],
)
def test_injected_write_fault_before_the_commit_point(tmp_path, point, code, says):
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 10)
    first = tmp_path / "first"
    make_corpus(first, 3, seed=42)
    dataset = tmp_path / "ds"
    etl("run", str(write_pipeline(tmp_path / "a.toml", str(first), dataset)), check=True)
    before = rows_by_id(dataset)
    pipeline = write_pipeline(tmp_path / "b.toml", str(corpus), dataset)
    proc = etl("run", str(pipeline), env={"ETL_FAIL_AT": f"{point}:{code}"})
    assert proc.returncode == 1
    assert says in proc.stderr and "nothing of this run was committed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert_clean(dataset, before)
    etl("run", str(pipeline), check=True)  # the fault gone, the run goes through
    assert len(rows_by_id(dataset)) == 13


def test_injected_fault_after_the_commit_point_is_finished_by_recover(tmp_path):
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 10)
    dataset = tmp_path / "ds"
    pipeline = write_pipeline(
        tmp_path / "p.toml", str(corpus), dataset, sink="max_rows_per_file = 3"
    )
    proc = etl("run", str(pipeline), env={"ETL_FAIL_AT": "mid-apply:ENOSPC"})
    assert proc.returncode == 1
    assert "committed but could not be finished" in proc.stderr and "etl recover" in proc.stderr
    assert (dataset / "_etl" / "staging").exists()  # kept for recovery, not deleted
    assert not (dataset / "_etl" / "lock").exists()
    rec = etl("recover", str(dataset), check=True)
    assert "committed" in rec.stdout
    assert len(rows_by_id(dataset)) == 10
    assert "0 read, 10 skipped" in etl("run", str(pipeline), check=True).stdout


def test_a_fault_that_passes_after_the_commit_point_is_finished_and_said_truly(tmp_path):
    """ENOSPC once while writing the manifest: the run finishes its commit and says so,
    rather than telling the user to run `etl recover` on a dataset already finished."""
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 10)
    dataset = tmp_path / "ds"
    pipeline = write_pipeline(tmp_path / "p.toml", str(corpus), dataset)
    proc = etl("run", str(pipeline), env={"ETL_FAIL_AT": "before-manifest:ENOSPC:1"})
    assert proc.returncode == 0, proc.stderr
    assert "etl recover" not in proc.stderr + proc.stdout
    assert "finishing the commit failed once" in proc.stderr
    assert len(rows_by_id(dataset)) == 10
    assert not (dataset / "_etl" / "staging").exists() or not list(
        (dataset / "_etl" / "staging").iterdir()
    )
    assert "nothing to recover" in etl("recover", str(dataset), check=True).stdout
