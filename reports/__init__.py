"""Reports: the leaderboard and its statistics from a runs directory.

``build_report(runs_dir, out_dir)`` writes ``index.html`` (self-contained), ``leaderboard.md``,
``leaderboard.csv``, ``per_subject.csv``, ``cross_subject_gap.csv``, ``significance.csv`` and PNG
plots. The CLI wires it as ``eeg2img report``; the latency history (``eeg2img report latency``) is
developer tooling in :mod:`benchmarks.latency`.
"""

from importlib import import_module

_EXPORTS = {
    "build_report": "reports.build",
    "load_runs": "reports.load",
    "Runs": "reports.load",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    # Lazy, so `eeg2img --help` does not pay for pandas and matplotlib.
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'reports' has no attribute {name!r}")
