"""Diagnostic-test-accuracy meta-analysis."""
