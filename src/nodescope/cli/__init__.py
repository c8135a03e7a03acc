"""The ``nodescope`` command line: one sub-command per pipeline stage.

The CLI is thin: each command parses its options, calls the library, prints a summary with rich and writes files.
Stage commands live in sibling modules (``nodescope.cli.data``, ...), each exposing ``register(app)``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from nodescope import __version__
from nodescope.cli import clinical as _clinical
from nodescope.cli import data as _data
from nodescope.cli import demo as _demo
from nodescope.cli import doctor as _doctor
from nodescope.cli import evaluate as _evaluate
from nodescope.cli import explain as _explain
from nodescope.cli import meta as _meta
from nodescope.cli import meta_cohorts as _meta_cohorts
from nodescope.cli import segment as _segment
from nodescope.cli import serve as _serve
from nodescope.cli import train as _train
from nodescope.cli._common import NodescopeGroup, console

__all__ = ["app", "main"]

app = typer.Typer(
    name="nodescope",
    cls=NodescopeGroup,
    help=(
        "nodescope: lymph-node metastasis prediction from ultrasound, end to end.\n\n"
        "Stages: data (check, split, synth, import) -> train / predict -> evaluate -> report; meta for "
        "diagnostic-accuracy meta-analysis; demo runs the main job on built-in synthetic data.\n\n"
        "Exit codes: 0 done; 2 a user error (one 'error:' line naming the file, row, option or value); 1 a bug "
        "(rerun with --verbose for the traceback). See docs/cli.md."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=True,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"nodescope {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Errors and the final output paths only (for "
                                                              "scripts).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also show third-party messages and warnings "
                                                                  "(Lightning, PyTorch) and tracebacks of bugs.")]
    = False,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the nodescope version and exit.")] = False,
) -> None:
    """The root options; the output level is applied by NodescopeGroup.invoke before any command runs."""


@app.command()
def version() -> None:
    """Print the nodescope version and the versions of its main dependencies."""
    import importlib.metadata as md

    console.print(f"nodescope {__version__}")
    for pkg in ("torch", "timm", "monai", "lightning", "scikit-learn", "statsmodels", "scipy", "pydicom"):
        try:
            console.print(f"  {pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            console.print(f"  {pkg} (not installed)")


# Stage registrations: each module adds its commands or sub-apps to ``app``.
for _module in (_data, _train, _evaluate, _meta, _meta_cohorts, _demo, _doctor, _explain, _segment, _serve, _clinical):
    _module.register(app)


def main() -> None:
    """Entry point of the ``nodescope`` console script."""
    app()
