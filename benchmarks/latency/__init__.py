"""Developer tooling: the pytest-benchmark latency history as a table and a plot over commits.

``build_latency_report(history_dir, out_dir)`` reads the runs saved with ``--benchmark-autosave`` and
flags regressions (:mod:`benchmarks.latency.rule`); the CLI wires it as ``eeg2img report latency``.
It is the only part of ``benchmarks/`` that installs with the package (the ``bench_*.py`` files are run
from a checkout with ``pytest benchmarks``).
"""

from benchmarks.latency.history import build_latency_report, flag_regressions, load_history
from benchmarks.latency.rule import DEFAULT_THRESHOLD, STATS

__all__ = ["DEFAULT_THRESHOLD", "STATS", "build_latency_report", "flag_regressions", "load_history"]
