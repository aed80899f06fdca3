"""Typed plugin options: declared with :class:`Option`, checked when a plugin is built.

A misspelt or mistyped option, a missing required one, or a value outside its ``choices`` or
bounds is a :class:`~etl.errors.ConfigError` that names the plugin and its section, before
anything runs.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.errors import ConfigError, PluginError

if TYPE_CHECKING:
    from etl.plugins.base import Plugin

_MISSING = object()

# Types an option may declare; "path" and "paths" are strings resolved against the
# pipeline file's folder (URLs are left alone).
_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
    "path": (str,),
    "paths": (list, str),
    "any": (object,),
}


@dataclass(frozen=True)
class Option:
    """One typed option of a plugin.

    Args:
        name: the key in the pipeline file.
        type: one of ``str int float bool list dict path paths any``. ``paths`` accepts one
            string or a list, and resolves relative paths against the pipeline file's folder.
        default: the value when the key is absent; omit it and set ``required=True`` for a
            mandatory option.
        help: one line shown by ``etl plugins``.
        required: the pipeline must set it.
        choices: the allowed values, if only some are.
        min: the smallest value allowed (``int`` and ``float`` options); a value below it is
            a configuration error that names the plugin, its section and the bound.
        max: the largest value allowed.
        min_exclusive: the value must be more than ``min``, not equal to it (``timeout``
            above 0).
        max_exclusive: the value must be less than ``max``.
        fingerprint: part of the pipeline's fingerprint (a change makes ``etl run`` say the
            pipeline changed and offer ``--reprocess``). False for options that only choose
            or fetch the inputs (``paths``, ``include``, ``timeout``): changing them does not
            change the rows an input gives.
    """

    name: str
    type: str = "str"
    default: Any = None
    help: str = ""
    required: bool = False
    choices: tuple[Any, ...] | None = None
    min: int | float | None = None
    max: int | float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    fingerprint: bool = True

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise PluginError(f"option '{self.name}': unknown type '{self.type}'")
        if self.min is None and self.max is None:
            return
        if self.type not in ("int", "float"):
            raise PluginError(
                f"option '{self.name}': min and max apply to int and float options, not {self.type}"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PluginError(f"option '{self.name}': min {self.min} is more than max {self.max}")
        if self.default is not None and self.out_of_bounds(self.default):
            raise PluginError(
                f"option '{self.name}': the default {self.default!r} breaks its own bound: "
                f"it must be {self.bounds()}"
            )

    def bounds(self) -> str | None:
        """The bounds in words (``at least 1``, ``between 2 and 1024``), or None."""
        low = high = None
        if self.min is not None:
            low = f"{'more than' if self.min_exclusive else 'at least'} {_number(self.min)}"
        if self.max is not None:
            high = f"{'less than' if self.max_exclusive else 'at most'} {_number(self.max)}"
        if low and high:
            if not self.min_exclusive and not self.max_exclusive:
                return f"between {_number(self.min)} and {_number(self.max)}"
            return f"{low} and {high}"
        return low or high

    def out_of_bounds(self, value: Any) -> bool:
        """``value`` (a number) breaks ``min`` or ``max``."""
        if self.min is not None and (
            value < self.min or (self.min_exclusive and value == self.min)
        ):
            return True
        return self.max is not None and (
            value > self.max or (self.max_exclusive and value == self.max)
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "required": self.required,
            "choices": list(self.choices) if self.choices else None,
            "min": self.min,
            "max": self.max,
            "bounds": self.bounds(),
            "help": self.help,
        }


def _number(value: int | float) -> str:
    """``1`` for 1 and 1.0, ``0.5`` for 0.5: bounds read as people write them."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def resolve_path(value: str, base_dir: Path) -> str:
    """Resolve a relative local path against ``base_dir``; URLs and absolute paths stay."""
    if "://" in value:
        return value
    expanded = os.path.expanduser(value)
    if os.path.isabs(expanded):
        return os.path.normpath(expanded)
    return os.path.normpath(base_dir / expanded)


def check_option_declarations(cls: type[Plugin]) -> None:
    """Refuse a class that declares one option twice (it would silently shadow)."""
    seen: set[str] = set()
    for opt in cls.options:
        if opt.name in seen:
            raise PluginError(
                f"plugin '{cls.name}' ({cls.__module__}.{cls.__qualname__}) declares option "
                f"'{opt.name}' twice",
                hint="give each Option in `options` a distinct name",
            )
        seen.add(opt.name)


def validate_options(
    cls: type[Plugin], config: Mapping[str, Any], section: str, base_dir: Path
) -> dict[str, Any]:
    """Check ``config`` against ``cls.options``; return every option's value."""
    from etl.errors import combine

    where = f"plugin '{cls.name}' ({section})"
    declared = {opt.name: opt for opt in cls.options}
    problems: list[ConfigError] = []
    for key in config:
        if key in declared:
            continue
        close = difflib.get_close_matches(key, declared, n=1)
        valid = ", ".join(declared) or "none"
        hint = f"did you mean '{close[0]}'?" if close else None
        problems.append(
            ConfigError(f"{where}: unknown option '{key}'; valid: {valid}", hint=hint, key=key)
        )
    values: dict[str, Any] = {}
    for opt in cls.options:
        try:
            _check_option(opt, config, values, where, base_dir)
        except ConfigError as exc:
            exc.key = opt.name
            problems.append(exc)
    error = combine(problems)
    if error is not None:
        raise error
    return values


def _check_option(
    opt: Option, config: Mapping[str, Any], values: dict[str, Any], where: str, base_dir: Path
) -> None:
    """Check one option's value and put it (or its default) in ``values``."""
    if opt.name not in config:
        if opt.required:
            raise ConfigError(
                f"{where}: missing required option '{opt.name}'",
                hint=f"add `{opt.name} = ...` ({opt.help})" if opt.help else None,
            )
        values[opt.name] = opt.default
        return
    value = config[opt.name]
    allowed = _TYPES[opt.type]
    if isinstance(value, bool) and bool not in allowed and opt.type != "any":
        allowed = ()
    if not isinstance(value, allowed):
        raise ConfigError(
            f"{where}: option '{opt.name}' must be {opt.type}, got {type(value).__name__} {value!r}"
        )
    if opt.choices is not None and value not in opt.choices:
        choices = ", ".join(repr(c) for c in opt.choices)
        raise ConfigError(f"{where}: option '{opt.name}' is {value!r}; choose one of {choices}")
    if (opt.min is not None or opt.max is not None) and opt.out_of_bounds(value):
        raise ConfigError(
            f"{where}: option '{opt.name}' must be {opt.bounds()}, got {value!r}",
            hint=f"leave it out for the default, {opt.default!r}"
            if opt.default is not None and not opt.required
            else None,
        )
    if opt.type == "float":
        value = float(value)
    elif opt.type == "path":
        value = resolve_path(value, base_dir)
    elif opt.type == "paths":
        items = [value] if isinstance(value, str) else value
        if not all(isinstance(v, str) for v in items):
            raise ConfigError(f"{where}: option '{opt.name}' must be a list of strings")
        value = [resolve_path(v, base_dir) for v in items]
    values[opt.name] = value
