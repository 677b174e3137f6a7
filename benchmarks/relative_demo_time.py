"""The demo's time against a baseline commit's, side by side in one run (issue 10's relative goals).

    BASELINE=$(mktemp -d) && git archive 8425722 | tar x -C "$BASELINE"
    python -m benchmarks.relative_demo_time --baseline "$BASELINE" [--modes quick full]

Each demo runs in its own process from an empty output directory and an empty ``$EEG2IMG_CACHE``, as on
a fresh machine, with ``PYTHONPATH`` pointing at the source tree it measures; the two trees alternate
(baseline quick, this quick, baseline full, this full) so a drift in the machine's speed falls on both.
Prints wall and CPU seconds per run and the ratio this / baseline, and checks this tree's claims by
``benchmarks/bench_demo.py``'s rules; exits 1 when a ratio is above its goal (quick ≤ 0.35×, full ≤ 0.6×)
or a claim does not hold. Timings mean something only on an idle machine: the load before and
after is printed with them.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.bench_demo import check_claims

GOALS = {"quick": 0.35, "full": 0.6}
THIS_TREE = Path(__file__).resolve().parents[1]
# Both the baseline's ``eeg2img.demo`` and today's ``eeg2img.cli.demo`` expose ``run_demo(out, quick=...)``.
RUNNER = """
import sys
try:
    from eeg2img.cli.demo import run_demo
except ImportError:
    from eeg2img.demo import run_demo
sys.exit(run_demo(sys.argv[1], quick=sys.argv[2] == "quick"))
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_demo(tree: Path, mode: str, scratch: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one demo run from ``tree`` in a fresh output directory and cache."""
    out, cache = scratch / "out", scratch / "cache"
    env = {**os.environ, "PYTHONPATH": str(tree), "EEG2IMG_CACHE": str(cache), "PYTHONHASHSEED": "0",
           "EEG2IMG_OFFLINE": "1"}
    cpu0, t0 = _children_cpu(), time.perf_counter()
    result = subprocess.run([sys.executable, "-c", RUNNER, str(out), mode], env=env, cwd=scratch,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if result.returncode != 0:
        raise SystemExit(f"{tree} demo {mode} failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="source tree of the baseline commit")
    parser.add_argument("--modes", nargs="+", choices=sorted(GOALS), default=["quick", "full"])
    args = parser.parse_args(argv)
    if not (args.baseline / "eeg2img").is_dir():
        print(f"{args.baseline}: no eeg2img/ package there; pass the baseline commit's source tree "
              "(git archive <commit> | tar x -C DIR)", file=sys.stderr)
        return 2
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min), {os.cpu_count()} CPUs")
    failed = False
    for mode in args.modes:
        times = {}
        for name, tree in (("baseline", args.baseline.resolve()), ("this", THIS_TREE)):
            with tempfile.TemporaryDirectory(prefix=f"demo-{name}-{mode}-") as scratch:
                times[name] = time_demo(tree, mode, Path(scratch))
                print(f"demo {mode:<5} {name:<8}: {times[name][0]:7.1f} s wall, {times[name][1]:7.1f} s CPU", flush=True)
                if name == "this":  # the speed counts only with the claims holding (bench_demo's rules)
                    missed = check_claims(pd.read_csv(Path(scratch) / "out" / "report" / "claims.csv"), mode)
                    failed |= bool(missed)
                    print(f"demo {mode:<5} claims  : " + ("all asserted claims hold" if not missed else
                                                          "NOT HOLDING:\n  " + "\n  ".join(missed)), flush=True)
        ratio = times["this"][0] / times["baseline"][0]
        ok = ratio <= GOALS[mode]
        failed |= not ok
        print(f"demo {mode:<5} ratio   : {ratio:.2f}× wall (goal ≤ {GOALS[mode]}×) "
              f"{'ok' if ok else 'OVER'}; CPU {times['this'][1] / times['baseline'][1]:.2f}×", flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f} (1-min)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
