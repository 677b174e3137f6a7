"""When a benchmark run counts as a regression: the statistic compared and the relative slow-down flagged.

A module of its own, free of heavy imports, so the command-line parser (defaults, choices) and the
latency report (:mod:`benchmarks.latency.history`) read the rule from one place without importing each other.
See benchmarks/README.md for why 25 %.
"""

DEFAULT_THRESHOLD = 0.25
STATS = ("median", "mean", "min", "max")
