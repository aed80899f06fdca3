"""Errors a plugin author meets, through the real CLI: they name the plugin and the section.

Each is exit code 2 with one `etl: ...` message and no traceback; `-v` adds the traceback.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.helpers import ROOT, read_dataset, run_etl, write_pipeline

SEEDS = ROOT / "seeds"

HEADER = """\
import pyarrow as pa
from etl import Option, Transform, hookimpl
from etl.schema import extend_schema

"""

FOOTER = """

@hookimpl
def etl_register_plugins(register):
    register(Mine)
"""


def plugin_pipeline(tmp_path, body: str, options: str = ""):
    (tmp_path / "mine.py").write_text(HEADER + textwrap.dedent(body) + FOOTER)
    return write_pipeline(
        tmp_path / "p.toml",
        'plugins = ["mine.py"]\n'
        f'[[sources]]\nplugin = "text"\npaths = ["{SEEDS}"]\n'
        f'[[transforms]]\nplugin = "mine"\n{options}'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )


def assert_user_error(
    tmp_path, pipeline, *expected: str, command: str = "run", in_plugin_code: bool = True
):
    proc = run_etl(command, str(pipeline))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("etl: "), proc.stderr
    for text in expected:
        assert text in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    verbose = run_etl(command, str(pipeline), "-v")
    assert verbose.returncode == 2
    assert "Traceback" in verbose.stderr
    # where the plugin's own code raised, the traceback shows its file
    assert ("mine.py" in verbose.stderr) == in_plugin_code
    assert read_dataset(tmp_path / "out").num_rows == 0  # nothing committed
    return proc


def test_plugin_that_raises_in_init(tmp_path):
    pipeline = plugin_pipeline(
        tmp_path,
        """
        class Mine(Transform):
            '''Raises when built.'''
            name = "mine"
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                raise RuntimeError("model file missing")
        """,
    )
    for command in ("run", "validate"):
        assert_user_error(
            tmp_path,
            pipeline,
            "plugin 'mine' ([[transforms]] #1 in p.toml) failed to start: "
            "RuntimeError: model file missing",
            f"from local file {tmp_path / 'mine.py'}",
            command=command,
        )


APPENDS_DECLARED = """
class Mine(Transform):
    '''Appends its declared column instead of filling it.'''
    name = "mine"
    def output_schema(self, schema):
        return extend_schema(schema, [pa.field("flag", pa.bool_())])
    def process(self, batch, ctx):
        return batch.append_column("flag", pa.array([True] * batch.num_rows))
"""

UNDECLARED = """
class Mine(Transform):
    '''Adds a column it never declared.'''
    name = "mine"
    def process(self, batch, ctx):
        return batch.append_column("extra", pa.array(["x"] * batch.num_rows))
"""

WRONG_TYPE = """
class Mine(Transform):
    '''Fills its int64 column with strings.'''
    name = "mine"
    def output_schema(self, schema):
        return extend_schema(schema, [pa.field("score", pa.int64())])
    def process(self, batch, ctx):
        i = batch.schema.get_field_index("score")
        return batch.set_column(i, "score", pa.array(["high"] * batch.num_rows))
"""

DROPS_COLUMN = """
class Mine(Transform):
    '''Drops an article column.'''
    name = "mine"
    def process(self, batch, ctx):
        return batch.drop_columns(["publisher"])
"""


@pytest.mark.parametrize(
    ("body", "difference", "hint"),
    [
        (APPENDS_DECLARED, "column 'flag' appears twice", "batch.set_column("),
        (UNDECLARED, "column 'extra' (string) is not declared", "declare it in output_schema"),
        (WRONG_TYPE, "column 'score' is string, declared int64", "values.cast(pa.int64())"),
        (DROPS_COLUMN, "column 'publisher' (string) is missing", "keep every column"),
    ],
    ids=["appended-twice", "undeclared", "wrong-type", "dropped"],
)
def test_batch_of_the_wrong_schema(tmp_path, body, difference, hint):
    pipeline = plugin_pipeline(tmp_path, body)
    assert_user_error(
        tmp_path,
        pipeline,
        "plugin 'mine' ([[transforms]] #1 in p.toml) returned a batch that does not match "
        f"the declared schema: {difference}",
        hint,
        in_plugin_code=False,
    )


def test_process_that_forgets_to_return_the_batch(tmp_path):
    pipeline = plugin_pipeline(
        tmp_path,
        """
        class Mine(Transform):
            '''Forgets the return.'''
            name = "mine"
            def process(self, batch, ctx):
                batch = batch.filter([True] * batch.num_rows)
        """,
    )
    assert_user_error(
        tmp_path,
        pipeline,
        "plugin 'mine' ([[transforms]] #1 in p.toml) returned NoneType, not a pyarrow.RecordBatch",
        "did you forget `return batch`?",
        in_plugin_code=False,
    )


def test_columns_in_another_order_are_accepted(tmp_path):
    pipeline = plugin_pipeline(
        tmp_path,
        """
        class Mine(Transform):
            '''Returns the columns reversed.'''
            name = "mine"
            def process(self, batch, ctx):
                return batch.select(list(reversed(batch.schema.names)))
        """,
    )
    proc = run_etl("run", str(pipeline))
    assert proc.returncode == 0, proc.stderr
    table = read_dataset(tmp_path / "out")
    assert table.column_names[0] == "id" and table.num_rows == 1


def test_option_declared_twice(tmp_path):
    pipeline = plugin_pipeline(
        tmp_path,
        """
        class Mine(Transform):
            '''Declares one option twice.'''
            name = "mine"
            options = (Option("limit", "int", 1, help="a"), Option("limit", "str", help="b"))
        """,
    )
    for command in ("run", "validate"):
        assert_user_error(
            tmp_path,
            pipeline,
            "plugin 'mine' (etl_local_mine.Mine) declares option 'limit' twice; supplied by "
            f"local file {tmp_path / 'mine.py'}",
            "give each Option in `options` a distinct name",
            command=command,
        )


def test_plugin_file_that_fails_to_import(tmp_path):
    (tmp_path / "mine.py").write_text("import pyarrow\nimport no_such_dependency_xyz\n")
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        'plugins = ["mine.py"]\n'
        f'[[sources]]\nplugin = "text"\npaths = ["{SEEDS}"]\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    assert_user_error(
        tmp_path,
        pipeline,
        "plugin file 'mine.py' failed to import: ModuleNotFoundError: "
        "No module named 'no_such_dependency_xyz'",
    )


def test_misspelt_hooks_are_named_with_what_they_meant(tmp_path):
    (tmp_path / "mine.py").write_text(
        "from etl import Transform, hookimpl\n"
        "class Mine(Transform):\n"
        "    '''Never registered: the hook name is misspelt.'''\n"
        "    name = 'mine'\n"
        "@hookimpl\n"
        "def etl_register_plugin(register):\n"
        "    register(Mine)\n"
        "@hookimpl\n"
        "def etl_after_runs(run, summary, error):\n"
        "    pass\n"
    )
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        'plugins = ["mine.py"]\n'
        f'[[sources]]\nplugin = "text"\npaths = ["{SEEDS}"]\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    assert_user_error(
        tmp_path,
        pipeline,
        f"plugin module {tmp_path / 'mine.py'} implements unknown hooks: 'etl_after_runs' "
        "(did you mean 'etl_after_run'?), 'etl_register_plugin' (did you mean "
        "'etl_register_plugins'?)",
        "the hooks are ",
        command="validate",
    )


def test_bad_option_value_names_plugin_and_section(tmp_path):
    pipeline = plugin_pipeline(
        tmp_path,
        """
        class Mine(Transform):
            '''Has one int option.'''
            name = "mine"
            options = (Option("limit", "int", 1, help="how many"),)
            def process(self, batch, ctx):
                return batch
        """,
        options="limt = 3\n",
    )
    proc = run_etl("validate", str(pipeline))
    assert proc.returncode == 2
    assert "plugin 'mine' ([[transforms]] #1 in p.toml): unknown option 'limt'" in proc.stderr
    assert "did you mean 'limit'?" in proc.stderr
