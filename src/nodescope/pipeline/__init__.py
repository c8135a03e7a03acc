"""Pipelines that chain the stages end to end (the built-in demo)."""

from nodescope.pipeline._demo import DemoResult, run_demo

__all__ = ["DemoResult", "run_demo"]
