"""``nodescope doctor``: what this installation has, and whether the essentials work (exit 0) or not (exit 2)."""

from __future__ import annotations

from typing import Annotated

import typer

from nodescope.cli._common import EXIT_USER_ERROR, console, err_console

__all__ = ["register"]

_STYLE = {"ok": "green", "missing": "yellow", "fail": "bold red"}


def register(app: typer.Typer) -> None:
    """Attach the ``doctor`` command to the main app."""

    @app.command()
    def doctor(
        browser: Annotated[bool, typer.Option("--browser/--no-browser",
                                              help="Ask Chromium for its version (the page tests' browser).")] = True,
    ) -> None:
        """Check the installation: versions of the stack, threads, offline ImageNet weights, shared data, ONNX
        Runtime, Chromium. Exit 0 when the essentials work, 2 otherwise."""
        from nodescope._doctor import run_checks

        checks = run_checks(browser=browser)
        group = None
        for c in checks:
            if c.group != group:
                console.print(f"[bold]{c.group}[/]")
                group = c.group
            mark = " (essential)" if c.essential and c.status != "ok" else ""
            console.print(f"  [{_STYLE[c.status]}]{c.status:<7}[/] {c.name}{mark}: {c.detail}", highlight=False,
                          soft_wrap=True)
        failed = [c for c in checks if c.failed]
        if failed:
            for c in failed:
                err_console.print(f"[bold red]error:[/] {c.name}: {c.detail}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_USER_ERROR)
