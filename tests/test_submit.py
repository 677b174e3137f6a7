"""The round trip: kit → a lab's numpy-only method → ``eeg2img submit`` → the report ranks it among the built-ins."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from eeg2img.cli import main
from eeg2img.grid.config import load_config
from eeg2img.grid.runner import run_grid
from eeg2img.runstore import BENCHMARK_FILE, RunStore

TESTS = Path(__file__).parent


@pytest.fixture
def lab_store(tiny_synth_dir, tmp_path):
    toml = tmp_path / "grid.toml"
    toml.write_text(f'protocols = ["per-subject", "loso"]\nmetrics = ["ssim", "pixcorr"]\n'
                    f'[[datasets]]\npath = "{tiny_synth_dir / "eeg_synth.pth"}"\n'
                    '[methods.floor-mean]\n[methods.floor-random]\n')
    runs = tmp_path / "runs"
    run_grid(load_config(toml), runs, progress=False)
    assert main(["kit", "--config", str(toml), "--out", str(tmp_path / "KIT"), "--no-progress"]) == 0
    sub = tmp_path / "SUB"
    subprocess.run([sys.executable, str(TESTS / "kit_ridge_submission.py"), str(tmp_path / "KIT"), str(sub), "lab-ridge"],
                   check=True)
    return toml, runs, sub


def tree(root: Path) -> dict[str, float]:
    # RUNS/.lock holds the pid of whoever held the store last: taking the lock is not a write of results
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def test_a_submission_is_scored_like_a_built_in_method_and_ranked_in_the_report(lab_store, tmp_path):
    toml, runs, sub = lab_store
    assert main(["submit", str(sub), "--runs", str(runs), "--no-progress"]) == 0
    results = pd.read_csv(runs / "results.csv")
    mine = results[results.method == "lab-ridge"]
    floor = results[results.method == "floor-mean"]
    assert len(mine) == len(floor) > 0  # every fold, subject and metric a built-in method has
    assert set(zip(mine.protocol, mine.fold, mine.metric)) == set(zip(floor.protocol, floor.fold, floor.metric))
    cells = [json.loads(p.read_text()) for p in runs.glob("*/*/*/lab-ridge/seed-0/*/cell.json")]
    assert len(cells) == 6 and all(c["kind"] == "submission" for c in cells)
    assert cells[0]["submission"] == {"name": "lab-ridge", "oracle": False, "authors": "a test lab"}
    # the reconstructions are the lab's images, scored on the same trials as the built-ins
    store = RunStore(runs)
    key = next(k for k in store.current_submissions() if k.protocol == "loso")
    trials = pd.read_parquet(store.cell_dir(key) / "trials.parquet").trial_id.astype(str).tolist()
    from eeg2img.datasets.base import read_rgb

    lab = read_rgb(sub / key.dataset / key.protocol / key.fold / f"{trials[0]}.png")
    assert (store.load_reconstructions(key, trials[:1])[0] == lab).all()

    from reports.build import build_report

    out = build_report(runs, tmp_path / "report")
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board.loc[board.method == "lab-ridge", "kind"]) == {"submission"}
    sig = pd.read_csv(out / "significance.csv")
    assert "lab-ridge" in set(sig.astype(str).stack())  # paired with the built-ins like any method
    assert "submission" in (out / "index.html").read_text()


def test_resubmitting_replaces_the_cells_and_a_rerun_keeps_them(lab_store, tmp_path):
    toml, runs, sub = lab_store
    assert main(["submit", str(sub), "--runs", str(runs), "--no-progress"]) == 0
    first = sorted(str(k.relpath()) for k in RunStore(runs).current_submissions())
    image = next(sub.rglob("*.png"))
    from PIL import Image

    Image.new("RGB", (32, 32), (255, 0, 0)).save(image)  # a changed image: a new cell for that fold
    assert main(["submit", str(sub), "--runs", str(runs), "--no-progress"]) == 0
    second = sorted(str(k.relpath()) for k in RunStore(runs).current_submissions())
    assert len(second) == 6 and len(set(second) - set(first)) == 1
    on_disk = sorted(str(p.parent.relative_to(runs)) for p in runs.glob("*/*/*/lab-ridge/seed-0/*/cell.json"))
    assert on_disk == second  # the replaced cell is gone
    run_grid(load_config(toml), runs, progress=False)  # the lab_store's grid again: the submission stays
    assert sorted(str(k.relpath()) for k in RunStore(runs).current_submissions()) == second
    assert "lab-ridge" in set(pd.read_csv(runs / "results.csv").method)


def test_a_bad_submission_writes_nothing(lab_store, capsys):
    toml, runs, sub = lab_store
    before = tree(runs)
    (sub / "submission.toml").write_text((sub / "submission.toml").read_text().replace('benchmark_id = "', 'benchmark_id = "0'))
    assert main(["submit", str(sub), "--runs", str(runs), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "submission.toml: benchmark_id" in err[0]
    shutil.rmtree(sub)
    assert main(["submit", str(sub), "--runs", str(runs), "--no-progress"]) == 2
    assert "not a submission folder" in capsys.readouterr().err
    assert tree(runs) == before


def test_a_store_without_benchmark_sources_is_refused(lab_store, capsys):
    toml, runs, sub = lab_store
    doc = json.loads((runs / BENCHMARK_FILE).read_text())
    (runs / BENCHMARK_FILE).write_text(json.dumps({**doc, "sources": [{"dataset": "eeg_synth"}]}))
    assert main(["submit", str(sub), "--runs", str(runs), "--no-progress"]) == 2
    assert "benchmark.json: malformed sources (KeyError" in capsys.readouterr().err
    (runs / BENCHMARK_FILE).unlink()
    assert main(["submit", str(sub), "--runs", str(runs), "--no-progress"]) == 2
    assert "rerun `eeg2img run` on it, then submit" in capsys.readouterr().err
