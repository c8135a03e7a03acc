"""Shared helpers for CLI commands: the rich console and uniform error exits.

Errors are mapped in one place, :class:`NodescopeGroup`, the command class of the root ``nodescope`` app: every
sub-command (and its option parsing) runs inside its :meth:`~NodescopeGroup.invoke`, so a
:class:`~nodescope.errors.NodescopeError` raised anywhere below -- by the library or by a command -- becomes one
``error: <message>`` line on stderr and exit code 2. Any other exception is a bug and is not caught here: it
surfaces with its traceback and exit code 1. Commands therefore catch nothing themselves; to add command-line
context (the flag the user typed) they raise a family error, e.g. ``ConfigError(f"--lr: {exc}")``.
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from nodescope.errors import NodescopeError

__all__ = ["EXIT_USER_ERROR", "NodescopeGroup", "console", "err_console", "fail", "report_error"]

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
