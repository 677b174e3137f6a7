"""Several run stores of the very same benchmark make one leaderboard; stores of two benchmarks never do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from eeg2img.cli import main
from eeg2img.grid.config import parse_config
from eeg2img.grid.kit import write_kit
from eeg2img.grid.runner import run_grid

TESTS = Path(__file__).parent


def cfg(dataset_dir, methods, metrics=("ssim", "pixcorr")):
    return parse_config({"datasets": [{"path": str(dataset_dir / "eeg_synth.pth")}], "protocols": ["per-subject", "loso"],
                         "metrics": list(metrics), "methods": methods})


@pytest.fixture
def two_labs(tiny_synth_dir, tmp_path):
    a, b = tmp_path / "lab-a", tmp_path / "lab-b"
    run_grid(cfg(tiny_synth_dir, {"floor-mean": {}}), a, progress=False)
    run_grid(cfg(tiny_synth_dir, {"floor-random": {}, "floor-mean": {}}), b, progress=False)
    kit = write_kit(cfg(tiny_synth_dir, {"floor-mean": {}}), tmp_path / "KIT", progress=False)
    subprocess.run([sys.executable, str(TESTS / "kit_ridge_submission.py"), str(kit), str(tmp_path / "SUB"), "lab-ridge"],
                   check=True)
    assert main(["submit", str(tmp_path / "SUB"), "--runs", str(b), "--no-progress"]) == 0
    return a, b


def test_two_stores_of_one_benchmark_make_one_leaderboard(two_labs, tmp_path):
    a, b = two_labs
    assert main(["report", str(a), str(b), "--out", str(tmp_path / "report")]) == 0
    board = pd.read_csv(tmp_path / "report" / "leaderboard.csv")
    assert set(board.method) == {"floor-mean", "floor-random", "lab-ridge"}
    assert len(board) == len(board.drop_duplicates(["dataset", "protocol", "method"]))  # floor-mean read once
    doc = json.loads((tmp_path / "report" / "leaderboard.json").read_text())
    bench = json.loads((a / "benchmark.json").read_text())["benchmark_id"]
    assert doc["benchmark_id"] == bench and doc["stores"] == [str(a), str(b)]
    assert doc["methods"]["lab-ridge"]["kind"] == "submission"
    assert doc["methods"]["lab-ridge"]["submission"]["authors"] == "a test lab"
    assert doc["methods"]["floor-mean"]["stores"] == [str(a)] and doc["methods"]["floor-random"]["stores"] == [str(b)]
    entries = pd.DataFrame(doc["entries"])
    assert set(entries.method) == {"floor-mean", "floor-random", "lab-ridge"}
    ssim = entries[(entries.metric == "ssim") & (entries.protocol == "loso")].set_index("method")
    assert ssim.value.notna().all() and (ssim.ci_low <= ssim.value).all() and (ssim.n_trials > 0).all()
    # every method but the column's best is tested against it, paired over the same trials
    assert ssim.p_vs_best.notna().sum() == 2
    assert "2 run stores merged" in (tmp_path / "report" / "leaderboard.md").read_text()


def test_stores_of_two_benchmarks_are_refused(two_labs, tiny_synth_dir, tmp_path, capsys):
    a, _ = two_labs
    other = tmp_path / "lab-c"
    run_grid(cfg(tiny_synth_dir, {"floor-mean": {}}, metrics=("ssim",)), other, progress=False)
    assert main(["report", str(a), str(other), "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(other) in err[0] and "only runs of the very same benchmark merge" in err[0]
    assert not (tmp_path / "report").exists()


def test_one_cell_in_two_configurations_is_refused(two_labs, tiny_synth_dir, tmp_path, capsys):
    a, _ = two_labs
    other = tmp_path / "lab-d"
    run_grid(cfg(tiny_synth_dir, {"floor-mean": {"image_size": 16}}), other, progress=False)
    assert main(["report", str(a), str(other), "--out", str(tmp_path / "report")]) == 2
    assert "with another configuration" in capsys.readouterr().err
