"""The demo's wall-clock budget and the claims it must show (run on demand: ``pytest benchmarks/bench_demo.py -s``).

Budgets on the 2-core development machine: ``eeg2img demo --quick`` ≤ 90 s, ``eeg2img demo`` (3 subjects
× 10 classes × 20 images, 16 methods × per-subject and LOSO, every offline metric, the report) ≤ 420 s,
``eeg2img demo --track things`` (the THINGS-EEG2 zero-shot track: 3 subjects, 60 training and 50 test
concepts, 6 methods × zero-shot and zero-shot-loso, retrieval and image metrics, the report) ≤ 300 s.
Each round starts from an empty output directory, so the dataset, the in-domain backbone and the demo
diffusion model are built inside the timed call, as on a fresh machine. The budget is asserted here — a
benchmark, never a timed unit test — and the median goes to the latency history like every other benchmark.

The same run's ``report/claims.csv`` (``reports/claims.py``: paired over the matched test trials, Holm
over all claims) is checked too: in the default demo the ladder (oracle-saliency > neuroimagen > best
floor on ACC and N-way, both protocols), every learned baseline above floor-random on N-way, and
LOSO < per-subject for NeuroImagen must hold at p_holm < 0.05; the quick demo must show the ladder on
the means; the things track must show every embedding method above floor-random and the contrastive
encoders above embedding-ridge on zero-shot top-1, and zero-shot-loso below zero-shot (issue 15's proof;
not all hold yet — the failing ones are that issue's gate). The ablation claims are printed, and those on
the metrics in ``ABLATION_ASSERTED`` are asserted in the default demo: Table 3's ACC pattern (label variants
above saliency-only) holds there; its SSIM pattern cannot at demo scale (docs/neuroimagen.md, "Ablation at
demo scale").
"""

from __future__ import annotations

import itertools
import shutil

import pandas as pd
import pytest

BUDGET_S = {"quick": 90.0, "full": 420.0, "things": 300.0}
ASSERTED = {"full": ("ladder", "learned", "gap"), "quick": (), "things": ("zero-shot", "zs-gap")}
ON_MEANS = {"full": (), "quick": ("ladder",), "things": ()}
ABLATION_ASSERTED = ("acc",)  # metrics whose ablation claims the default demo must show


def check_claims(claims: pd.DataFrame, mode: str) -> list[str]:
    """The claims this mode must show that it does not, one line each (empty: all hold)."""
    failures = []
    for r in claims.itertuples(index=False):
        text = f"{r.claim} {r.protocol} {r.metric}: {r.better} > {r.worse} (diff {r.diff:+.3f}, p_holm {r.p_holm:.2g})"
        asserted = r.claim in ASSERTED[mode] or (mode == "full" and r.claim == "ablation" and r.metric in ABLATION_ASSERTED)
        if asserted and not r.holds:
            failures.append(text)
        elif r.claim in ON_MEANS[mode] and not r.holds_on_means:
            failures.append(text + " — wrong direction on the means")
    return failures


@pytest.mark.parametrize("mode", ["quick", "full", "things"])
def test_demo_budget(latency, benchmark, tmp_path, mode):
    from eeg2img.cli.demo import run_demo

    counter = itertools.count()

    failures: list[str] = []

    def fresh_run():
        out = tmp_path / f"run-{next(counter)}"
        try:
            assert run_demo(out, quick=mode == "quick", track="things" if mode == "things" else "reconstruction") == 0
            failures[:] = check_claims(pd.read_csv(out / "report" / "claims.csv"), mode)
        finally:
            shutil.rmtree(out, ignore_errors=True)

    latency(fresh_run, items=1, rounds=1, warmup_rounds=0)
    assert not failures, "claims that do not hold:\n" + "\n".join(failures)
    if "p50_ms" not in benchmark.extra_info:  # --benchmark-disable: ran once, nothing timed
        return
    seconds = benchmark.extra_info["p50_ms"] / 1000
    print(f"\ndemo {mode}: {seconds:.0f} s (budget {BUDGET_S[mode]:.0f} s)")
    assert seconds <= BUDGET_S[mode], f"demo {mode} took {seconds:.0f} s, over its {BUDGET_S[mode]:.0f} s budget"
