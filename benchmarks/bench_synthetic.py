"""Speed and memory of the synthetic-data generator (run on demand: ``pytest benchmarks/bench_synthetic.py``).

The goal: the default set (6 subjects × 2,000 trials × 128 channels × 500 samples, 3 GB) in under
60 s on 2 cores, with memory bounded by one subject's chunk plus page cache (the trials go through a
file-backed buffer). ``peak_mem_mb`` counts file-backed pages the process touched as resident.
"""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(dict(subjects=1, classes=40, images_per_class=50), id="one-subject"),
        pytest.param(dict(subjects=6, classes=40, images_per_class=50), id="default-6x2000"),
    ],
)
def test_generate_synthetic(latency, tmp_path, size):
    from eeg2img.datasets.synthetic import generate_synthetic

    trials = size["subjects"] * size["classes"] * size["images_per_class"]
    latency(
        lambda: generate_synthetic(tmp_path / "synth", progress=False, **size), items=trials, rounds=1, warmup_rounds=0
    )
