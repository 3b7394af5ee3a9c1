"""Eval suites: datasets, scorers and the runner."""
