"""Shared helpers for CLI commands: the rich console and uniform error exits.

Errors are mapped in one place, :class:`NodescopeGroup`, the command class of the root ``nodescope`` app: every
sub-command (and its option parsing) runs inside its :meth:`~NodescopeGroup.invoke`, so a
:class:`~nodescope.errors.NodescopeError` raised anywhere below -- by the library or by a command -- becomes one
``error: <message>`` line on stderr and exit code 2. Any other exception is a bug and is not caught here: it
surfaces with its traceback and exit code 1. Commands therefore catch nothing themselves; to add command-line
context (the flag the user typed) they raise a family error, e.g. ``ConfigError(f"--lr: {exc}")``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from nodescope.errors import ConfigError, NodescopeError

__all__ = ["EXIT_USER_ERROR", "NodescopeGroup", "choice", "console", "err_console", "fail", "in_range",
           "report_error"]

#: Exit code of every error caused by the user's input (files, values, options), as for click's usage errors.
EXIT_USER_ERROR = 2

console = Console()
err_console = Console(stderr=True)


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


class NodescopeGroup(TyperGroup):
    """The root command group: maps every :class:`~nodescope.errors.NodescopeError` to ``error:`` and exit 2.

    Sub-commands are parsed and run inside :meth:`invoke`, so errors raised while converting or validating an
    option value are mapped too. Other exceptions propagate unchanged (a bug: traceback, exit code 1).
    """

    def invoke(self, ctx: Any) -> Any:
        """Run the sub-command; report a :class:`~nodescope.errors.NodescopeError` as a user error."""
        try:
            return super().invoke(ctx)
        except NodescopeError as exc:
            report_error(exc)


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
