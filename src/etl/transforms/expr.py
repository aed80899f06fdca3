"""A restricted expression language over article columns, evaluated with pyarrow.compute.

Python's own parser (:mod:`ast`) reads the expression; only a small set of node kinds is
accepted, and each maps onto one ``pyarrow.compute`` call, so nothing is ``eval``-ed and a
whole batch is evaluated at once::

    word_count >= 50 and language == 'en'
    language in ('en', 'de') and not (title is None)
    published_at >= '2024-01-01' or contains(lower(title), 'election')

SQL's single ``=`` and ``<>`` are accepted for ``==`` and ``!=``, and ``AND``/``OR``/``NOT``/
``NULL`` in capitals as well. Comparisons with null are null, and a filter drops rows whose
condition is null (as SQL's WHERE does).
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


class ExpressionError(ValueError):
    """The expression uses something the language does not have."""


def _date(x: Any) -> Any:
    return pc.cast(x, pa.date32())


# name -> (arity, builder); each builder takes arrays/scalars and returns an array
FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "lower": (1, pc.utf8_lower),
    "upper": (1, pc.utf8_upper),
    "length": (1, pc.utf8_length),
    "strip": (1, pc.utf8_trim_whitespace),
    "contains": (2, lambda x, s: pc.match_substring(x, _py(s))),
    "icontains": (2, lambda x, s: pc.match_substring(x, _py(s), ignore_case=True)),
    "matches": (2, lambda x, s: pc.match_substring_regex(x, _py(s))),
    "startswith": (2, lambda x, s: pc.starts_with(x, _py(s))),
    "endswith": (2, lambda x, s: pc.ends_with(x, _py(s))),
    "is_null": (1, pc.is_null),
    "coalesce": (2, pc.coalesce),
    "date": (1, _date),
    "year": (1, pc.year),
    "month": (1, pc.month),
    "day": (1, pc.day),
    "list_length": (1, pc.list_value_length),
    "host": (
        1,
        lambda x: pc.struct_field(
            pc.extract_regex(x, r"^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^@/?#]*@)?(?P<host>[^:/?#]+)"), 0
        ),
    ),
    "metadata": (2, lambda m, k: _map_get(m, _py(k))),
}

_COMPARE = {
    ast.Eq: pc.equal,
    ast.NotEq: pc.not_equal,
    ast.Lt: pc.less,
    ast.LtE: pc.less_equal,
    ast.Gt: pc.greater,
    ast.GtE: pc.greater_equal,
}
_ARITH = {
    ast.Add: pc.add,
    ast.Sub: pc.subtract,
    ast.Mult: pc.multiply,
    ast.Div: lambda a, b: pc.divide(pc.cast(a, pa.float64()), pc.cast(b, pa.float64())),
    ast.Mod: None,
}
_SQL_WORDS = {
    "AND": "and",
    "OR": "or",
    "NOT": "not",
    "NULL": "None",
    "null": "None",
    "TRUE": "True",
    "FALSE": "False",
    "true": "True",
    "false": "False",
    "IN": "in",
    "IS": "is",
}


def _py(value: Any) -> Any:
    return value.as_py() if isinstance(value, pa.Scalar) else value


def _map_get(m: Any, key: str) -> Any:
    # the value of `key` in a map<string,string> column (null where absent)
    values = pc.map_lookup(m, pa.scalar(key), "first")
    return values


def to_python_syntax(text: str) -> str:
    """SQL-ish spellings (``=``, ``<>``, ``AND``, ``NULL``) as Python's, by tokens."""
    out = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text.strip()).readline))
    except (tokenize.TokenError, SyntaxError) as exc:
        raise ExpressionError(f"cannot read the expression: {exc}") from exc
    for tok in tokens:
        string = tok.string
        if tok.type == tokenize.OP and string == "=":
            string = "=="
        elif tok.type == tokenize.OP and string == "<>":
            string = "!="
        elif tok.type == tokenize.NAME and string in _SQL_WORDS:
            string = _SQL_WORDS[string]
        out.append((tok.type, string))
    return tokenize.untokenize(out).strip()


class Compiled:
    """A parsed expression; :meth:`evaluate` runs it on a batch or table."""

    def __init__(self, text: str) -> None:
        self.text = text
        source = to_python_syntax(text)
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"cannot read the expression: {exc.msg}") from exc
        self.tree = tree.body
        self.columns: set[str] = set()
        self._check(self.tree)

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            self.columns.add(node.id)
            return
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                raise ExpressionError(
                    f"unknown function '{name}'; known: {', '.join(sorted(FUNCTIONS))}"
                )
            arity = FUNCTIONS[node.func.id][0]
            if len(node.args) != arity or node.keywords:
                raise ExpressionError(f"{node.func.id}() takes {arity} argument(s)")
            for arg in node.args:
                self._check(arg)
            return
        allowed = (
            ast.BoolOp,
            ast.UnaryOp,
            ast.Compare,
            ast.BinOp,
            ast.Constant,
            ast.Tuple,
            ast.List,
        )
        if not isinstance(node, allowed):
            raise ExpressionError(f"'{ast.unparse(node)}' is not supported in an expression")
        if isinstance(node, ast.BinOp) and _ARITH.get(type(node.op)) is None:
            raise ExpressionError(f"operator in '{ast.unparse(node)}' is not supported")
        for child in ast.iter_child_nodes(node):
            if isinstance(
                child, ast.expr_context | ast.boolop | ast.cmpop | ast.operator | ast.unaryop
            ):
                continue
            self._check(child)

    def evaluate(self, data: pa.RecordBatch | pa.Table) -> Any:
        """The expression's value for every row of ``data`` (an array, or a scalar if constant)."""
        return self._eval(self.tree, data)

    def _eval(self, node: ast.AST, data: Any) -> Any:
        if isinstance(node, ast.Name):
            if node.id not in data.schema.names:
                raise ExpressionError(
                    f"no column '{node.id}'; columns: {', '.join(n for n in data.schema.names if not n.startswith('__'))}"
                )
            return data.column(node.id)
        if isinstance(node, ast.Constant):
            return pa.scalar(node.value)
        if isinstance(node, ast.BoolOp):
            fn = pc.and_kleene if isinstance(node.op, ast.And) else pc.or_kleene
            result = self._eval(node.values[0], data)
            for value in node.values[1:]:
                result = fn(result, self._eval(value, data))
            return result
        if isinstance(node, ast.UnaryOp):
            value = self._eval(node.operand, data)
            if isinstance(node.op, ast.Not):
                return pc.invert(value)
            if isinstance(node.op, ast.USub):
                return pc.negate(value)
            raise ExpressionError(f"'{ast.unparse(node)}' is not supported")
        if isinstance(node, ast.BinOp):
            return _ARITH[type(node.op)](self._eval(node.left, data), self._eval(node.right, data))
        if isinstance(node, ast.Call):
            fn = FUNCTIONS[node.func.id][1]
            return fn(*(self._eval(a, data) for a in node.args))
        if isinstance(node, ast.Compare):
            result = None
            left = node.left
            for op, right in zip(node.ops, node.comparators, strict=True):
                part = self._compare(op, left, right, data)
                result = part if result is None else pc.and_kleene(result, part)
                left = right
            return result
        raise ExpressionError(f"'{ast.unparse(node)}' is not supported")

    def _compare(self, op: ast.cmpop, left: ast.AST, right: ast.AST, data: Any) -> Any:
        if isinstance(op, ast.Is | ast.IsNot):
            if not (isinstance(right, ast.Constant) and right.value is None):
                raise ExpressionError("`is` compares with None (null) only")
            value = self._eval(left, data)
            return pc.is_null(value) if isinstance(op, ast.Is) else pc.is_valid(value)
        if isinstance(op, ast.In | ast.NotIn):
            if isinstance(right, ast.Constant):  # ('en') is one value, not a tuple
                right = ast.Tuple(elts=[right], ctx=ast.Load())
            if not isinstance(right, ast.Tuple | ast.List) or not all(
                isinstance(e, ast.Constant) for e in right.elts
            ):
                raise ExpressionError("`in` takes a list of constants: x in ('a', 'b')")
            value = self._eval(left, data)
            options = pa.array([e.value for e in right.elts])
            if isinstance(value, pa.ChunkedArray | pa.Array) and options.type != value.type:
                options = options.cast(value.type)
            found = pc.is_in(value, value_set=options)
            found = pc.if_else(pc.is_null(value), pa.scalar(None, pa.bool_()), found)
            return pc.invert(found) if isinstance(op, ast.NotIn) else found
        fn = _COMPARE.get(type(op))
        if fn is None:
            raise ExpressionError(f"comparison '{ast.unparse(op)}' is not supported")
        a, b = self._eval(left, data), self._eval(right, data)
        a, b = _align(a, b), _align(b, a)
        return fn(a, b)


def _align(value: Any, other: Any) -> Any:
    """A string constant compared with a timestamp or date column becomes that type."""
    if isinstance(value, pa.StringScalar) and value.is_valid:
        other_type = getattr(other, "type", None)
        if other_type is not None and pa.types.is_timestamp(other_type):
            parsed = datetime.fromisoformat(value.as_py().replace("Z", "+00:00"))
            if parsed.tzinfo is None and other_type.tz:
                parsed = parsed.replace(tzinfo=UTC)
            return pa.scalar(parsed, other_type)
        if other_type is not None and pa.types.is_date(other_type):
            return pa.scalar(datetime.fromisoformat(value.as_py()).date(), other_type)
    return value


def compile_expression(text: str) -> Compiled:
    return Compiled(text)


def result_type(compiled: Compiled, schema: pa.Schema) -> pa.DataType:
    """The type the expression gives on ``schema`` (raises ExpressionError if it cannot run)."""
    empty = schema.empty_table()
    try:
        value = compiled.evaluate(empty)
    except ExpressionError:
        raise
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise ExpressionError(str(exc).splitlines()[0]) from exc
    return value.type
