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

from eeg2img.config import parse_config
from eeg2img.errors import UserError
from eeg2img.runner import cross_subject_gap, plan, run_grid
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
    # the cross-subject gap pairs the same test trials: a floor that ignores EEG has the same score… up to
    # which subjects' training images it averaged
    gap = cross_subject_gap(table)
    assert set(gap.metric) == {"ssim", "pixcorr"} and (gap.n_subjects == 3).all()


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
        from eeg2img.runner import run_grid
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
