"""Evaluation (in progress)."""
