"""etl.testing, the helpers issue 14 added or changed: run options honoured, sources that are
not about files checked, one unit read with a real context, the fixtures' documented shapes."""

from __future__ import annotations

import pyarrow as pa
import pytest

import etl.testing
from etl import Option, Sink, Source, Transform, WorkUnit
from etl.context import REJECTS_SCHEMA, Context, RunInfo
from etl.errors import RunError
from etl.plugin import InputRef
from etl.schema import ARTICLE_SCHEMA
from etl.sources.text import TextSource
from etl.testing import (
    check_sink_roundtrip,
    check_source,
    read_unit,
    run_info,
    run_pipeline,
    sample_articles,
    source_context,
)


def recording(sizes: list[int]) -> type[Transform]:
    class Recording(Transform):
        """Records the size of each batch it is given."""

        name = "recording"

        def process(self, batch, ctx):
            sizes.append(batch.num_rows)
            return batch

    return Recording


# run_pipeline: every run option it accepts is honoured, for a dict and for a file


def test_run_pipeline_honours_batch_size_for_given_articles(tmp_path):
    sizes: list[int] = []
    result = run_pipeline(
        {"transforms": [{"plugin": "recording"}]},
        articles=sample_articles(5),
        plugins=[recording(sizes)],
        tmp_path=tmp_path,
        batch_size=2,
    )
    assert sizes == [2, 2, 1]
    assert result.plan.run.batch_size == 2


def test_run_pipeline_honours_run_options_for_a_pipeline_file(tmp_path):
    (tmp_path / "in").mkdir()
    for i in range(5):
        (tmp_path / "in" / f"{i}.txt").write_text(f"Title {i}\nBody {i}.\n")
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        '[run]\nbatch_size = 100\n\n[[sources]]\nplugin = "text"\npaths = ["in"]\n\n'
        '[[transforms]]\nplugin = "recording"\n\n[sink]\nplugin = "parquet"\npath = "ds"\n'
    )
    sizes: list[int] = []
    result = run_pipeline(pipeline, plugins=[recording(sizes)], batch_size=2, executor="local")
    assert sizes == [2, 2, 1]  # the file said 100: the argument wins
    assert result.table.num_rows == 5
    assert (tmp_path / "ds").is_dir()  # the file's relative paths resolve against its folder


def test_run_pipeline_on_error_fail_stops_the_run(tmp_path):
    class Fails(Transform):
        """Raises on every batch."""

        name = "fails"

        def process(self, batch, ctx):
            raise ValueError("bad")

    pipeline = {"transforms": [{"plugin": "fails"}]}
    quarantined = run_pipeline(pipeline, articles=sample_articles(2), plugins=[Fails])
    assert quarantined.counts["rejected"] == 2
    with pytest.raises(RunError, match="ValueError: bad"):
        run_pipeline(pipeline, articles=sample_articles(2), plugins=[Fails], on_error="fail")


def test_run_pipeline_refuses_articles_and_sources_together(tmp_path):
    with pytest.raises(ValueError, match="not both"):
        run_pipeline({"sources": [{"plugin": "text", "paths": ["x"]}]}, articles=sample_articles(1))
    with pytest.raises(ValueError, match="give `articles` or a `sources` list"):
        run_pipeline({})


@pytest.mark.slow
def test_run_pipeline_runs_given_articles_on_worker_processes(tmp_path):
    result = run_pipeline(
        {"sink": {"plugin": "parquet", "path": "ds"}},
        articles=sample_articles(5),
        executor={"plugin": "processes", "workers": 2},
        tmp_path=tmp_path,
    )
    assert result.plan.executor.name == "processes"
    assert result.table.num_rows == 5


# check_source: a source that is not about files


class Counting(Source):
    """Numbered articles in units of ``per_unit`` (a stand-in for a database or an API)."""

    name = "counting"
    options = (
        Option("count", "int", 5, help="how many articles"),
        Option("per_unit", "int", 2, help="articles per work unit"),
    )

    def units(self):
        for start in range(0, self.opts.count, self.opts.per_unit):
            end = min(start + self.opts.per_unit, self.opts.count)
            yield WorkUnit(InputRef(f"counting:{start}-{end}", size=end - start), (start, end))

    def read(self, unit, ctx):
        start, end = unit.data
        yield ctx.articles(text=[f"Article number {i}." for i in range(start, end)])


def test_check_source_takes_options_and_the_expected_unit_count(tmp_path):
    result = check_source(Counting, {"count": 5}, units=3, tmp_path=tmp_path)
    assert result.counts["written"] == 5
    result = check_source(Counting, options={"count": 4, "per_unit": 4}, tmp_path=tmp_path / "b")
    assert len(result.plan.units) == 1


def test_check_source_catches_a_wrong_unit_count(tmp_path):
    with pytest.raises(AssertionError, match="listed 3 work units, expected 2"):
        check_source(Counting, {"count": 5}, units=2, tmp_path=tmp_path)


def test_check_source_catches_a_fingerprint_that_moves_by_itself(tmp_path):
    import itertools

    ticks = itertools.count()

    class Restless(Counting):
        """Stamps each listing with a new mtime (as if the clock were the version)."""

        name = "restless"

        def units(self):
            for unit in super().units():
                yield WorkUnit(InputRef(unit.key, mtime=float(next(ticks))), unit.data)

    with pytest.raises(AssertionError, match="moves by itself makes every run read it again"):
        check_source(Restless, {"count": 3}, tmp_path=tmp_path)


def test_check_source_catches_a_listing_that_changes_keys(tmp_path):
    import itertools

    calls = itertools.count()

    class Shifting(Counting):
        """Keys carry the listing's number."""

        name = "shifting"

        def units(self):
            n = next(calls)
            for unit in super().units():
                yield WorkUnit(InputRef(f"{unit.key}#{n}"), unit.data)

    with pytest.raises(AssertionError, match="lists different inputs when called twice"):
        check_source(Shifting, {"count": 3}, tmp_path=tmp_path)


def test_check_source_says_when_paths_do_not_apply(tmp_path):
    with pytest.raises(TypeError, match="has no option 'paths'"):
        check_source(Counting, ["a.txt"], tmp_path=tmp_path)


def test_check_source_still_takes_paths_for_a_file_source(tmp_path):
    (tmp_path / "a.txt").write_text("Headline\nText.\n")
    result = check_source(TextSource, tmp_path / "a.txt", units=1, tmp_path=tmp_path / "run")
    assert result.counts["written"] == 1


# source_context, read_unit, run_info: Source.read called directly


def test_source_context_is_a_real_context_for_read(tmp_path):
    source = Counting({"count": 3}, section="[[sources]] #1", base_dir=tmp_path)
    unit = next(iter(source.units()))
    ctx = source_context(source, unit, batch_size=7)
    assert isinstance(ctx, Context) and isinstance(ctx.run, RunInfo)
    assert ctx.batch_size == 7 and ctx.input == "counting:0-2"
    (batch,) = source.read(unit, ctx)
    assert batch.schema == ARTICLE_SCHEMA
    assert batch.column("source").to_pylist() == ["counting", "counting"]
    assert batch.column("run_id").to_pylist() == [ctx.run_id] * 2
    ctx.reject("bad row", location="row 3")
    assert ctx.rejects[0]["section"] == "[[sources]] #1"
    assert ctx.rejects[0]["input"] == "counting:0-2"


def test_read_unit_returns_the_table_and_the_rejects(tmp_path):
    (tmp_path / "good.txt").write_text("Headline\nSome text.\n")
    (tmp_path / "empty.txt").write_text("")
    source = TextSource({"paths": [str(tmp_path)]}, base_dir=tmp_path)
    units = {u.key.rsplit("/", 1)[-1]: u for u in source.units()}
    table, rejects = read_unit(source, units["good.txt"])
    assert table.num_rows == 1 and table.column("title").to_pylist() == ["Headline"]
    assert rejects.schema == REJECTS_SCHEMA and rejects.num_rows == 0
    table, rejects = read_unit(source, units["empty.txt"], run_id="r-1")
    assert table.num_rows == 0 and table.schema == ARTICLE_SCHEMA
    assert rejects.column("reason").to_pylist() == ["empty file"]
    assert rejects.column("run_id").to_pylist() == ["r-1"]


def test_read_unit_defaults_to_the_first_unit_and_keeps_a_given_contexts_rejects(tmp_path):
    source = Counting({"count": 5})
    table, _ = read_unit(source)
    assert table.column("text").to_pylist() == ["Article number 0.", "Article number 1."]

    class Rejecting(Counting):
        """Rejects every unit."""

        name = "rejecting"

        def read(self, unit, ctx):
            ctx.reject("nope")
            yield from ()

    source = Rejecting({})
    ctx = source_context(source, "k")
    _, rejects = read_unit(source, ctx=ctx)
    assert rejects.num_rows == 1 and len(ctx.rejects) == 1


def test_read_unit_catches_a_source_that_yields_no_batches(tmp_path):
    class Dicts(Counting):
        """Yields dicts instead of batches (broken on purpose)."""

        name = "dicts"

        def read(self, unit, ctx):
            yield {"text": "hello"}

    with pytest.raises(AssertionError, match="yielded dict, not a pyarrow.RecordBatch"):
        read_unit(Dicts({}))
    with pytest.raises(AssertionError, match="listed nothing to read"):
        read_unit(Counting({"count": 0}))


def test_run_info_is_a_real_run_info(tmp_path):
    run = run_info(base_dir=tmp_path, batch_size=3, full=True)
    assert isinstance(run, RunInfo)
    assert run.base_dir == tmp_path and run.batch_size == 3 and run.full
    assert run.started_at.tzinfo is not None and run.run_id


# the fixtures' documented shapes


def test_etl_cli_fixture_is_the_three_helpers(etl_cli):
    run_cli, read_dataset, read_rejects = etl_cli
    assert (run_cli, read_dataset, read_rejects) == (
        etl.testing.run_cli,
        etl.testing.read_parquet_dataset,
        etl.testing.read_rejects,
    )


def test_per_input_fixture_is_a_dict_of_dicts_by_input(per_input, tmp_path):
    result = run_pipeline(
        {"sink": {"plugin": "parquet", "path": "ds"}},
        articles=sample_articles(3),
        tmp_path=tmp_path,
    )
    inputs = per_input(tmp_path / "ds")
    assert list(inputs) == ["<articles>"]
    row = inputs["<articles>"]
    for key in ("input", "source", "records", "read", "written", "duplicates", "dropped"):
        assert key in row
    assert row["written"] == result.counts["written"] == 3
    assert row["records"] == row["written"] + row["duplicates"] + row["dropped"] + row["rejected"]


def test_every_public_name_is_exported_and_documented():
    for name in etl.testing.__all__:
        obj = getattr(etl.testing, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), f"etl.testing.{name} has no docstring"
    for name in ("run_pipeline", "read_unit", "source_context", "check_source", "last_run_inputs"):
        assert "Returns:" in getattr(etl.testing, name).__doc__, name
    assert isinstance(etl.testing.RunResult.__doc__, str)
    assert "Attributes:" in etl.testing.RunResult.__doc__


def test_no_module_of_the_kit_is_over_500_lines():
    from pathlib import Path

    folder = Path(etl.testing.__file__).parent
    for path in folder.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 500, path.name


# check_sink_roundtrip: the two-phase commit (prepare, then an idempotent commit(payload))


class Memory(Sink):
    """Keeps committed rows in a class-level list; `idempotent` off breaks it on purpose."""

    name = "memory"
    options = (Option("idempotent", "bool", True, help="record runs, commit each once"),)
    committed: list = []
    runs: set = set()
    staged: dict = {}

    def open(self, run, schema):
        self.run_id = run.run_id
        Memory.staged[self.run_id] = []

    def write(self, batch):
        Memory.staged[self.run_id].extend(batch.select(["id", "text"]).to_pylist())

    def prepare(self, summary):
        return {"run_id": summary["run_id"]}

    def commit(self, payload):
        run_id = payload["run_id"]
        if self.opts.idempotent and run_id in Memory.runs:
            return
        Memory.committed.extend(Memory.staged.get(run_id, []))
        Memory.runs.add(run_id)

    def abort(self):
        Memory.staged.pop(self.run_id, None)


def memory_rows(sink):
    return pa.Table.from_pylist(Memory.committed) if Memory.committed else None


@pytest.fixture
def memory():
    Memory.committed, Memory.runs, Memory.staged = [], set(), {}
    return Memory


def test_check_sink_roundtrip_passes_a_sink_with_an_idempotent_commit(memory, tmp_path):
    result = check_sink_roundtrip(memory, {}, memory_rows, tmp_path=tmp_path)
    assert result.table.num_rows == 10  # the commit-twice check's 5, then the run's 5


def test_check_sink_roundtrip_catches_a_commit_that_is_not_idempotent(memory, tmp_path):
    with pytest.raises(AssertionError, match="commit must be idempotent"):
        check_sink_roundtrip(memory, {"idempotent": False}, memory_rows, tmp_path=tmp_path)


def test_check_sink_roundtrip_catches_rows_visible_before_commit(memory, tmp_path):
    class Eager(Memory):
        """Commits in write (broken on purpose)."""

        name = "eager"

        def write(self, batch):
            Memory.committed.extend(batch.select(["id", "text"]).to_pylist())

        def abort(self):
            Memory.committed.clear()

    with pytest.raises(AssertionError, match="visible after prepare\\(\\), before commit"):
        check_sink_roundtrip(Eager, {}, memory_rows, tmp_path=tmp_path)
