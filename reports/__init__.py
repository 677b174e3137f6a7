"""Reports: the leaderboard and its statistics from a runs directory, and the latency history.

``build_report(runs_dir, out_dir)`` writes ``index.html`` (self-contained), ``leaderboard.md``,
``leaderboard.csv``, ``per_subject.csv``, ``cross_subject_gap.csv``, ``significance.csv`` and PNG
plots; ``build_latency_report(history_dir, out_dir)`` turns saved pytest-benchmark runs into a table
and plot over commits with regressions flagged. The CLI wires them as ``eeg2img report``.
"""

from importlib import import_module

_EXPORTS = {
    "build_report": "reports.build",
    "build_latency_report": "reports.latency",
    "flag_regressions": "reports.latency",
    "load_history": "reports.latency",
    "load_runs": "reports.load",
    "Runs": "reports.load",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    # Lazy, so `eeg2img --help` does not pay for pandas and matplotlib.
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'reports' has no attribute {name!r}")
