"""The benchmark identity: what decides it, where it is stored, that a tampered one is refused, that the report shows it."""

from __future__ import annotations

import json

import pytest

from eeg2img.errors import UserError
from eeg2img.grid.benchmark import benchmark_identity
from eeg2img.grid.config import parse_config
from eeg2img.grid.runner import plan, run_grid
from eeg2img.runstore import BENCHMARK_FILE, RunStore


def config(dataset_dir, methods=None, metrics=("ssim", "pixcorr"), protocols=("per-subject", "loso"), seeds=(0,)):
    return parse_config({"datasets": [{"path": str(dataset_dir / "eeg_synth.pth")}], "protocols": list(protocols),
                         "metrics": list(metrics), "seeds": list(seeds),
                         "methods": methods or {"floor-mean": {}}})


def identity(cfg, tmp_path):
    return benchmark_identity(plan(cfg, tmp_path))


def test_the_id_covers_the_splits_and_the_metrics_and_not_the_methods(tiny_synth_dir, tmp_path):
    base = identity(config(tiny_synth_dir), tmp_path)
    assert len(base["benchmark_id"]) == 64 and len(base["folds"]) == 6  # 3 subjects × 2 protocols
    assert {f["protocol"] for f in base["folds"]} == {"per-subject", "loso"}
    assert all(len(f["fingerprint"]) == 64 and f["dataset"] == "eeg_synth" for f in base["folds"])
    # what a leaderboard compares does not change the benchmark
    assert identity(config(tiny_synth_dir, methods={"floor-random": {}, "floor-mean": {}}), tmp_path) == base
    # a seed is part of a split (it draws the validation trials): a second seed adds its folds
    two_seeds = identity(config(tiny_synth_dir, seeds=(0, 1)), tmp_path)
    assert len(two_seeds["folds"]) == 12 and two_seeds["benchmark_id"] != base["benchmark_id"]
    assert [f for f in two_seeds["folds"] if f in base["folds"]] == base["folds"]
    # what decides the numbers does
    assert identity(config(tiny_synth_dir, metrics=("ssim",)), tmp_path)["benchmark_id"] != base["benchmark_id"]
    assert identity(config(tiny_synth_dir, protocols=("loso",)), tmp_path)["benchmark_id"] != base["benchmark_id"]


def test_another_dataset_is_another_benchmark(tiny_synth_dir, tmp_path):
    from eeg2img.datasets.synthetic import generate_synthetic

    other = tmp_path / "other"
    generate_synthetic(other, subjects=3, classes=6, images_per_class=6, seed=1, image_size=32, progress=False)
    a, b = identity(config(tiny_synth_dir), tmp_path), identity(config(other), tmp_path)
    assert a["benchmark_id"] != b["benchmark_id"]
    assert {f["dataset_fingerprint"] for f in a["folds"]} != {f["dataset_fingerprint"] for f in b["folds"]}


def test_run_writes_the_benchmark_and_a_tampered_or_corrupt_one_is_refused(tiny_synth_dir, tmp_path):
    cfg = config(tiny_synth_dir)
    run_grid(cfg, tmp_path / "runs", progress=False)
    store = RunStore(tmp_path / "runs")
    doc = store.read_benchmark()
    assert {k: v for k, v in doc.items() if k != "sources"} == identity(cfg, tmp_path)
    assert {s["dataset_path"] for s in doc["sources"]} == {str(tiny_synth_dir / "eeg_synth.pth")}
    moved = {**doc, "sources": [{**s, "dataset_path": "/elsewhere"} for s in doc["sources"]]}
    path = tmp_path / "runs" / BENCHMARK_FILE
    path.write_text(json.dumps(moved))  # where the data lives is not part of the benchmark
    assert store.read_benchmark()["benchmark_id"] == doc["benchmark_id"]
    edited = {**doc, "folds": doc["folds"][:-1]}  # a fold removed by hand, the id kept
    path.write_text(json.dumps(edited))
    with pytest.raises(UserError, match=r"benchmark\.json: benchmark_id does not match"):
        store.read_benchmark()
    path.write_text("{not json")
    with pytest.raises(UserError, match=r"benchmark\.json: unreadable"):
        store.read_benchmark()
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(UserError, match="not a benchmark document"):
        store.read_benchmark()


def test_the_report_names_the_benchmark_or_says_it_is_unknown(tiny_synth_dir, tmp_path):
    from reports.build import build_report

    cfg = config(tiny_synth_dir)
    run_grid(cfg, tmp_path / "runs", progress=False)
    bid = RunStore(tmp_path / "runs").read_benchmark()["benchmark_id"]
    out = build_report(tmp_path / "runs", tmp_path / "report")
    assert f"Benchmark id: {bid} (6 folds)" in (out / "leaderboard.md").read_text()
    assert bid in (out / "index.html").read_text()
    (tmp_path / "runs" / BENCHMARK_FILE).unlink()  # a store written before benchmark ids
    out = build_report(tmp_path / "runs", tmp_path / "report2")
    assert "Benchmark id: unknown" in (out / "leaderboard.md").read_text()
    assert bid not in (out / "index.html").read_text()
