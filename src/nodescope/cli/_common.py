"""Shared helpers for CLI commands: the rich console and uniform error exits.

Errors are mapped in one place, :class:`NodescopeGroup`, the command class of the root ``nodescope`` app: every
sub-command (and its option parsing) runs inside its :meth:`~NodescopeGroup.invoke`, so a
:class:`~nodescope.errors.NodescopeError` raised anywhere below -- by the library or by a command -- becomes one
``error: <message>`` line on stderr and exit code 2. Any other exception is a bug: one ``error: internal error
...`` line with a hint to rerun with ``--verbose``, which prints the traceback too; exit code 1. Commands therefore
catch nothing themselves; to add command-line context (the flag the user typed) they raise a family error, e.g.
``ConfigError(f"--lr: {exc}")``.

Output levels (the root options ``nodescope --quiet ...`` / ``nodescope --verbose ...``, see ``docs/cli.md``) are
applied here too: every command runs inside a :class:`nodescope._logs.LogCapture` (third-party banners and warnings
only with ``--verbose``; ``train``/``pretrain`` write them to their log file), ``--quiet`` silences :data:`console`
(summaries, progress) and leaves errors and the final output paths (:func:`print_paths`).
"""

from __future__ import annotations

import logging
import math
import traceback
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import typer
import typer.exceptions
from rich.console import Console
from typer.core import TyperGroup

from nodescope._logs import LogCapture
from nodescope._progress import Progress
from nodescope.errors import ConfigError, NodescopeError

__all__ = ["EXIT_BUG", "EXIT_OK", "EXIT_USER_ERROR", "NodescopeGroup", "OutputLevel", "choice", "console",
           "err_console", "fail", "in_range", "log_capture", "output", "print_paths", "progress", "report_bug",
           "report_error"]

#: Exit code of a command that did its job.
EXIT_OK = 0
#: Exit code of every error caused by the user's input (files, values, options), as for click's usage errors.
EXIT_USER_ERROR = 2
#: Exit code of an unexpected exception (a bug in nodescope).
EXIT_BUG = 1

console = Console()
err_console = Console(stderr=True)


@dataclass
class OutputLevel:
    """What the running command shows: ``quiet`` (errors and final paths), ``verbose`` (third-party output too)."""

    quiet: bool = False
    verbose: bool = False


#: The output level of the running command (set by :class:`NodescopeGroup` from the root options).
output = OutputLevel()


def print_paths(*paths: str | Path | None) -> None:
    """With ``--quiet``: each final output path on its own line on stdout (what a script reads); otherwise nothing,
    the command's summary names them."""
    if output.quiet:
        for p in paths:
            if p is not None:
                typer.echo(str(p))


def progress() -> Progress:
    """The command's progress display: rich bars on a terminal, plain lines otherwise, nothing with ``--quiet``."""
    return Progress(None if output.quiet else console)


def _echo(record: logging.LogRecord) -> None:
    """A log record or warning on stderr: ``warning: <message>`` (INFO records: the message alone)."""
    if record.levelno >= logging.WARNING:
        colour = "red" if record.levelno >= logging.ERROR else "yellow"
        err_console.print(f"[{colour}]{record.levelname.lower()}:[/] ", end="", highlight=False)
    err_console.print(record.getMessage(), markup=False, highlight=False, soft_wrap=True)


@contextmanager
def log_capture(levels: Mapping[str, int] | None = None) -> Any:
    """A :class:`~nodescope._logs.LogCapture` at the running command's output level.

    Parameters
    ----------
    levels : mapping of str to int, optional
        Console levels of nodescope loggers besides WARNING (``{"nodescope.meta": logging.INFO}``); ignored with
        ``--quiet``.
    """
    with LogCapture(verbose=output.verbose, console_level=logging.ERROR if output.quiet else logging.WARNING,
                    levels=None if output.quiet else levels, echo=_echo) as cap:
        yield cap


def fail(message: str, code: int = EXIT_USER_ERROR) -> NoReturn:
    """Print ``message`` as an error on stderr and exit with ``code``.

    Parameters
    ----------
    message : str
        What went wrong; the first line is printed after ``error:`` and any further lines follow unchanged.
    code : int, default 2
        The exit code.

    Raises
    ------
    typer.Exit
        Always, with ``code``.
    """
    _print_error(message)
    raise typer.Exit(code)


def _print_error(message: str) -> None:
    """``error: <message>`` on stderr; the message is printed verbatim (no rich markup: ``[...]`` stays)."""
    err_console.print("[bold red]error:[/] ", end="", highlight=False)
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)


def report_bug(exc: BaseException) -> NoReturn:
    """Report an unexpected exception (a bug): one ``error: internal error ...`` line, exit code 1.

    With ``--verbose`` the traceback is printed first.

    Raises
    ------
    typer.Exit
        Always, with :data:`EXIT_BUG`.
    """
    if output.verbose:
        err_console.print("".join(traceback.format_exception(exc)), markup=False, highlight=False, end="")
        hint = "please report it with the traceback above"
    else:
        hint = "rerun with --verbose for the traceback"
    text = str(exc).strip().splitlines()
    _print_error(f"internal error ({type(exc).__name__}{': ' + text[0] if text else ''}); this is a bug in "
                 f"nodescope: {hint}")
    raise typer.Exit(EXIT_BUG) from None


def report_error(exc: NodescopeError) -> NoReturn:
    """Report a user error as ``error: <message>`` on stderr and exit with code 2.

    Parameters
    ----------
    exc : NodescopeError
        The error; its message starts with a one-line summary (a multi-line message, such as the problem list of a
        manifest, keeps its further lines).

    Raises
    ------
    typer.Exit
        Always, with :data:`EXIT_USER_ERROR`.
    """
    _print_error(str(exc).strip() or type(exc).__name__)
    raise typer.Exit(EXIT_USER_ERROR) from None


def _cli_exceptions() -> tuple[type[BaseException], ...]:
    """Exceptions that carry their own exit code: typer's (its vendored click's) and click's (older typer)."""
    found: list[type[BaseException]] = [typer.exceptions.Exit, typer.exceptions.Abort]
    found += [getattr(typer.exceptions, "TyperException", typer.exceptions.Exit)]
    try:
        import click
    except ImportError:  # pragma: no cover - typer >= 0.23 vendors click
        return tuple(found)
    return (*found, click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort)


_CLI_EXCEPTIONS = _cli_exceptions()


class NodescopeGroup(TyperGroup):
    """The root command group: output level, log capture and the exit codes of every command.

    Sub-commands are parsed and run inside :meth:`invoke`, so errors raised while converting or validating an
    option value are mapped too: a :class:`~nodescope.errors.NodescopeError` is ``error: <message>``, exit 2;
    click's own usage errors keep theirs (2); any other exception is a bug (:func:`report_bug`, exit 1).
    """

    def invoke(self, ctx: Any) -> Any:
        """Run the sub-command at the output level of the root options (``--quiet``, ``--verbose``)."""
        output.quiet, output.verbose = bool(ctx.params.get("quiet")), bool(ctx.params.get("verbose"))
        console.quiet = output.quiet
        try:
            if output.quiet and output.verbose:
                raise ConfigError("--quiet and --verbose exclude each other; give one of them")
            with log_capture():
                return super().invoke(ctx)
        except NodescopeError as exc:
            report_error(exc)
        except _CLI_EXCEPTIONS:  # usage errors (2), --help, typer.Exit(code): the command line's own
            raise
        except Exception as exc:  # anything else is a bug: one line (traceback with --verbose), exit 1
            report_bug(exc)
        finally:
            console.quiet = False
            output.quiet = output.verbose = False


def _typed(param: Any) -> str:
    """The option's long name (``--n-boot``), as help shows it."""
    opts = [str(o) for o in getattr(param, "opts", []) or []]
    long = [o for o in opts if o.startswith("--")]
    return (long or opts or [str(param.name).upper()])[0]


def in_range(*, ge: float | None = None, gt: float | None = None, le: float | None = None,
             lt: float | None = None) -> Callable[[Any, Any, Any], Any]:
    """A typer option callback that refuses a number outside a range while the command line is parsed.

    Parameters
    ----------
    ge, gt, le, lt : float, optional
        Bounds (>=, >, <=, <).

    Returns
    -------
    callable
        ``callback(ctx, param, value)``: returns ``value``; raises :class:`~nodescope.errors.ConfigError`
        ``--option: must be in (0, 1), got 1.5`` naming the option typed (``None`` passes).
    """
    lo = f"[{ge:g}" if ge is not None else (f"({gt:g}" if gt is not None else "")
    hi = f"{le:g}]" if le is not None else (f"{lt:g})" if lt is not None else "")
    if lo and hi:
        words = f"in {lo}, {hi}"
    else:
        words = (">= " + lo[1:] if lo.startswith("[") else "> " + lo[1:]) if lo else (
            "<= " + hi[:-1] if hi.endswith("]") else "< " + hi[:-1])

    def check(ctx: Any, param: Any, value: Any) -> Any:
        if value is None:
            return value
        ok = not isinstance(value, float) or math.isfinite(value)
        ok = ok and (ge is None or value >= ge) and (gt is None or value > gt)
        ok = ok and (le is None or value <= le) and (lt is None or value < lt)
        if not ok:
            kind = "" if not isinstance(value, float) or math.isfinite(value) else "a finite number "
            raise ConfigError(f"{_typed(param)}: must be {kind}{words}, got {value!r}")
        return value

    return check


def choice(*allowed: Any) -> Callable[[Any, Any, Any], Any]:
    """A typer option callback that refuses a value outside ``allowed`` (the message lists them)."""

    def check(ctx: Any, param: Any, value: Any) -> Any:
        if value is not None and value not in allowed:
            raise ConfigError(f"{_typed(param)}: must be one of {', '.join(map(str, allowed))}, got {value!r}")
        return value

    return check
