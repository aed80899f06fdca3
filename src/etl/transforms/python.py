"""The ``python`` transform: call user code named in the pipeline.

A function takes a whole batch (the fast path) or one article as a dict, whichever it
declares, with the decorators :func:`per_batch` / :func:`per_article` (also ``etl.per_batch``,
``etl.per_article``) or with the annotation of its first parameter (``dict`` for an article,
``pyarrow.RecordBatch`` for a batch).

* per article: ``fn(article: dict) -> dict | None``; the returned dict's values replace the
  article's (keys it leaves out stay as they were); ``None`` drops the article.
* per batch: ``fn(batch: pa.RecordBatch) -> pa.RecordBatch``; it may change or add columns
  and drop rows, keeping the column ``id`` (and the hidden ``__etl_input``, which select and
  filter keep anyway).

An exception in user code rejects that article, with the traceback's last line. A per-batch
function that raises is called again on halves of the batch until the failing articles are
found, so one bad article does not take its batch down with it.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from etl.plugin import Option, Transform
from etl.schema import char_counts, conform, extend_schema, set_column, word_counts

if TYPE_CHECKING:
    from etl.context import Context

_MODE_ATTR = "__etl_mode__"

#: column types a pipeline may declare for the columns user code adds
TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "int64": pa.int64(),
    "float": pa.float64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "list<string>": pa.list_(pa.string()),
}


def per_article(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``fn(article: dict) -> dict | None`` as called once per article."""
    setattr(fn, _MODE_ATTR, "article")
    return fn


def per_batch(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``fn(batch: pa.RecordBatch) -> pa.RecordBatch`` as called once per batch."""
    setattr(fn, _MODE_ATTR, "batch")
    return fn


def declared_mode(fn: Callable[..., Any]) -> str | None:
    mode = getattr(fn, _MODE_ATTR, None)
    if mode:
        return mode
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if not params:
        return None
    annotation = params[0].annotation
    if isinstance(annotation, str):
        text = annotation.replace(" ", "")
        if text.startswith(("dict", "Mapping", "typing.Mapping", "Dict")):
            return "article"
        if text.endswith(("RecordBatch", "Table")):
            return "batch"
        return None
    if annotation is dict or getattr(annotation, "__origin__", None) is dict:
        return "article"
    if annotation in (pa.RecordBatch, pa.Table):
        return "batch"
    return None


class PythonTransform(Transform):
    """Call user code per batch or per article (function = "pkg.mod:fn" or "file.py:fn")."""

    name = "python"
    options = (
        Option(
            "function",
            "str",
            required=True,
            help='"package.module:function" or "path/to/file.py:function"',
        ),
        Option(
            "mode",
            "str",
            "auto",
            help="auto (as the function declares), article or batch",
            choices=("auto", "article", "batch"),
        ),
        Option(
            "columns",
            "dict",
            {},
            help='columns the function adds, with types: {topic = "string", score = "float"}',
        ),
        Option("kwargs", "dict", {}, help="keyword arguments passed to the function"),
        Option(
            "allow_outside",
            "bool",
            False,
            help="allow a function file outside the pipeline file's folder",
            fingerprint=False,
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only checked here, not imported: building the plugin is what `etl validate` and
        # `--dry-run` do, and they must run no user code. The run imports it (open()).
        self._target = self._check(self.opts.function)
        self._fn: Callable[..., Any] | None = None
        self._mode: str | None = None
        self.added: list[pa.Field] = []
        for name, kind in self.opts.columns.items():
            if kind not in TYPES:
                raise self.error(
                    f"option 'columns': {name} has type {kind!r}",
                    hint=f"types: {', '.join(TYPES)}",
                )
            if name == "id":
                raise self.error("option 'columns': a function may not change 'id'")
            self.added.append(pa.field(name, TYPES[kind]))

    @property
    def fn(self) -> Callable[..., Any]:
        """The user's function, imported on first use."""
        if self._fn is None:
            self._fn = self._load(*self._target)
        return self._fn

    @property
    def mode(self) -> str:
        """``"article"`` or ``"batch"``: the option, or what the function declares."""
        if self._mode is None:
            mode = self.opts.mode if self.opts.mode != "auto" else declared_mode(self.fn)
            if mode is None:
                raise self.error(
                    f"cannot tell whether {self.opts.function} takes an article or a batch",
                    hint="decorate it with @etl.per_article or @etl.per_batch, annotate its "
                    'first parameter (dict or pa.RecordBatch), or set mode = "article" / "batch"',
                )
            self._mode = mode
        return self._mode

    def open(self, run: Any) -> None:
        """Import the function (its mistakes are configuration errors, before any batch)."""
        _ = self.mode

    def fingerprint(self) -> dict[str, Any]:
        """The options and the function's source code: fixing the function changes it."""
        import inspect

        try:
            code = inspect.getsource(self.fn)
        except (OSError, TypeError):  # built in, or defined where its source is gone
            code = getattr(self.fn, "__qualname__", repr(self.fn))
        return {**super().fingerprint(), "code": code}

    def _check(self, spec: str) -> tuple[str, Path | None, str]:
        """``(module or file, its resolved path for a file, function name)``, checked without
        importing anything: the form, the file's existence and its place (inside the
        pipeline's folder unless ``allow_outside``), or the module's top-level package."""
        target, sep, attr = spec.rpartition(":")
        if not sep or not target or not attr:
            raise self.error(
                f"option 'function' is {spec!r}",
                hint='write "package.module:function" or "path/to/file.py:function"',
            )
        if target.endswith(".py") or "/" in target:
            path = (self.base_dir / target).resolve()
            if not path.is_file():
                raise self.error(f"option 'function': no file {path}")
            folder = Path(self.base_dir).resolve()
            if not self.opts.allow_outside and not path.is_relative_to(folder):
                raise self.error(
                    f"option 'function': {path} is outside the pipeline's folder {folder}",
                    hint="move the file next to the pipeline, or set allow_outside = true to "
                    "run code from there",
                )
            return target, path, attr
        top = target.split(".")[0]
        try:
            # the top-level package only: finding "pkg.mod" would import (run) pkg
            found = importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise self.error(
                f"option 'function': module '{target}' failed to import: no module named '{top}'",
                hint="is it installed, or on PYTHONPATH?",
            )
        return target, None, attr

    def _load(self, target: str, path: Path | None, attr: str) -> Callable[..., Any]:
        if path is not None:
            modname = f"etl_user_{path.stem}_{abs(hash(str(path))) % 10**8}"
            module = sys.modules.get(modname)
            if module is None:
                module_spec = importlib.util.spec_from_file_location(modname, path)
                assert module_spec is not None and module_spec.loader is not None
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[modname] = module
                try:
                    module_spec.loader.exec_module(module)
                except Exception as exc:
                    sys.modules.pop(modname, None)
                    raise self.error(
                        f"option 'function': {Path(target).name} failed to import: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
        else:
            try:
                module = importlib.import_module(target)
            except Exception as exc:
                raise self.error(
                    f"option 'function': module '{target}' failed to import: "
                    f"{type(exc).__name__}: {exc}",
                    hint="is it installed, or on PYTHONPATH?",
                ) from exc
        fn = getattr(module, attr, None)
        if not callable(fn):
            raise self.error(f"option 'function': {target} has no function '{attr}'")
        return fn

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        self.schema = extend_schema(schema, self.added)
        return self.schema

    def process(self, batch: pa.RecordBatch, ctx: Context) -> pa.RecordBatch:
        if self.mode == "article":
            out = self._per_article(batch, ctx)
        else:
            out = self._per_batch(batch, ctx)
        if "text" in out.schema.names:  # keep the counts true to whatever the code did
            text = out.column("text")
            if "char_count" in out.schema.names:
                out = set_column(out, "char_count", char_counts(text))
            if "word_count" in out.schema.names:
                out = set_column(out, "word_count", word_counts(text))
        return out

    # per article

    def _per_article(self, batch: pa.RecordBatch, ctx: Context) -> pa.RecordBatch:
        from etl.stream import error_line

        rows = batch.to_pylist()
        keep: list[int] = []
        results: list[dict[str, Any]] = []
        kwargs = self.opts.kwargs
        for index, row in enumerate(rows):
            article_id = row["id"]
            try:
                result = self.fn(dict(row), **kwargs)
            except Exception as exc:
                ctx.reject(
                    "python function error",
                    article_id=article_id,
                    input=row.get("uri") or "",
                    detail=error_line(exc),
                )
                continue
            if result is None:
                continue
            if not isinstance(result, dict):
                ctx.reject(
                    "python function error",
                    article_id=article_id,
                    input=row.get("uri") or "",
                    detail=f"returned {type(result).__name__}, not a dict or None",
                )
                continue
            if result.get("id", article_id) != article_id:
                ctx.reject(
                    "python function changed id",
                    article_id=article_id,
                    input=row.get("uri") or "",
                    detail="the id is the content hash; it may not change",
                )
                continue
            unknown = [k for k in result if k not in row]
            if unknown:
                ctx.reject(
                    "python function returned an unknown column",
                    article_id=article_id,
                    input=row.get("uri") or "",
                    detail=f"'{unknown[0]}' is not a column; declare it in the pipeline: "
                    f'columns = {{{unknown[0]} = "string"}}',
                )
                continue
            row.update(result)
            keep.append(index)
            results.append(row)
        if len(keep) < batch.num_rows:
            ctx.count("python dropped", batch.num_rows - len(keep) - 0)
        kept = batch.take(pa.array(keep, pa.int64()))
        if not results:
            return kept
        arrays = []
        for field in batch.schema:
            values = [r.get(field.name) for r in results]
            try:
                arrays.append(pa.array(values, field.type))
            except (pa.ArrowException, TypeError, ValueError):
                arrays.append(pa.array(values).cast(field.type))
        return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)

    # per batch

    def _per_batch(self, batch: pa.RecordBatch, ctx: Context) -> pa.RecordBatch:
        from etl.stream import INPUT_COLUMN, error_line

        try:
            out = self.fn(batch, **self.opts.kwargs)
        except Exception as exc:
            if batch.num_rows == 1:
                ctx.reject(
                    "python function error",
                    article_id=batch.column("id")[0].as_py(),
                    input=batch.column("uri")[0].as_py() or "",
                    detail=error_line(exc),
                )
                return batch.slice(0, 0)
            half = batch.num_rows // 2
            parts = [
                self._per_batch(batch.slice(0, half), ctx),
                self._per_batch(batch.slice(half), ctx),
            ]
            return pa.concat_batches([p for p in parts])
        if isinstance(out, pa.Table):
            out = out.combine_chunks()
            out = (
                out.to_batches()[0]
                if out.num_rows
                else pa.RecordBatch.from_pylist([], schema=out.schema)
            )
        if not isinstance(out, pa.RecordBatch):
            raise TypeError(
                f"{self.opts.function} returned {type(out).__name__}, not a pyarrow RecordBatch"
            )
        if "id" not in out.schema.names:
            raise ValueError(f"{self.opts.function} returned a batch without the column 'id'")
        if INPUT_COLUMN not in out.schema.names:
            if out.num_rows != batch.num_rows:
                raise ValueError(
                    f"{self.opts.function} dropped rows and the column {INPUT_COLUMN}; filter "
                    "or select the rows of the batch it was given"
                )
            out = out.append_column(pa.field(INPUT_COLUMN, pa.int32()), batch.column(INPUT_COLUMN))
        if (
            out.num_rows == batch.num_rows
            and not pc.all(pc.equal(out.column("id"), batch.column("id"))).as_py()
        ):
            raise ValueError(f"{self.opts.function} changed the column 'id'")
        if out.num_rows < batch.num_rows:
            ctx.count("python dropped", batch.num_rows - out.num_rows)
        unknown = [n for n in out.schema.names if batch.schema.get_field_index(n) < 0]
        if unknown:
            raise ValueError(
                f"{self.opts.function} returned the column '{unknown[0]}', which is not declared; "
                f'add columns = {{{unknown[0]} = "string"}} (its type) to the pipeline'
            )
        return conform(out, batch.schema)


# shipping function files to workers (processes, dask)


def function_files(pipeline: Any) -> dict[str, tuple[str, bytes]]:
    """The function files of the pipeline's ``python`` transforms, to ship to workers:
    ``{"tag.py": ("tag.py", its bytes)}`` by the file as the pipeline names it.

    Read once on the driver, so every worker runs the code the driver checked, and a worker
    needs no view of the pipeline's folder (as for the pipeline's plugin files). A file
    that cannot be read is left out: the worker then says what the driver would have.
    """
    shipped: dict[str, tuple[str, bytes]] = {}
    for section in pipeline.transforms:
        target = _file_target(section)
        if target is None or target in shipped:
            continue
        path = (Path(pipeline.base_dir) / target).resolve()
        try:
            shipped[target] = (path.name, path.read_bytes())
        except OSError:
            continue
    return shipped


def place_function_files(pipeline: Any, placed: dict[str, Path]) -> Any:
    """The pipeline with each shipped function file's ``python`` transform pointing at the
    worker's copy (``placed``: the file as the pipeline names it -> where the copy is)."""
    import dataclasses

    transforms = []
    for section in pipeline.transforms:
        target = _file_target(section)
        if target is not None and target in placed:
            attr = str(section.options["function"]).rpartition(":")[2]
            # the copy lives in the worker's temporary folder, outside the pipeline's: the
            # driver already checked the original's place
            options = {
                **section.options,
                "function": f"{placed[target]}:{attr}",
                "allow_outside": True,
            }
            section = dataclasses.replace(section, options=options)
        transforms.append(section)
    return dataclasses.replace(pipeline, transforms=transforms)


def _file_target(section: Any) -> str | None:
    """The function file a ``python`` transform's section names, or None (a module)."""
    if section.plugin != PythonTransform.name:
        return None
    spec = section.options.get("function")
    if not isinstance(spec, str):
        return None
    target, sep, _ = spec.rpartition(":")
    return target if sep and (target.endswith(".py") or "/" in target) else None
