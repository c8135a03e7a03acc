"""``nodescope demo``: the main job on built-in synthetic data."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Attach the ``demo`` command to the main app."""

    @app.command()
    def demo() -> None:
        """Run the main job end to end on built-in synthetic data (work in progress)."""
        raise typer.Exit(0)
