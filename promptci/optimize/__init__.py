"""Optimizer passes: one framework (split, scoring, trajectory, budget), one module per method."""
