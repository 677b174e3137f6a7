"""One grid under the inline, process and Ray executors, and Ray's per-task overhead (``pytest benchmarks/bench_executors.py -s``).

The grid: the tiny synthetic set (3 subjects, 6 classes × 6 images), per-subject and LOSO, three
CPU methods (floor-mean, retrieval-ridge, brain2image-vae at its quick settings), SSIM and PixCorr: 6 fold
jobs × 3 cells. Every round writes a fresh runs directory, so no cell is skipped. The Ray rounds include
starting and stopping the local instance (what ``eeg2img run --executor ray`` costs on one machine); the
overhead benchmark times 100 empty tasks on a running instance. Timings compare only within one run on
an idle machine.
"""

from __future__ import annotations

import itertools
import time

import pytest

METHODS = {"floor-mean": {}, "retrieval-ridge": {}, "brain2image-vae": {"steps": 120}}


@pytest.fixture(scope="module")
def grid_config(tmp_path_factory):
    from eeg2img.datasets.synthetic import generate_synthetic
    from eeg2img.grid.config import parse_config

    out = tmp_path_factory.mktemp("executors")
    generate_synthetic(out, subjects=3, classes=6, images_per_class=6, seed=0, image_size=32, progress=False)
    return parse_config({"datasets": [{"path": str(out / "eeg_synth.pth")}], "protocols": ["per-subject", "loso"],
                         "metrics": ["ssim", "pixcorr"], "methods": METHODS})


@pytest.mark.parametrize("executor", ["inline", "process", "ray"])
def test_grid_wall_time_by_executor(latency, tmp_path, grid_config, executor):
    from eeg2img.grid.runner import make_executor, run_grid

    if executor == "ray":
        pytest.importorskip("ray")
    counter = itertools.count()

    def run():
        return run_grid(grid_config, tmp_path / f"runs-{next(counter)}",
                        executor=make_executor(executor, workers=2), progress=False)

    table = latency(run, items=6, rounds=2, warmup_rounds=0)
    assert len(table) == 6 * 3 * 2  # 6 folds × 3 methods × 2 metrics
    latency.benchmark.extra_info["executor"] = executor


def test_ray_overhead_per_task(latency):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    started = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    startup_s = time.perf_counter() - started
    try:
        noop = ray.remote(num_cpus=1)(lambda: None)
        ray.get([noop.remote() for _ in range(10)])  # workers started before timing

        def hundred_tasks():
            ray.get([noop.remote() for _ in range(100)])

        latency(hundred_tasks, items=100, rounds=5, warmup_rounds=1)
        latency.benchmark.extra_info["ray_startup_s"] = startup_s
    finally:
        ray.shutdown()
