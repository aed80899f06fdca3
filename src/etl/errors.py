"""Errors that reach the user.

Every error a user can cause says who (plugin), where (pipeline section) and what to do.
`ConfigError` is the user's mistake (exit code 2); `RunError` is a run that failed (exit 1).
"""

from __future__ import annotations


class EtlError(Exception):
    """Base class of every error this project raises on purpose.

    Args:
        message: what went wrong, in one sentence.
        hint: what the user can do about it, if we know.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(EtlError):
    """A mistake in a pipeline file, an option or a command line: exit code 2.

    Args:
        message: what went wrong, naming the file, the table and the key.
        hint: what the user can do about it.
        key: the option or key at fault, where there is one (so that a mistake that came
            from ``--set`` can be blamed on it).
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None, key: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.key = key


class ConfigErrors(ConfigError):
    """Several mistakes found in one look, reported together (the first :attr:`SHOWN`).

    Args:
        errors: the mistakes, in the order of the file (nested ConfigErrors are flattened).
    """

    SHOWN = 20

    def __init__(self, errors: list[ConfigError]) -> None:
        flat: list[ConfigError] = []
        for error in errors:
            flat.extend(error.errors if isinstance(error, ConfigErrors) else [error])
        self.errors = flat
        super().__init__(f"{len(flat)} problems")

    def __str__(self) -> str:
        lines = [f"{len(self.errors)} problems:"]
        for number, error in enumerate(self.errors[: self.SHOWN], 1):
            lines.append(f"  {number}. {error.message}")
            if error.hint:
                lines.append("     hint: " + error.hint.replace("\n", "\n     "))
        if len(self.errors) > self.SHOWN:
            lines.append(f"  ... and {len(self.errors) - self.SHOWN} more")
        return "\n".join(lines)


def combine(errors: list[ConfigError]) -> ConfigError | None:
    """One error for ``errors``: None for none, the error itself for one, else all of them."""
    if not errors:
        return None
    return errors[0] if len(errors) == 1 else ConfigErrors(errors)


class PluginError(EtlError):
    """A plugin could not be found, imported or built, or broke its contract."""

    exit_code = 2


class RunError(EtlError):
    """The run started and failed (for example with ``on_error = "fail"``): exit code 1."""

    exit_code = 1


class MissingDependency(PluginError):
    """A plugin needs a package that is not installed."""

    def __init__(self, plugin: str, package: str, install: str) -> None:
        super().__init__(
            f"plugin '{plugin}' needs the package {package}", hint=f"pip install {install}"
        )


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM (kill, systemd, Kubernetes, CI) stopped a run; ``message`` says what
    became of its commits.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C stops on SIGTERM alike.

    Args:
        message: what the command prints (``interrupted; nothing was committed``).
        signal_name: ``"SIGINT"`` or ``"SIGTERM"``.
    """

    def __init__(self, message: str = "interrupted", signal_name: str = "SIGINT") -> None:
        super().__init__(message)
        self.message = message
        self.signal_name = signal_name

    @property
    def exit_code(self) -> int:
        """128 plus the signal's number, as a shell reports a process the signal ended."""
        import signal

        return 128 + int(signal.Signals[self.signal_name])


class InputError(Exception):
    """An input could not be read; ``reason`` is the reject reason (a source turns it into
    a reject of the input, it is not an error of the run)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
