"""Comparing two sides (revisions or runs) case by case: statistics, the gate, reports."""
