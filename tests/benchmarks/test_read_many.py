"""The streamer's many-units read path (the ReadsMany capability): accounting and its fallback."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as pads

from etl.testing import last_run_inputs
from tests.helpers import run_etl

PLUGIN = '''
import numpy as np
import etl


class Picky(etl.Source, etl.ReadsMany):
    """Text files; read_many raises on a chunk holding a file named bad*."""

    name = "picky"
    options = (etl.Option("paths", "paths", required=True, help="files"),)

    def units(self):
        from etl.inputs import expand_paths

        for ref in expand_paths(self.opts.paths, plugin=self.name, section=self.section):
            yield etl.WorkUnit(ref)

    def read(self, unit, ctx):
        text = open(unit.key, encoding="utf-8").read()
        if "bad" in unit.key:
            ctx.reject("bad file", detail="read one by one")
            return
        yield ctx.articles(text=[text], uri=[unit.key])

    def read_many(self, units, ctx):
        if any("bad" in u.key for u in units):
            raise RuntimeError("this chunk has a bad file")
        texts, uris, positions = [], [], []
        for pos, unit in enumerate(units):
            text = open(unit.key, encoding="utf-8").read()
            if not text.strip():
                ctx.reject("empty file", input=unit.key)
                continue
            texts.append(text)
            uris.append(unit.key)
            positions.append(pos)
        return ctx.articles(text=texts, uri=uris), np.array(positions)


@etl.hookimpl
def etl_register_plugins(register):
    register(Picky)
'''


def _run(tmp_path: Path, names: dict[str, str]) -> tuple[dict, list[dict]]:
    (tmp_path / "in").mkdir()
    for name, text in names.items():
        (tmp_path / "in" / name).write_text(text, encoding="utf-8")
    (tmp_path / "picky.py").write_text(PLUGIN, encoding="utf-8")
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        'plugins = ["picky.py"]\n[run]\nbatch_size = 4\n'
        '[[sources]]\nplugin = "picky"\npaths = ["in"]\n'
        f'[sink]\nplugin = "parquet"\npath = "{tmp_path / "out"}"\n',
        encoding="utf-8",
    )
    proc = run_etl("run", "--json", str(pipeline))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    files = [str(p) for p in (tmp_path / "out").glob("*.parquet")]
    rows = pads.dataset(files, format="parquet").to_table().to_pylist() if files else []
    return summary, rows


def test_read_many_rows_and_rejects_are_counted_per_input(tmp_path):
    names = {f"a{i:02d}.txt": f"article number {i} text" for i in range(9)}
    names["a03.txt"] = "  \n"  # rejected by read_many, naming its input
    names["a07.txt"] = names["a01.txt"]  # an exact duplicate
    summary, rows = _run(tmp_path, names)
    assert summary["read"] == 8 and summary["written"] == 7 and summary["duplicates"] == 1
    assert summary["rejects_by_reason"] == {"empty file": 1}
    per_input = {Path(k).name: e for k, e in last_run_inputs(tmp_path / "out").items()}
    assert per_input["a03.txt"]["rejected"] == 1 and per_input["a03.txt"]["read"] == 0
    assert per_input["a07.txt"]["duplicates"] == 1
    assert all(per_input[n]["read"] == 1 for n in names if n != "a03.txt")
    assert sorted(Path(r["uri"]).name for r in rows) == sorted(
        n for n in names if n not in ("a03.txt", "a07.txt")
    )


def test_a_chunk_whose_read_many_raises_is_read_unit_by_unit(tmp_path):
    names = {f"a{i:02d}.txt": f"article number {i} text" for i in range(6)}
    names["bad.txt"] = "whatever"
    summary, rows = _run(tmp_path, names)
    # only the bad file is lost, as its own reject; its chunk-mates are all there
    assert summary["rejects_by_reason"] == {"bad file": 1}
    assert sorted(Path(r["uri"]).name for r in rows) == sorted(n for n in names if n != "bad.txt")
    assert summary["written"] == 6
