"""The store's filesystem seam (etl/store/fs.py) on fsspec's memory:// filesystem: the
object-store side of each operation a commit and the lock rely on."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from etl.errors import RunError
from etl.store import Layout
from etl.store.fs import LOCAL, OBJECT, ObjectPath, fs_of, store_path


@pytest.fixture
def root():
    import fsspec

    name = f"fs-test-{uuid.uuid4().hex[:8]}"
    path = store_path(f"memory://{name}/ds")
    yield path
    fs = fsspec.filesystem("memory")
    if fs.exists(f"/{name}"):
        fs.rm(f"/{name}", recursive=True)


def test_a_url_gives_an_object_path_and_a_local_path_stays_a_path(root, tmp_path):
    assert isinstance(root, ObjectPath) and fs_of(root) is OBJECT
    assert str(root).startswith("memory://fs-test-") and str(root).endswith("/ds")
    assert store_path(str(tmp_path)) == tmp_path and fs_of(tmp_path) is LOCAL
    assert (root / "a" / "b.txt").relative_to(root).parts == ("a", "b.txt")
    assert (root / "a" / "b.txt").parent == root / "a"


def test_replace_is_a_copy_and_a_delete_and_can_be_done_again(root):
    staged, final = root / "_etl" / "staging" / "r" / "x.staged", root / "part-1.parquet"
    staged.write_bytes(b"data")
    OBJECT.replace(staged, final)
    assert final.read_bytes() == b"data" and not staged.exists()
    OBJECT.replace(staged, final)  # an earlier attempt moved it: done, not an error
    final.unlink()
    with pytest.raises(FileNotFoundError):
        OBJECT.replace(staged, final)  # neither is there: a real loss, said so


def test_exclusive_create_refuses_an_existing_object(root):
    lock = root / "_etl" / "lock"
    assert OBJECT.create_exclusive(lock, b"one")
    assert not OBJECT.create_exclusive(lock, b"two")
    assert lock.read_bytes() == b"one"


def test_a_staged_object_that_is_missing_fails_before_the_commit_point(root):
    with pytest.raises(FileNotFoundError):
        OBJECT.fsync_file(root / "_etl" / "staging" / "r" / "gone.staged")


def test_rmtree_removes_every_key_below(root):
    for name in ("a.staged", "sub/b.staged", "COMMIT.json"):
        (root / "_etl" / "staging" / "r" / name).write_bytes(b"x")
    (root / "keep.parquet").write_bytes(b"x")
    OBJECT.rmtree(root / "_etl" / "staging")
    assert [p.relative_to(root).as_posix() for p in root.find()] == ["keep.parquet"]
    OBJECT.rmtree(root / "nothing-here")  # no error


def test_the_layout_on_an_object_store(root):
    layout = Layout(root)
    for key in (
        "part-1.parquet",
        "lang=en/part-2.parquet",
        "_etl/runs/r.json",
        "_etl/staging/r/data/00001.staged",
        ".hidden/part-3.parquet",
        "nested/_etl/runs/x.json",
        "nested/part-4.parquet",
    ):
        (root / key).write_bytes(b"x")
    found = sorted(p.relative_to(root).as_posix() for p in layout.data_files())
    assert found == ["lang=en/part-2.parquet", "part-1.parquet"]
    inside, outer = layout.other_datasets()
    assert inside == [root / "nested"] and outer is None
    assert layout.inside("lang=en/part-2.parquet") == root / "lang=en" / "part-2.parquet"
    for bad in ("../other/x.parquet", "/etc/passwd", "a/../../x"):
        with pytest.raises(RunError, match="outside the dataset"):
            layout.inside(bad)


def test_a_local_layout_is_unchanged(tmp_path: Path):
    layout = Layout(tmp_path)
    assert layout.inside("a/b.parquet") == tmp_path / "a" / "b.parquet"
    with pytest.raises(RunError):
        layout.inside("../x")


def test_a_renewal_never_overwrites_an_object_replaced_after_it_was_read(s3):
    """The lock's renewal on S3: a PUT conditional on the ETag read with the content, so a
    lock another run took between the read and the PUT is kept (a plain re-PUT wrote the
    old holder back over it)."""
    lock = store_path(s3.url("ds"), s3.options()) / "_etl" / "lock"
    lock.write_bytes(b"mine")

    def taken_meanwhile(data: bytes) -> bytes:
        assert data == b"mine"
        lock.write_bytes(b"theirs")  # another run broke the lock and took it
        return b"mine, renewed"

    assert not OBJECT.touch_if(lock, taken_meanwhile)
    assert lock.read_bytes() == b"theirs"
    # unchanged since the read: renewed, with the new bytes
    assert OBJECT.touch_if(lock, lambda data: data + b" 1" if data == b"theirs" else None)
    assert lock.read_bytes() == b"theirs 1"
    assert not OBJECT.touch_if(lock, lambda data: None)  # not the caller's: left alone
    assert lock.read_bytes() == b"theirs 1"


def test_a_break_never_removes_a_lock_renewed_after_it_was_read(s3):
    """A breaker's DELETE on S3 is conditional on the ETag read before the content it
    judged: a lock its holder renewed meanwhile (a renewal changes the bytes, so the ETag)
    is kept, where a plain DELETE removed a live run's lock."""
    lock = store_path(s3.url("ds"), s3.options()) / "_etl" / "lock"
    lock.write_bytes(b'{"renewals": 1}')

    def renewed_meanwhile(data: bytes) -> bool:
        assert data == b'{"renewals": 1}'
        lock.write_bytes(b'{"renewals": 2}')  # the holder's heartbeat, just now
        return True  # judged on what it read: the lease had run out

    assert not OBJECT.remove_if(lock, renewed_meanwhile)
    assert lock.read_bytes() == b'{"renewals": 2}'
    assert not OBJECT.remove_if(lock, lambda data: False)  # not the one judged: kept
    assert lock.exists()
    assert OBJECT.remove_if(lock, lambda data: data == b'{"renewals": 2}')
    assert not lock.exists()
    assert not OBJECT.remove_if(lock, lambda data: True)  # nothing there


@pytest.mark.slow  # two leases run out
def test_a_lock_renewed_while_a_breaker_looks_is_kept(s3, monkeypatch):
    """Through the lock: another host's lock whose lease ran out, renewed by its holder
    right after a breaker judged it dead, is not broken; the breaker takes it only once
    it is really left."""
    import json

    from etl.store.lock import WriterLock

    root = store_path(s3.url("ds"), s3.options())
    holder = {
        "run_id": "r1",
        "host": "another-host",
        "pid": 4242,
        "started_at": "2026-12-03T00:00:00+00:00",
        "lease": 0.5,
    }
    path = root / "_etl" / "lock"
    path.write_bytes(json.dumps(holder).encode())
    theirs = WriterLock(path, root)
    theirs.held = holder  # the holder's side, renewing its own lock
    breaker = WriterLock(path, root)
    time.sleep(1.1)  # LastModified is to the second (cut down): the lease has run out
    assert breaker._holder_dead(breaker.read())
    looked = breaker.expired

    def renewed_right_after(current: dict) -> bool:
        dead = looked(current)
        assert theirs.renew()  # the heartbeat of a holder that was only slow
        return dead

    monkeypatch.setattr(breaker, "expired", renewed_right_after)
    assert breaker._break(holder)  # it tried
    assert json.loads(path.read_bytes())["renewals"] == 1  # and the lock is still theirs
    monkeypatch.undo()
    time.sleep(1.1)  # now no renewal for a whole lease
    assert breaker.break_stale() is not None
    assert not path.exists()


def test_a_server_without_conditional_puts_still_renews(s3, monkeypatch):
    """An S3-compatible server that refuses If-Match (older ones answer 501) gets the plain
    re-PUT, as before: a renewal that failed there would fail every run at its commit."""
    lock = store_path(s3.url("ds"), s3.options()) / "_etl" / "lock"
    lock.write_bytes(b"mine")
    plain = lock.fs.pipe_file

    def no_if_match(path, data, **kwargs):
        if "IfMatch" in kwargs:
            raise OSError(
                95,
                "NotImplemented: A header you provided implies functionality "
                "that is not implemented",
            )
        return plain(path, data, **kwargs)

    monkeypatch.setattr(lock.fs, "pipe_file", no_if_match)
    before = lock.fs.info(lock.path, refresh=True)["LastModified"]
    time.sleep(1.1)  # LastModified is to the second
    assert OBJECT.touch_if(lock, lambda data: data if data == b"mine" else None)
    assert lock.read_bytes() == b"mine"
    assert lock.fs.info(lock.path, refresh=True)["LastModified"] > before
