"""``eeg2img report``: two subcommands with their own parsers.

- ``eeg2img report [runs] RUNS_DIR [RUNS_DIR ...] --out DIR``: the leaderboard report of a runs directory, or of
  several of the same benchmark merged
  (``runs`` is the default subcommand, so ``eeg2img report RUNS_DIR`` works; a runs directory that is
  itself called ``latency`` is reached as ``eeg2img report runs latency``).
- ``eeg2img report latency [--history DIR] --out DIR``: the saved pytest-benchmark history.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.latency.rule import DEFAULT_THRESHOLD, STATS
from eeg2img.errors import UserError


def add_report_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("runs_dir", type=Path, nargs="+", metavar="RUNS_DIR",
                        help="runs directory written by `eeg2img run`; several of the same benchmark are merged")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output folder: index.html, leaderboard.md/.csv, per_subject.csv, plots (PNG)")
    parser.add_argument("--ci", choices=["units", "trials"], default="units",
                        help="bootstrap the 95%% CI over subject×fold units (default) or over trials within units")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and Monte-Carlo tests")
    parser.add_argument("--grid-trials", type=int, default=8, help="test trials per reconstruction grid")
    return parser


def run_report(args: argparse.Namespace) -> int:
    from reports.build import build_report

    if args.n_boot < 100:
        raise UserError(f"--n-boot {args.n_boot}: too few resamples for a 95% CI; use at least 100")
    if args.grid_trials < 1:
        raise UserError(f"--grid-trials {args.grid_trials}: must be at least 1")
    runs = args.runs_dir[0] if len(args.runs_dir) == 1 else args.runs_dir
    out = build_report(runs, args.out, ci=args.ci, n_boot=args.n_boot, seed=args.seed,
                       grid_trials=args.grid_trials)
    print(f"report: {out / 'index.html'}")
    return 0


def add_latency_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output folder: latency.html, latency.md, latency.csv, latency.png")
    _latency_options(parser)
    return parser


def _latency_options(parser) -> None:
    parser.add_argument("--history", type=Path, default=Path(".benchmarks"), metavar="DIR",
                        help="pytest-benchmark storage folder (--benchmark-storage; default .benchmarks)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="relative slow-down flagged as a regression (default 0.25 = 25%%)")
    parser.add_argument("--stat", choices=STATS, default="median", help="statistic compared (default median)")
    parser.add_argument("--fail-on-regression", action="store_true",
                        help="exit with status 1 when the latest run of any benchmark regressed")


def run_latency(args: argparse.Namespace) -> int:
    from benchmarks.latency import build_latency_report

    written, regressions = build_latency_report(args.history, args.out, threshold=args.threshold, stat=args.stat)
    for r in regressions.itertuples(index=False):
        print(f"REGRESSION {r.benchmark} [{r.machine}]: {r.previous * 1e3:.3g} ms ({r.previous_commit}) -> "
              f"{getattr(r, args.stat) * 1e3:.3g} ms ({r.commit_short}), {r.change:+.0%}")
    print(f"wrote {len(written)} files to {args.out}; {len(regressions)} regression(s) in the latest runs")
    return 1 if regressions.shape[0] and args.fail_on_regression else 0
