"""``nodescope data``: check, split, synth and import."""

from __future__ import annotations

import typer

__all__ = ["register"]

data_app = typer.Typer(help="Manifests and images: check, split, synthesise demo data, import public layouts.",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach the ``data`` sub-app to the main app."""
    app.add_typer(data_app, name="data")
