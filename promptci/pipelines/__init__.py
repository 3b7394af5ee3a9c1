"""Pipelines: prompts chained into one system, evaluated, compared and optimized as one."""
