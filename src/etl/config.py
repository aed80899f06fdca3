"""Pipeline files (TOML): parse, ``${ENV}`` interpolation, overrides, and shape checks.

Plugin options are checked by the plugins themselves (:mod:`etl.plugin`); this module checks
the file's shape and says exactly which section is at fault.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus

from etl.errors import ConfigError, combine
from etl.storage import storage_secrets

#: ``${NAME}``, ``${NAME:-default}`` (``-``: only when unset), ``${NAME:?message}``
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
REDACTED = "***"

RUN_DEFAULTS: dict[str, Any] = {
    "on_error": "quarantine",
    "batch_size": 1024,
    # None: only a run that rejects every record it read fails (docs/pipeline.md)
    "max_reject_ratio": None,
    # None: the run commits once, at the end (docs/reliability.md, "Checkpoints")
    "checkpoint": None,
}
TOP_LEVEL_KEYS = {"plugins", "run", "sources", "transforms", "sink", "executor"}
#: ``[run] checkpoint`` durations: a number and one of these units
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)\s*$")
_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Checkpoint:
    """When a run commits what it has done so far (``[run] checkpoint``).

    Exactly one of ``inputs`` and ``seconds`` is set.

    Args:
        inputs: commit after every this many inputs.
        seconds: commit about this often.
        text: the value as the pipeline wrote it (for manifests and messages).
    """

    inputs: int | None = None
    seconds: float | None = None
    text: str | int = ""


def parse_checkpoint(value: Any, where: str) -> Checkpoint | None:
    """``[run] checkpoint``: a number of inputs (``5000``) or a duration (``"5m"``,
    ``"30s"``, ``"1h"``); None, 0 or false for none.

    Raises:
        ConfigError: any other value.
    """
    if value is None or value is False or (type(value) is int and value == 0):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return Checkpoint(inputs=value, text=value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match and float(match.group(1)) > 0:
        seconds = float(match.group(1)) * _SECONDS[match.group(2)]
        return Checkpoint(seconds=seconds, text=value.strip())
    raise ConfigError(
        f"[run] in {where}: checkpoint is {value!r}; give a number of inputs (5000) or a "
        'duration ("30s", "5m", "1h")',
        hint="a checkpointed run commits what it has done so far at each checkpoint",
    )


@dataclass
class Section:
    """One plugin's table in a pipeline file.

    Args:
        kind: source, transform, sink or executor.
        label: where it is, for messages (``[[sources]] #2 in news.toml``).
        plugin: the plugin name.
        options: the other keys of the table.
    """

    kind: str
    label: str
    plugin: str
    options: dict[str, Any]
    #: the ``--set`` items that set this table's keys: {key: "sink.path=out/x"}
    set_by: dict[str, str] = field(default_factory=dict)


@dataclass
class Pipeline:
    """A pipeline file, parsed and interpolated, not yet bound to plugins."""

    name: str
    base_dir: Path
    path: Path | None
    text: str
    plugins: list[str]
    on_error: str
    batch_size: int
    sources: list[Section]
    transforms: list[Section]
    sink: Section
    executor: Section
    secrets: set[str] = field(default_factory=set)
    max_reject_ratio: float | None = None
    #: when the run commits what it has done so far (None: once, at the end)
    checkpoint: Checkpoint | None = None
    #: mistakes found in the file's shape, for build_plan to report with its plugins'
    problems: list[ConfigError] = field(default_factory=list)

    def redact(self, value: Any) -> Any:
        """``value`` with every string that came from the environment shown as ``***``."""
        if isinstance(value, str):
            for secret in sorted(self.secrets, key=len, reverse=True):
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self.redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        return value

    def sections(self) -> list[Section]:
        return [*self.sources, *self.transforms, self.sink, self.executor]

    def describe(self) -> dict[str, Any]:
        """The resolved pipeline as plain data, secrets redacted (for manifests and logs)."""
        return self.redact(
            {
                "plugins": self.plugins,
                "run": {
                    "on_error": self.on_error,
                    "batch_size": self.batch_size,
                    "max_reject_ratio": self.max_reject_ratio,
                    **({"checkpoint": self.checkpoint.text} if self.checkpoint else {}),
                },
                "sources": [{"plugin": s.plugin, **s.options} for s in self.sources],
                "transforms": [{"plugin": s.plugin, **s.options} for s in self.transforms],
                "sink": {"plugin": self.sink.plugin, **self.sink.options},
                "executor": {"plugin": self.executor.plugin, **self.executor.options},
            }
        )


def load_pipeline(
    path: str | Path, overrides: list[str] | None = None, *, defer: bool = False
) -> Pipeline:
    """Read and check a pipeline file; ``overrides`` are ``--set key=value`` strings.

    ``defer``: keep the mistakes found in the file's shape in ``Pipeline.problems`` where
    the pipeline can still be built, for :func:`etl.run.build_plan` to report them together
    with its plugins' (what ``etl run`` and ``etl validate`` do); else raise them here.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no pipeline file at {path}", hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read pipeline file {path}: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name} is not valid TOML: {exc}") from exc
    return pipeline_from_dict(
        data,
        base_dir=path.resolve().parent,
        name=path.name,
        path=path,
        text=text,
        overrides=overrides,
        defer=defer,
    )


def pipeline_from_dict(
    data: dict[str, Any],
    *,
    base_dir: Path | None = None,
    name: str = "<pipeline>",
    path: Path | None = None,
    text: str = "",
    overrides: list[str] | None = None,
    defer: bool = False,
) -> Pipeline:
    """Check a pipeline given as data (what a TOML file parses to).

    Every mistake in its shape is collected, not only the first; they are raised together
    (or, with ``defer``, kept in ``Pipeline.problems`` when the pipeline can be built).
    """
    data = copy.deepcopy(data)
    set_by: dict[tuple[str, ...], str] = {}
    for item in overrides or []:
        set_by[apply_override(data, item, name)] = item
    problems = _Problems(name, set_by)
    secrets: set[str] = set()
    data = _interpolate(data, secrets, problems, ())
    secrets |= url_credentials(data)
    # credentials written into a section's storage_options (key, secret, token...) are
    # secrets even when written in the file: they must reach no manifest or log
    secrets |= storage_secrets(data)
    for key in sorted(set(data) - TOP_LEVEL_KEYS):
        close = difflib.get_close_matches(key, TOP_LEVEL_KEYS, n=1)
        problems.add(
            f"{name}: unknown top-level key '{key}'; valid: {', '.join(sorted(TOP_LEVEL_KEYS))}",
            hint=f"did you mean '{close[0]}'?"
            if close
            else "plugin options go inside their [[sources]], [[transforms]] or [sink] table",
            path=(key,),
        )
    settings = _run_settings(data.get("run", {}), problems)
    ratio = settings["max_reject_ratio"]
    checkpoint = parse_checkpoint(settings["checkpoint"], name)  # checked: None if it was wrong
    plugins = data.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        problems.add(
            f"{name}: `plugins` must be a list of file paths or module names", path=("plugins",)
        )
        plugins = []
    sources = _tables(data, "sources", "source", problems, required=True)
    transforms = _tables(data, "transforms", "transform", problems, required=False)
    if "sink" not in data:
        problems.add(
            f"{name}: no [sink] table",
            hint='add\n  [sink]\n  plugin = "parquet"\n  path = "out/dataset"',
        )
        sink = Section("sink", f"[sink] in {name}", "", {})
    else:
        sink = _table(data["sink"], "sink", f"[sink] in {name}", problems, ("sink",))
    executor = _table(
        data.get("executor", {"plugin": "local"}),
        "executor",
        f"[executor] in {name}",
        problems,
        ("executor",),
    )
    pipe = Pipeline(
        name=name,
        base_dir=base_dir or Path.cwd(),
        path=path,
        text=text,
        plugins=plugins,
        on_error=settings["on_error"],
        batch_size=settings["batch_size"],
        sources=sources,
        transforms=transforms,
        sink=sink,
        executor=executor,
        secrets=secrets,
        problems=problems.errors,
        max_reject_ratio=None if ratio is None else float(ratio),
        checkpoint=checkpoint,
    )
    broken = not sources or any(not s.plugin for s in (sink, executor))
    if problems.errors and (broken or not defer):
        raise combine(problems.errors)  # type: ignore[misc]
    return pipe


class _Problems:
    """The mistakes found in a pipeline, each blamed on the ``--set`` that made it if one did."""

    def __init__(self, name: str, set_by: dict[tuple[str, ...], str]) -> None:
        self.name = name
        self.set_by = set_by
        self.errors: list[ConfigError] = []

    def add(self, message: str, *, hint: str | None = None, path: tuple[str, ...] = ()) -> None:
        item = self.set_by.get(path) if path else None
        if item is not None:
            message = f"--set {item}: {message.replace(f' in {self.name}', '')}"
        self.errors.append(ConfigError(message, hint=hint, key=path[-1] if path else None))

    def overrides(self, path: tuple[str, ...]) -> dict[str, str]:
        """The ``--set`` items that set keys of the table at ``path``: {key: item}."""
        n = len(path)
        return {p[n]: item for p, item in self.set_by.items() if len(p) == n + 1 and p[:n] == path}


def _run_settings(run: Any, problems: _Problems) -> dict[str, Any]:
    """The ``[run]`` table with its defaults; a bad value is a problem and the default."""
    name = problems.name
    if not isinstance(run, dict):
        problems.add(f"{name}: [run] must be a table", path=("run",))
        return dict(RUN_DEFAULTS)
    settings = dict(RUN_DEFAULTS)
    for key, value in run.items():
        if key not in RUN_DEFAULTS:
            close = difflib.get_close_matches(key, RUN_DEFAULTS, n=1)
            problems.add(
                f"[run] in {name}: unknown key '{key}'; valid: {', '.join(RUN_DEFAULTS)}",
                hint=f"did you mean '{close[0]}'?" if close else None,
                path=("run", key),
            )
        elif key == "on_error" and value not in ("quarantine", "fail"):
            problems.add(
                f"[run] in {name}: on_error is {value!r}; choose 'quarantine' or 'fail'",
                path=("run", key),
            )
        elif key == "batch_size" and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            problems.add(
                f"[run] in {name}: batch_size must be a positive integer, got {value!r}",
                path=("run", key),
            )
        elif (
            key == "max_reject_ratio"
            and value is not None
            and (
                not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1
            )
        ):
            problems.add(
                f"[run] in {name}: max_reject_ratio must be a number from 0 to 1, got {value!r}",
                hint="e.g. max_reject_ratio = 0.05 (fail when more than 5% of records are rejected)",
                path=("run", key),
            )
        elif key == "checkpoint" and not _checkpoint_ok(value, name, problems):
            continue
        else:
            settings[key] = value
    return settings


def _checkpoint_ok(value: Any, name: str, problems: _Problems) -> bool:
    """Whether ``[run] checkpoint`` is valid; a problem when it is not."""
    try:
        parse_checkpoint(value, name)
    except ConfigError as exc:
        problems.add(exc.message, hint=exc.hint, path=("run", "checkpoint"))
        return False
    return True


def _tables(
    data: dict, key: str, kind: str, problems: _Problems, *, required: bool
) -> list[Section]:
    name = problems.name
    tables = data.get(key, [])
    if isinstance(tables, dict):
        problems.add(f"{name}: use [[{key}]] (an array of tables), not [{key}]", path=(key,))
        return []
    if not isinstance(tables, list):
        problems.add(f"{name}: `{key}` must be an array of tables ([[{key}]])", path=(key,))
        return []
    if required and not tables:
        problems.add(
            f"{name}: no [[{key}]] table",
            hint=f'add\n  [[{key}]]\n  plugin = "text"\n  paths = ["articles/*.txt"]',
        )
    return [
        _table(t, kind, f"[[{key}]] #{i} in {name}", problems, (key, str(i)))
        for i, t in enumerate(tables, 1)
    ]


def _table(
    table: Any, kind: str, label: str, problems: _Problems, path: tuple[str, ...]
) -> Section:
    """One plugin's table; with ``plugin = ""`` when it is too broken to build (a problem
    says why)."""
    if not isinstance(table, dict):
        problems.add(f"{label}: must be a table of options", path=path)
        return Section(kind=kind, label=label, plugin="", options={})
    options = dict(table)
    plugin = options.pop("plugin", None)
    if not isinstance(plugin, str) or not plugin:
        problems.add(
            f'{label}: missing `plugin = "..."` (which {kind} plugin to use)',
            path=(*path, "plugin"),
        )
        plugin = ""
    return Section(
        kind=kind, label=label, plugin=plugin, options=options, set_by=problems.overrides(path)
    )


def _interpolate(value: Any, secrets: set[str], problems: _Problems, path: tuple) -> Any:
    """``${NAME}``, ``${NAME:-default}`` and ``${NAME:?message}`` in every string.

    ``path`` is where ``value`` is: keys, and entry numbers of lists (from 1, as ``--set``
    numbers ``[[sources]]``).
    """
    if isinstance(value, str):
        trail = ".".join(str(p) for p in path)

        def substitute(match: re.Match[str]) -> str:
            var, op, arg = match.group(1), match.group(2), match.group(3) or ""
            found = os.environ.get(var)
            if found is None or (found == "" and op in (":-", ":?")):
                if op in (":-", "-"):
                    return arg  # written in the file: not a secret
                problems.add(
                    f"{problems.name}: `{trail}` uses ${{{var}}}, but the environment variable "
                    f"{var} is not set" + (f": {arg}" if op in (":?", "?") and arg else ""),
                    hint=f"export {var}=... before running, or write the value in the file",
                    path=tuple(str(p) for p in path),
                )
                return match.group(0)
            if found:
                secrets.add(found)
            return found

        return _ENV.sub(substitute, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, secrets, problems, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, secrets, problems, (*path, i)) for i, v in enumerate(value, 1)]
    return value


#: a URL in an option's value
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")
#: query parameters that carry a credential (api_key, access_token, X-Amz-Signature...)
_CREDENTIAL = re.compile(r"key|token|secret|pass|pwd|sig|auth|credential|session|jwt", re.I)
#: shorter values are not taken for credentials (a 1-character "secret" would be
#: replaced everywhere, run ids included); a user name alone counts from this length
MIN_SECRET, MIN_TOKEN_USER = 4, 8


def url_credentials(value: Any) -> set[str]:
    """The credentials written into URLs anywhere in ``value`` (a pipeline's data): the
    password of ``user:pass@``, a user name that stands alone (``https://TOKEN@host``) and
    the values of query parameters named like a key, token, secret, password or signature.
    Each as written and percent-decoded. They are redacted like values from ``${ENV}``."""
    found: set[str] = set()
    if isinstance(value, dict):
        for item in value.values():
            found |= url_credentials(item)
    elif isinstance(value, list):
        for item in value:
            found |= url_credentials(item)
    elif isinstance(value, str) and "://" in value:
        for match in _URL.finditer(value):
            _, _, rest = match.group().partition("://")
            authority, _, tail = rest.partition("/")
            userinfo, at, _ = authority.rpartition("@")
            if at:
                user, colon, password = userinfo.partition(":")
                if colon and len(password) >= MIN_SECRET:
                    found |= {password, unquote(password)}
                elif not colon and len(user) >= MIN_TOKEN_USER:
                    found |= {user, unquote(user)}
            query = tail.partition("?")[2].partition("#")[0] if "?" in tail else ""
            if not query and "?" in authority:
                query = authority.partition("?")[2]
            for pair in query.split("&"):
                name, eq, secret = pair.partition("=")
                if eq and _CREDENTIAL.search(unquote(name)) and len(secret) >= MIN_SECRET:
                    found |= {secret, unquote_plus(secret)}
    return {v for v in found if len(v) >= MIN_SECRET}


def parse_value(raw: str) -> Any:
    """A ``--set`` value: TOML syntax when it parses (numbers, booleans, lists), else a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_override(data: dict[str, Any], item: str, name: str = "") -> tuple[str, ...]:
    """Apply ``section.key=value`` (``sink.path=out``, ``sources.1.paths=[...]``,
    ``run.batch_size=10``); return the key's path (``("sources", "1", "paths")``)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set sink.path=out/x")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    value = parse_value(raw)
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            if not part.isdigit() or not 1 <= int(part) <= len(node):
                raise ConfigError(
                    f"--set {key}: '{part}' must be a number from 1 to {len(node)} "
                    f"({'.'.join(parts[:i])} has {len(node)} entries)"
                )
            node = node[int(part) - 1]
            parts[i] = str(int(part))
        else:
            if part in ("sources", "transforms") and part not in node:
                raise ConfigError(f"--set {key}: {name} has no [[{part}]]")
            node = node.setdefault(part, {})
    if not isinstance(node, dict):
        raise ConfigError(
            f"--set {key}: cannot set a key inside a list; name the entry, e.g. sources.1.paths"
        )
    node[parts[-1]] = value
    return tuple(parts)
