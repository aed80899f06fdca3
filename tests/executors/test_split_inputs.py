"""Byte-range units: one big JSON Lines file split into parts that run on two workers gives
the dataset, the account and the rejects of a local run (docs/design.md, "Byte-range units").
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pytest

from etl.plugin import WorkUnit
from etl.sources.jsonl import JsonlSource
from etl.store.hashing import file_content_hash
from etl.testing import read_unit, source_context
from tests.helpers import read_rejects, run_etl, run_etl_process, write_pipeline
from tests.helpers.executors import manifests, per_input, rows

#: small parts, so that a file of a few hundred kB makes several
SPLIT = 32 * 1024
BAD_LINE = 1700
DUPLICATE_OF, DUPLICATE_AT = 7, 1900


def big_jsonl(path: Path, n: int = 2000) -> Path:
    """``n`` lines of about 150 bytes: a malformed line at BAD_LINE (in a late part), line
    DUPLICATE_AT repeats line DUPLICATE_OF (another part), and a blank line."""
    lines = []
    for i in range(1, n + 1):
        if i == BAD_LINE:
            lines.append('{"text": "cut short')
        elif i == 900:
            lines.append("")
        else:
            k = DUPLICATE_OF if i == DUPLICATE_AT else i
            lines.append(json.dumps({"text": f"article {k} " + "words " * 15, "url": f"u{k}"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def jsonl_pipeline(tmp_path: Path, name: str, inputs: Path, executor: str = "local") -> Path:
    extra = ""
    if executor == "processes":
        extra = f'[executor]\nplugin = "processes"\nworkers = 2\nsplit_bytes = {SPLIT}\n'
    return write_pipeline(
        tmp_path / f"{name}.toml",
        f'[[sources]]\nplugin = "jsonl"\npaths = ["{inputs}"]\n'
        f'[sink]\nplugin = "parquet"\npath = "{tmp_path / name}"\n{extra}',
    )


COUNTS = ("inputs", "read", "written", "duplicates", "dropped", "rejected")


def run_local_then_split(tmp_path: Path, inputs: Path) -> dict:
    """Run ``inputs`` with the local executor into ``local`` and with two processes into
    ``split``; return the split run's summary."""
    local = jsonl_pipeline(tmp_path, "local", inputs)
    split = jsonl_pipeline(tmp_path, "split", inputs, executor="processes")
    assert run_etl("run", str(local)).returncode == 0
    proc = run_etl_process("run", str(split))
    assert proc.returncode == 0, proc.stderr
    return manifests(tmp_path / "split")[-1]["summary"]


@pytest.mark.slow
def test_a_split_file_on_two_workers_gives_the_local_dataset(tmp_path):
    data = big_jsonl(tmp_path / "big.jsonl")
    summary = run_local_then_split(tmp_path, data)
    assert summary["counters"]["processes:inputs split into parts"] == 1
    assert summary["counters"]["processes:parts of split inputs"] >= 4
    # the same rows (ids, texts, line numbers in metadata) and the same account
    assert rows(tmp_path / "split") == rows(tmp_path / "local")
    assert per_input(tmp_path / "split") == per_input(tmp_path / "local")
    expected = manifests(tmp_path / "local")[-1]["summary"]
    assert {k: summary[k] for k in COUNTS} == {k: expected[k] for k in COUNTS}
    assert summary["duplicates"] == 1 and summary["rejected"] == 1
    # the line numbers of a late part are the file's own
    rejects = read_rejects(tmp_path / "split").to_pylist()
    assert [(r["reason"], r["location"]) for r in rejects] == [
        ("malformed JSON", f"line {BAD_LINE}")
    ]
    # the duplicate across parts: the first occurrence (input order) is the row kept
    table = pa.concat_tables(
        pa.parquet.read_table(p) for p in sorted((tmp_path / "split").rglob("*.parquet"))
    )
    kept = [
        dict(m)["location"]
        for t, m in zip(
            table.column("text").to_pylist(), table.column("metadata").to_pylist(), strict=True
        )
        if t.startswith(f"article {DUPLICATE_OF} ")
    ]
    assert kept == [f"line {DUPLICATE_OF}"]

    # remembered as one input, by the content hash the split took: the next run reads nothing
    (account,) = summary["per_input"]
    assert account["remembered"] and account["content_hash"] == file_content_hash(str(data))
    again = run_etl_process("run", str(tmp_path / "split.toml"))
    assert again.returncode == 0, again.stderr
    last = manifests(tmp_path / "split")[-1]["summary"]
    assert (last["inputs"], last["inputs_skipped"], last["read"]) == (0, 1, 0)


@pytest.mark.slow
def test_split_parts_give_the_local_dataset_however_the_driver_takes_them(tmp_path):
    """Workers that write at once (the driver drops the duplicate from their files), and a
    merge-mode run (workers ship batches; the driver writes them)."""
    data = big_jsonl(tmp_path / "big.jsonl")
    variants = {
        "no-hold": ["--set", "executor.hold_bytes=0"],
        "merge": ["--set", "sink.mode=merge"],
    }
    for name, extra in variants.items():
        local = jsonl_pipeline(tmp_path, f"local-{name}", data)
        split = jsonl_pipeline(tmp_path, f"split-{name}", data, executor="processes")
        mode = extra if name == "merge" else []
        assert run_etl("run", str(local), *mode).returncode == 0
        proc = run_etl_process("run", str(split), *extra)
        assert proc.returncode == 0, proc.stderr
        summary = manifests(tmp_path / f"split-{name}")[-1]["summary"]
        assert summary["counters"]["processes:parts of split inputs"] >= 4, name
        assert rows(tmp_path / f"split-{name}") == rows(tmp_path / f"local-{name}"), name
        assert per_input(tmp_path / f"split-{name}") == per_input(tmp_path / f"local-{name}")


@pytest.mark.slow
def test_split_inputs_in_checkpoints_and_an_input_of_blank_lines(tmp_path):
    """Each checkpoint splits its own inputs; a split input whose parts hold no record at
    all is rejected once, as a whole input that gives nothing is."""
    folder = tmp_path / "in"
    folder.mkdir()
    big_jsonl(folder / "a-big.jsonl")
    (folder / "b-blank.jsonl").write_text("\n" * (3 * SPLIT), encoding="utf-8")
    (folder / "c-small.jsonl").write_text('{"text": "a small one"}\n', encoding="utf-8")
    local = jsonl_pipeline(tmp_path, "local", folder)
    split = jsonl_pipeline(tmp_path, "split", folder, executor="processes")
    checkpoint = ["--set", "run.checkpoint=1"]
    assert run_etl("run", str(local), *checkpoint).returncode == 0
    proc = run_etl_process("run", str(split), *checkpoint)
    assert proc.returncode == 0, proc.stderr
    runs = manifests(tmp_path / "split")
    assert len(runs) == 3  # one commit per input
    counters = [r["summary"]["counters"].get("processes:inputs split into parts") for r in runs]
    assert counters == [1, 1, None]
    assert rows(tmp_path / "split") == rows(tmp_path / "local")
    rejects = read_rejects(tmp_path / "split").to_pylist()
    blank = [r["reason"] for r in rejects if r["input"].endswith("b-blank.jsonl")]
    assert blank == ["no articles"]
    accounts = {
        Path(e["input"]).name: (e["read"], e["written"], e["duplicates"], e["rejected"])
        for r in runs
        for e in r["summary"]["per_input"]
    }
    assert accounts["a-big.jsonl"] == (1998, 1997, 1, 1)
    assert accounts["b-blank.jsonl"] == (0, 0, 0, 1)
    assert accounts["c-small.jsonl"] == (1, 1, 0, 0)


@pytest.mark.slow
def test_a_compressed_file_runs_whole(tmp_path):
    data = big_jsonl(tmp_path / "big.jsonl")
    packed = tmp_path / "big.jsonl.gz"
    packed.write_bytes(gzip.compress(data.read_bytes()))
    data.unlink()
    summary = run_local_then_split(tmp_path, packed)
    assert "processes:inputs split into parts" not in summary["counters"]
    assert rows(tmp_path / "split") == rows(tmp_path / "local")


def _unit(source: JsonlSource) -> WorkUnit:
    return next(iter(source.units()))


def test_parts_read_one_by_one_give_the_whole_files_rows_and_rejects(tmp_path):
    data = big_jsonl(tmp_path / "big.jsonl")
    source = JsonlSource({"paths": [str(data)]}, base_dir=tmp_path)
    unit = _unit(source)
    parts = source.split(unit, 8)
    assert len(parts) == 8
    assert parts[0].part.start == 0 and parts[-1].part.end == data.stat().st_size
    content = data.read_bytes()
    for p in parts:  # each starts at a line start, and knows the lines before it
        assert p.part.start == 0 or content[p.part.start - 1 : p.part.start] == b"\n"
        assert p.part.first_line == content[: p.part.start].count(b"\n")
        assert p.input == unit.input
    whole, whole_rejects = read_unit(source, unit)
    pieces = [read_unit(source, p) for p in parts]
    table = pa.concat_tables(t for t, _ in pieces)
    assert table.column("id").to_pylist() == whole.column("id").to_pylist()
    assert table.column("metadata").to_pylist() == whole.column("metadata").to_pylist()
    rejects = [r for _, rj in pieces for r in rj.to_pylist()]
    assert [(r["reason"], r["location"]) for r in rejects] == [
        (r["reason"], r["location"]) for r in whole_rejects.to_pylist()
    ]
    # the whole file's content hash comes with the last part only
    hashes = []
    for p in parts:
        ctx = source_context(source, p)
        list(source.read(p, ctx))
        hashes.append(ctx.digests.get(p.key))
    wctx = source_context(source, unit)
    list(source.read(unit, wctx))
    assert hashes == [None] * 7 + [wctx.digests[unit.key]]


def test_a_part_checks_the_fields_as_a_whole_input_does(tmp_path):
    from etl.errors import ConfigError

    data = big_jsonl(tmp_path / "big.jsonl")
    source = JsonlSource({"paths": [str(data)], "fields": {"text": "body"}}, base_dir=tmp_path)
    part = source.split(_unit(source), 8)[3]
    with pytest.raises(ConfigError, match="no such key"):
        read_unit(source, part)


def test_inputs_that_cannot_be_split_stay_whole(tmp_path):
    data = big_jsonl(tmp_path / "big.jsonl")
    packed = tmp_path / "packed.jsonl.gz"
    packed.write_bytes(gzip.compress(data.read_bytes()))
    document = tmp_path / "doc.json"
    document.write_text(json.dumps([{"text": f"a {i}"} for i in range(3000)]), encoding="utf-8")
    utf16 = tmp_path / "wide.jsonl"
    utf16.write_text(data.read_text(encoding="utf-8"), encoding="utf-16")
    for path in (packed, document, utf16):
        source = JsonlSource({"paths": [str(path)]}, base_dir=tmp_path)
        unit = _unit(source)
        assert source.split(unit, 4) == [unit], path.name
    # a size limit rejects the input whole, unread: it is not split either
    source = JsonlSource({"paths": [str(data)], "max_bytes": 1000}, base_dir=tmp_path)
    unit = _unit(source)
    assert source.split(unit, 4) == [unit]


def test_parts_counts_are_mapped_to_their_inputs():
    from collections import Counter

    import numpy as np

    from etl.accounting import Totals
    from etl.run.split import Parts
    from etl.stream import StreamStats

    # units 0-2 are the parts of input 0, unit 3 is input 1 whole
    parts = Parts([None] * 4, np.array([0, 0, 0, 1]))
    totals = Totals()
    totals.add(np.array([0, 1, 2]), None)
    totals.add(np.array([1, 3, 3]), np.array([False, True, True]))
    assert len(totals.unit_written) > 4  # grown by doubling, past the units
    mapped = parts.totals(totals)
    assert mapped.unit_written.tolist() == [3, 2]
    assert mapped.unit_duplicates.tolist() == [1, 0]
    assert (mapped.written, mapped.duplicates) == (5, 1)
    stats = StreamStats(read=Counter({0: 2, 2: 3, 3: 1}), retry={1}, digests={2: "h"})
    parts.stats(stats)
    assert stats.read == Counter({0: 5, 1: 1})
    assert stats.retry == {0} and stats.digests == {0: "h"}
    assert parts.rows(np.array([3, 1, 0])).tolist() == [1, 0, 0]
    assert parts.counts() == (1, 3)


def test_each_part_is_a_chunk_of_its_own():
    from etl.executors.api import chunk_bounds, parts_alone
    from etl.plugin import InputRef, Part

    whole = [WorkUnit(InputRef(f"f{i}")) for i in range(6)]
    big = InputRef("big", size=300)
    parts = [WorkUnit(big, part=Part(i, 3, 100 * i, 100 * i + 100)) for i in range(3)]
    units = [*whole[:3], *parts, *whole[3:]]
    bounds = parts_alone(chunk_bounds(len(units), 1, 5), units)
    assert bounds == [(0, 3), (3, 4), (4, 5), (5, 6), (6, 9)]
    assert parts_alone([(0, 6)], whole) == [(0, 6)]


def test_a_chunks_account_travels_without_the_units_before_it():
    """A worker's Totals (per unit index) is sent to the driver with each chunk's result:
    a chunk of the last 1,000 of 100,000 units carried arrays of 100,000 counts (1.6 MB), and
    a run's chunks 84 MB in all; only the span the chunk counted travels now."""
    import pickle

    import numpy as np

    from etl.accounting import Totals

    totals = Totals(inputs=1000)
    units = np.arange(99_000, 100_000)
    totals.add(units, units % 7 != 0)
    data = pickle.dumps(totals)
    assert len(data) < 40_000
    back = pickle.loads(data)
    assert (back.inputs, back.written, back.duplicates) == (1000, 857, 143)
    n = len(back.unit_written)
    assert n == 100_000
    assert back.unit_written.tolist() == totals.unit_written[:n].tolist()
    assert back.unit_duplicates.tolist() == totals.unit_duplicates[:n].tolist()
    merged = Totals()
    merged.merge(back)
    assert merged.unit_written[99_001] == 0 and merged.unit_duplicates[99_001] == 1  # 7 x 14,143
    assert merged.unit_written[99_002] == 1 and merged.unit_duplicates[99_002] == 0
    assert pickle.loads(pickle.dumps(Totals())).unit_written.tolist() == []
