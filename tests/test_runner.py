"""The grid runner: skip finished cells, resume a killed run without lost or duplicated rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import slow_method

from eeg2img.errors import UserError
from eeg2img.grid.config import parse_config
from eeg2img.grid.runner import plan, run_grid
from eeg2img.runstore import RESULT_COLUMNS, RunStore

TESTS = Path(__file__).parent


def grid(dataset_dir, delay=0.0, methods=None):
    return parse_config(
        {
            "datasets": [{"path": str(dataset_dir / "eeg_synth.pth")}],
            "protocols": ["per-subject", "loso"],
            "metrics": ["ssim", "pixcorr"],
            "methods": methods or {"test-slow-mean": {"delay": delay}},
        }
    )


def test_grid_results_are_tidy_and_complete(tmp_path, tiny_synth_dir, tiny_synth):
    table = run_grid(grid(tiny_synth_dir), tmp_path, progress=False)
    assert list(table.columns) == RESULT_COLUMNS
    assert not table.duplicated(RESULT_COLUMNS[:-1]).any()
    # one row per (protocol, fold/subject, metric): 2 protocols × 3 subjects × 2 metrics
    assert len(table) == 2 * 3 * 2
    assert set(table.backbone) == {"pixels"}
    assert table.value.between(-1, 1).all()
    assert set(table.label) == {"425px, grey", "425px, RGB"}  # the protocol each value was computed under


def test_finished_cells_are_skipped(tmp_path, tiny_synth_dir):
    config = grid(tiny_synth_dir)
    run_grid(config, tmp_path, progress=False)
    done = sorted(RunStore(tmp_path).finished_cells())
    stamps = [(d / "DONE").stat().st_mtime_ns for d in done]
    slow_method.calls.clear()
    run_grid(config, tmp_path, progress=False)
    assert slow_method.calls == []
    assert [(d / "DONE").stat().st_mtime_ns for d in done] == stamps


def test_partial_cell_reconstructs_only_missing_trials(tmp_path, tiny_synth_dir):
    config = grid(tiny_synth_dir)
    first = run_grid(config, tmp_path, progress=False)
    cell = RunStore(tmp_path).finished_cells()[0]
    (cell / "DONE").unlink()
    pngs = sorted((cell / "recon").glob("*.png"))
    pngs[0].unlink()
    slow_method.calls.clear()
    again = run_grid(config, tmp_path, progress=False)
    assert slow_method.calls == [1]
    pd.testing.assert_frame_equal(first, again)


def test_killed_run_resumes_without_lost_or_duplicated_rows(tmp_path, tiny_synth_dir):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        import slow_method
        from test_runner import grid
        from eeg2img.grid.runner import run_grid
        from pathlib import Path
        run_grid(grid(Path({str(tiny_synth_dir)!r}), delay=0.5), {str(killed)!r}, progress=False)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            if list(killed.glob("**/DONE")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    n_done = len(list(killed.glob("**/DONE")))
    assert 1 <= n_done < 6
    resumed = run_grid(grid(tiny_synth_dir, delay=0.5), killed, progress=False)
    reference = run_grid(grid(tiny_synth_dir, delay=0.5), clean, progress=False)
    assert not resumed.duplicated(RESULT_COLUMNS[:-1]).any()
    pd.testing.assert_frame_equal(resumed, reference)
    assert not list(killed.glob("**/*.tmp"))


def test_bad_config_fails_before_any_work(tmp_path, tiny_synth_dir):
    base = {"datasets": [{"path": str(tiny_synth_dir / "eeg_synth.pth")}], "methods": {"test-slow-mean": {}}}
    with pytest.raises(UserError, match="unknown method 'nope'"):
        parse_config({**base, "methods": {"nope": {}}})
    with pytest.raises(UserError, match="unknown protocol 'kfold'"):
        parse_config({**base, "protocols": ["kfold"]})
    with pytest.raises(UserError, match="not found"):
        parse_config({**base, "datasets": [{"path": str(tmp_path / "missing.pth")}]})
    with pytest.raises(UserError, match="unknown key 'method'"):
        parse_config({**base, "method": {}})
    assert not any(tmp_path.iterdir())


def test_plan_groups_methods_by_fold(tiny_synth_dir, tmp_path):
    config = grid(tiny_synth_dir, methods={"test-slow-mean": {}, "floor-mean": {}})
    jobs = plan(config, tmp_path)
    assert len(jobs) == 6  # 2 protocols × 3 subjects
    assert all([m.name for m in j.methods] == ["test-slow-mean", "floor-mean"] for j in jobs)
    assert len({(j.protocol, j.fold) for j in jobs}) == 6
    import pickle

    assert pickle.loads(pickle.dumps(jobs[0])) == jobs[0]
    np.testing.assert_equal(len(set(j.methods[0].config_hash(j.seed) for j in jobs)), 1)


def test_set_level_metrics_are_pooled_over_folds_and_equal_the_engine_on_the_concatenated_trials(tmp_path):
    """Per-subject folds test each trial once: FID, KID and IS are computed once over all of them."""
    from eeg2img.datasets import load_dataset
    from eeg2img.datasets.base import read_rgb
    from eeg2img.datasets.synthetic import generate_synthetic
    from eeg2img.splits import make_folds
    from metrics.backbones import build_backbone
    from metrics.engine import MetricsEngine

    path = generate_synthetic(tmp_path / "data", subjects=2, classes=10, images_per_class=10, seed=0, image_size=16,
                              n_channels=16, n_samples=480, progress=False)
    config = parse_config({"datasets": [{"path": str(path)}], "protocols": ["per-subject"], "backbone": "proxy",
                           "metrics": ["ssim", "fid", "kid", "is"], "methods": {"floor-random": {}}})
    table = run_grid(config, tmp_path / "runs", progress=False)
    assert set(table.metric) == {"ssim"}  # per-fold set-level values are never written as results
    pooled = pd.read_csv(tmp_path / "runs" / "set_level.csv")
    assert set(pooled.subject.astype(str)) == {"all"}  # 10 test trials per subject: below every minimum alone
    by_metric = pooled.set_index("metric")
    assert (by_metric.n == 20).all() and (by_metric.folds == 2).all()
    assert by_metric.loc["fid", "status"] == "N < min" and np.isnan(by_metric.loc["fid", "value"])

    dataset = load_dataset(path)
    store = RunStore(tmp_path / "runs")
    preds, refs = [], []
    for fold in sorted(make_folds(dataset, "per-subject", 0), key=lambda f: f.name):
        cell = next(d for d in store.finished_cells() if d.parts[-4] == fold.name)
        test = dataset.subset(fold.test)
        preds.append(np.stack([read_rgb(cell / "recon" / f"{t}.png") for t in test.trial_ids.astype(str)]))
        refs.append(test.load_images(size=preds[-1].shape[1]))
    engine = MetricsEngine(("kid", "is"), backbones=[build_backbone("proxy")], seed=0, use_cache=False)
    once = engine.evaluate(np.concatenate(preds), np.concatenate(refs))
    for metric in ("kid", "is"):
        assert by_metric.loc[metric, "status"] == "ok"
        # The folds' features were extracted in other batches than the single pass: equal to float32 round-off
        # (KID is a small difference of large kernel sums, so that round-off shows at 1e-8 relative).
        assert by_metric.loc[metric, "value"] == pytest.approx(once.results[f"{metric}@proxy"].value, rel=1e-6)
        assert by_metric.loc[metric, "std"] == pytest.approx(once.extras[f"{metric}@proxy"]["std"], rel=1e-5)
        assert by_metric.loc[metric, "ci_low"] <= by_metric.loc[metric, "ci_high"]
    assert by_metric.loc["is", "label"] == "10 classes, 2 splits, N=20"


def test_plan_starts_the_first_job_of_a_shared_stage_before_the_stage_free_jobs(tiny_synth_dir, tmp_path):
    # neuroimagen and oracle-saliency share the demo diffusion model; floor-mean shares nothing
    config = grid(tiny_synth_dir, methods={"floor-mean": {}, "neuroimagen": {}, "oracle-saliency": {}})
    jobs = plan(config, tmp_path)
    names = [tuple(m.name for m in j.methods) for j in jobs]
    diffusion = ("neuroimagen", "oracle-saliency")
    assert len(jobs) == 18  # 6 folds × (stage-free, diffusion), and a prefit job per diffusion job
    assert names[0] == diffusion and not jobs[0].prefit  # builds the shared model at once
    assert names[1:7] == [("floor-mean",)] * 6  # what a second worker does meanwhile
    assert names[7:13] == [diffusion] * 6 and all(j.prefit for j in jobs[7:13])  # then the EEG stages of every fold
    assert names[13:] == [diffusion] * 5 and not any(j.prefit for j in jobs[13:])
    folds = [(j.protocol, j.fold) for j in jobs]
    assert sorted(set(folds)) == sorted(set(folds[1:7])) == sorted(set(folds[7:13]))
    assert len(set(folds[13:]) | {folds[0]}) == 6
    keys = [k for j in jobs for k in j.cell_keys()]  # prefit jobs own no cell: none is counted twice
    assert len(keys) == len(set(keys)) == 18 and all(j.cell_keys() == [] for j in jobs[7:13])
    # a grid whose methods have nothing to train before the stage gets no prefit job
    plain = plan(grid(tiny_synth_dir, methods={"floor-mean": {}, "oracle-saliency": {}}), tmp_path)
    assert len(plain) == 12 and not any(j.prefit for j in plain)


FAST_NEUROIMAGEN = dict(encoder="eegnet", encoder_epochs=4, gan_epochs=4, regressor_epochs=10, steps=4, strength=0.5,
                        demo_vae_steps=30, demo_unet_steps=30, device="cpu")


def test_a_prefit_job_trains_the_eeg_stages_that_the_fold_job_then_loads_with_the_same_result(
        tiny_synth_dir, tmp_path, monkeypatch):
    from eeg2img.grid.runner import run_fold_job
    from reconstruct.saliency_gan import SaliencyGAN
    from reconstruct.stages import clear_memo

    config = parse_config({"datasets": [{"path": str(tiny_synth_dir / "eeg_synth.pth")}], "protocols": ["loso"],
                           "metrics": ["ssim", "pixcorr"], "methods": {"neuroimagen": FAST_NEUROIMAGEN}})
    jobs = plan(config, tmp_path / "with")
    prefit = next(j for j in jobs if j.prefit)
    job = next(j for j in jobs if not j.prefit and j.fold == prefit.fold)
    clear_memo()
    assert run_fold_job(prefit) == []
    cache = tmp_path / "with" / ".cache"
    assert len(list(cache.rglob("gan/*/config.json"))) == 1 and list(cache.rglob("encoder/*"))
    assert not RunStore(tmp_path / "with").is_done(job.cell_key(job.methods[0]))  # no cell written

    clear_memo()  # another worker: it finds the stages on disk and must not train them again
    with monkeypatch.context() as m:
        m.setattr(SaliencyGAN, "fit", lambda *a, **k: pytest.fail("the GAN was trained twice"))
        run_fold_job(job)
    clear_memo()
    alone = next(j for j in plan(config, tmp_path / "without") if not j.prefit and j.fold == job.fold)
    run_fold_job(alone)
    key = job.cell_key(job.methods[0])
    with_prefit = RunStore(tmp_path / "with").load_reconstructions(key, _test_trials(job))
    without = RunStore(tmp_path / "without").load_reconstructions(key, _test_trials(job))
    np.testing.assert_array_equal(with_prefit, without)


def _test_trials(job) -> list[str]:
    from eeg2img.grid.runner import _folds, _load

    dataset = _load(job.dataset_path, job.dataset_options)
    fold = _folds(job.dataset_path, job.dataset_options, job.protocol, job.seed, job.split_options)[job.fold]
    return [str(t) for t in dataset.subset(fold.test).trial_ids]


def _build_once(entry: str, log: str) -> None:
    from eeg2img.atomic import build_lock

    with build_lock(entry):
        if not os.path.exists(entry):
            time.sleep(0.5)  # both processes arrive while the first is still building
            with open(log, "a") as f:
                f.write(f"built by {os.getpid()}\n")
            Path(entry).write_text("model")


def test_build_lock_makes_a_parallel_builder_wait_and_reuse_the_entry(tmp_path):
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    entry, log = tmp_path / "cache" / "model", tmp_path / "log"
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        list(pool.map(_build_once, [str(entry)] * 2, [str(log)] * 2))
    assert entry.read_text() == "model"
    assert len(log.read_text().splitlines()) == 1


def test_every_cell_runs_with_the_fixed_thread_count_and_records_it(tmp_path, tiny_synth_dir):
    # models trained with 1 and 2 intra-op threads differ; a cell must not depend on the caller's setting
    import json

    import torch

    from eeg2img.grid.runner import CELL_THREADS

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        slow_method.threads_seen.clear()
        run_grid(grid(tiny_synth_dir), tmp_path, progress=False)
        assert torch.get_num_threads() == 2  # restored after each cell
    finally:
        torch.set_num_threads(before)
    assert slow_method.threads_seen and set(slow_method.threads_seen) == {CELL_THREADS}
    records = [json.loads(p.read_text()) for p in tmp_path.rglob("provenance.json")]
    assert len(records) == 6 and {r["torch_threads"] for r in records} == {CELL_THREADS}
    # how the source was read travels with every cell: the synthetic file's 500-sample segments all pass
    readings = [r["dataset_reading"] for r in records]
    assert all(sum(x["segments_dropped"].values()) == 0 and x["segments_kept"] == x["segments_in_file"] > 0
               for x in readings)
    assert {r["split_reading"] for r in records} == {None}  # no official split file in this grid


def test_process_pool_runs_methods_registered_outside_the_plugins_with_the_inline_numbers(tmp_path, tiny_synth_dir):
    # test-slow-mean is registered by this test module only: spawned workers must import it themselves
    from eeg2img.grid.runner import make_executor

    config = grid(tiny_synth_dir, methods={"test-slow-mean": {}, "floor-random": {}})
    inline = run_grid(config, tmp_path / "inline", progress=False)
    pooled = run_grid(config, tmp_path / "pool", executor=make_executor("process", 2), progress=False)
    pd.testing.assert_frame_equal(inline, pooled)
