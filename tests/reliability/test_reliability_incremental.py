"""Incremental re-runs: the dataset remembers its inputs (uri, size, mtime, content hash)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from etl.dataset import content_hash
from tests.helpers.reliability import etl, make_corpus, manifests, rows_by_id, write_pipeline

FLAKY = Path(__file__).parent / "plugins" / "flaky_source.py"


def last_summary(dataset: Path) -> dict:
    return manifests(dataset)[-1]["summary"]


def test_unchanged_inputs_are_skipped_without_reading(tmp_path):
    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 30, duplicates=2)
    dataset = tmp_path / "ds"
    pipeline = write_pipeline(tmp_path / "p.toml", str(corpus), dataset)
    etl("run", str(pipeline), check=True)
    before = rows_by_id(dataset)
    assert len(before) == 28

    # same size, same mtime, other content: only a run that reads the file would notice
    victim = paths[3]
    st = victim.stat()
    text = victim.read_text()
    victim.write_text(text.replace("Headline", "Xeadline", 1))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    proc = etl("run", str(pipeline), check=True)
    assert "0 read, 30 skipped as unchanged" in proc.stdout
    assert rows_by_id(dataset) == before
    assert last_summary(dataset)["inputs_skipped"] == 30


def test_changed_input_is_read_again_and_only_new_articles_added(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("one\ntwo\nthree\n")
    (corpus / "b.txt").write_text("four\n")
    dataset = tmp_path / "ds"
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        f'plugins = ["{FLAKY}"]\n[[sources]]\nplugin = "flaky"\npaths = ["{corpus}"]\n'
        f'[sink]\nplugin = "parquet"\npath = "{dataset}"\n'
    )
    etl("run", str(pipeline), check=True)
    (corpus / "a.txt").write_text("one\ntwo\nthree\nfive\n")
    proc = etl("run", str(pipeline), check=True)
    assert "1 read, 1 skipped as unchanged" in proc.stdout
    s = last_summary(dataset)
    (entry,) = s["per_input"]
    assert (entry["read"], entry["written"], entry["duplicates"]) == (4, 1, 3)
    assert sorted(r[1] for r in _texts(dataset)) == ["five", "four", "one", "three", "two"]


def _texts(dataset: Path) -> list[tuple[str, str]]:
    rows = []
    for p in dataset.rglob("*.parquet"):
        if "_etl" not in p.parts:
            t = pq.read_table(p, columns=["id", "text"])
            rows += list(zip(t.column("id").to_pylist(), t.column("text").to_pylist(), strict=True))
    return rows


def test_touched_file_is_skipped_by_content_hash(tmp_path):
    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 5)
    dataset = tmp_path / "ds"
    pipeline = write_pipeline(tmp_path / "p.toml", str(corpus), dataset)
    etl("run", str(pipeline), check=True)
    os.utime(paths[0], (1_000_000_000, 1_000_000_000))  # a copy or `touch`: new mtime, same bytes
    proc = etl("run", str(pipeline), check=True)
    assert "0 read, 5 skipped as unchanged" in proc.stdout


def test_full_ignores_the_memory(tmp_path):
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 6)
    dataset = tmp_path / "ds"
    pipeline = write_pipeline(tmp_path / "p.toml", str(corpus), dataset)
    etl("run", str(pipeline), check=True)
    proc = etl("run", str(pipeline), "--full", check=True)
    assert "6 read, 0 skipped as unchanged" in proc.stdout
    s = last_summary(dataset)
    assert (s["written"], s["duplicates"]) == (0, 6)  # read again, nothing doubled


def test_transient_errors_are_not_remembered_content_rejects_are(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("alpha\nbeta\n")
    (corpus / "flaky.txt").write_text("gamma\n")
    (corpus / "flaky.txt.fail").write_text("")
    (corpus / "io.txt").write_text("delta\n")
    (corpus / "io.txt.unreadable").write_text("")
    (corpus / "empty.txt").write_text("\n\n")
    dataset = tmp_path / "ds"
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        f'plugins = ["{FLAKY}"]\n[[sources]]\nplugin = "flaky"\npaths = ["{corpus}"]\n'
        f'[sink]\nplugin = "parquet"\npath = "{dataset}"\n'
    )
    etl("run", str(pipeline), check=True)
    first = {Path(e["input"]).name: e for e in last_summary(dataset)["per_input"]}
    assert first["flaky.txt"]["remembered"] is False  # a source error may pass
    assert first["io.txt"]["remembered"] is False  # so may an I/O error
    assert first["empty.txt"]["remembered"] is True  # unchanged content, same answer
    assert first["good.txt"]["remembered"] is True

    (corpus / "flaky.txt.fail").unlink()
    (corpus / "io.txt.unreadable").unlink()
    proc = etl("run", str(pipeline), check=True)
    assert "2 read, 2 skipped as unchanged" in proc.stdout
    second = {Path(e["input"]).name: e for e in last_summary(dataset)["per_input"]}
    assert set(second) == {"flaky.txt", "io.txt"}
    assert second["flaky.txt"]["written"] == 1 and second["io.txt"]["written"] == 1
    assert {t for _, t in _texts(dataset)} == {"alpha", "beta", "gamma", "delta"}


def test_memory_is_one_compacted_table_and_survives_its_loss(tmp_path):
    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 12)
    dataset = tmp_path / "ds"
    pipeline = write_pipeline(tmp_path / "p.toml", str(corpus), dataset)
    for i in range(4):  # four runs, each with one more changed input
        paths[i].write_text(paths[i].read_text() + f"\nmore {i}\n")
        etl("run", str(pipeline), check=True)
    memory = pq.read_table(dataset / "_etl" / "inputs.pq")
    assert memory.num_rows == 12  # one row per input, however many runs
    assert len(set(memory.column("key").to_pylist())) == 12
    by_name = {Path(r["input"]).name: r["content_hash"] for r in memory.to_pylist()}
    for path in paths:  # the hash of exactly the bytes that were read
        assert by_name[path.name] == content_hash(path.read_bytes())

    (dataset / "_etl" / "inputs.pq").unlink()  # lost: rebuilt from the run manifests
    proc = etl("run", str(pipeline), check=True)
    assert "0 read, 12 skipped as unchanged" in proc.stdout


def test_overwrite_forgets_and_rereads(tmp_path):
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 4)
    dataset = tmp_path / "ds"
    pipeline = write_pipeline(tmp_path / "p.toml", str(corpus), dataset)
    etl("run", str(pipeline), check=True)
    proc = etl("run", str(pipeline), "--set", "sink.mode=overwrite", check=True)
    assert "4 read, 0 skipped" in proc.stdout
    assert len(rows_by_id(dataset)) == 4


def test_a_memory_from_before_the_content_hash_still_skips_touched_files(tmp_path):
    """Datasets whose memory holds SHA-256 (before XXH3): a touched file is compared by
    SHA-256, skipped, and remembered with the new hash from then on."""
    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 5)
    dataset = tmp_path / "ds"
    pipeline = write_pipeline(tmp_path / "p.toml", str(corpus), dataset)
    etl("run", str(pipeline), check=True)
    memory_path = dataset / "_etl" / "inputs.pq"
    memory = pq.read_table(memory_path)
    sha = {
        r["key"]: hashlib.sha256(Path(r["input"]).read_bytes()).hexdigest()
        for r in memory.to_pylist()
    }
    old = memory.drop_columns(["content_hash"]).append_column(
        "sha256", pa.array([sha[k] for k in memory.column("key").to_pylist()])
    )
    pq.write_table(old, memory_path)
    os.utime(paths[0], (1_000_000_000, 1_000_000_000))  # touched: another mtime, same bytes
    proc = etl("run", str(pipeline), check=True)
    assert "0 read, 5 skipped as unchanged" in proc.stdout
    paths[1].write_text(paths[1].read_text().replace("a", "b", 1))  # same size, new bytes
    os.utime(paths[1], (1_000_000_000, 1_000_000_000))
    proc = etl("run", str(pipeline), check=True)
    assert "1 read, 4 skipped as unchanged" in proc.stdout
    hashes = pq.read_table(memory_path).column("content_hash").to_pylist()
    assert sum(h.startswith("xxh3_128:") for h in hashes) == 1  # the one read again
