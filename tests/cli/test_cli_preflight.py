"""`etl validate` and `--dry-run` check where the run would write, without writing."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.helpers import ROOT, run_etl, write_pipeline

PIPELINE = (
    '[[sources]]\nplugin = "text"\npaths = ["in"]\n[sink]\nplugin = "parquet"\npath = "{path}"\n'
)


def pipeline(tmp_path, path):
    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "in" / "a.txt").write_text("An article with some words in it.\n")
    return write_pipeline(tmp_path / "p.toml", PIPELINE.format(path=path))


@pytest.mark.parametrize(
    ("make", "path", "message"),
    [
        (lambda t: (t / "afile").write_text("x"), "afile", "exists and is not a folder"),
        (lambda t: (t / "afile").write_text("x"), "afile/sub", "cannot be made: "),
    ],
)
def test_a_sink_folder_that_cannot_be_written_fails_validate_and_dry_run(
    tmp_path, make, path, message
):
    make(tmp_path)
    p = pipeline(tmp_path, path)
    for args in (["validate", str(p)], ["run", str(p), "--dry-run"]):
        proc = run_etl(*args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert message in proc.stderr and "plugin 'parquet' ([sink] in p.toml)" in proc.stderr
    assert not (tmp_path / "s3:").exists()


#: a sink that writes local files only (``object_stores`` left False)
LOCAL_SINK = """
import pyarrow as pa
from etl import Option, Sink, hookimpl

class LocalOnly(Sink):
    name = "local_only"
    options = (Option("path", "path", required=True),)

    def location(self):
        return self.opts.path

    def open(self, run, schema):
        pass

    def write(self, batch: pa.RecordBatch):
        pass

    def prepare(self, summary):
        return {}

    def commit(self, payload):
        return None

@hookimpl
def etl_register_plugins(register):
    register(LocalOnly)
"""


def test_a_url_is_refused_for_a_sink_that_writes_local_files_only(tmp_path):
    """The parquet sink writes object stores (tests/objstore); a sink that does not say it
    does (``Sink.object_stores``) gets its URL refused by validate, --dry-run and run."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("An article with some words in it.\n")
    (tmp_path / "local_only.py").write_text(LOCAL_SINK)
    p = write_pipeline(
        tmp_path / "p.toml",
        'plugins = ["local_only.py"]\n[[sources]]\nplugin = "text"\npaths = ["in"]\n'
        '[sink]\nplugin = "local_only"\npath = "memory://bucket/news"\n',
    )
    for args in (["validate", str(p)], ["run", str(p), "--dry-run"], ["run", str(p)]):
        proc = run_etl(*args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "is a URL (memory://)" in proc.stderr, proc.stderr
        assert "plugin 'local_only' ([sink] in p.toml)" in proc.stderr
    assert not (tmp_path / "memory:").exists()  # it used to write a local folder "memory:"


def test_validate_says_the_folder_is_writable_and_writes_nothing(tmp_path):
    p = pipeline(tmp_path, "lake/news")
    proc = run_etl("validate", str(p))
    assert proc.returncode == 0, proc.stderr
    assert f"state     {tmp_path / 'lake' / 'news'} (will be made, writable)" in proc.stdout
    assert sorted(x.name for x in tmp_path.iterdir()) == ["in", "p.toml"]


@pytest.mark.slow
def test_a_read_only_filesystem_fails_validate(tmp_path):
    """A read-only mount (a tmpfs mounted ro in a private mount namespace)."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a read-only filesystem")
    mount = tmp_path / "ro"
    mount.mkdir()
    p = pipeline(tmp_path, "ro/news")
    script = (
        f"mount -t tmpfs -o ro tmpfs {mount} || exit 99; "
        f"cd {ROOT} && {sys.executable} -m etl.cli validate {p}"
    )
    proc = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode == 99:
        pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "is not writable (Read-only file system)" in proc.stderr
    assert "mounted read-only" in proc.stderr
