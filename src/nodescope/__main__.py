"""``python -m nodescope`` runs the command-line interface."""

from nodescope.cli import main

main()
