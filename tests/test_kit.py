"""``eeg2img kit``: the benchmark's folds for an outside lab, with the run store's benchmark id and no test labels."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eeg2img.cli import main
from eeg2img.errors import UserError
from eeg2img.grid.config import parse_config
from eeg2img.grid.kit import write_kit
from eeg2img.grid.runner import _folds, _load, plan, run_grid
from eeg2img.runstore import RunStore

TESTS = Path(__file__).parent
SUITE_PACKAGES = ("eeg2img", "metrics", "reconstruct", "baselines", "reports")


def config(dataset: Path, seeds=(0,)):
    return parse_config({"datasets": [{"path": str(dataset)}], "protocols": ["per-subject", "loso"],
                         "metrics": ["ssim", "pixcorr"], "seeds": list(seeds), "methods": {"floor-mean": {}}})


@pytest.fixture(scope="module")
def kit(tiny_synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("kit") / "KIT"
    return write_kit(config(tiny_synth_dir / "eeg_synth.pth"), out, progress=False)


def test_the_kit_names_the_run_stores_benchmark_and_every_fold_exactly(kit, tiny_synth_dir, tmp_path):
    cfg = config(tiny_synth_dir / "eeg_synth.pth")
    run_grid(cfg, tmp_path / "runs", progress=False)
    doc = json.loads((kit / "benchmark.json").read_text())
    assert doc["benchmark_id"] == RunStore(tmp_path / "runs").read_benchmark()["benchmark_id"]
    from eeg2img.digest import document_digest

    assert document_digest(doc["identity"]) == doc["benchmark_id"]  # the kit carries what its id hashes
    assert len(doc["folds"]) == 6
    dataset = _load(str(tiny_synth_dir / "eeg_synth.pth"), ())
    job = next(j for j in plan(cfg, tmp_path) if j.protocol == "loso")
    for f in doc["folds"]:
        fold = _folds(job.dataset_path, job.dataset_options, f["protocol"], 0,
                      job.split_options if f["protocol"] == "loso" else (("subjects", None),))[f["fold"]]
        assert f["fingerprint"] == fold.fingerprint
        assert f["train"] == [str(t) for t in dataset.trial_ids[fold.train]]
        assert sorted(f["test"]) == sorted(str(t) for t in dataset.trial_ids[fold.test])
        assert not set(f["test"]) & (set(f["train"]) | set(f["val"]))


def test_test_files_hold_eeg_and_trial_ids_only_and_load_without_pickle(kit, tiny_synth):
    doc = json.loads((kit / "benchmark.json").read_text())
    by_id = {str(t): i for i, t in enumerate(tiny_synth.trial_ids)}
    for f in doc["folds"]:
        test = np.load(kit / f["test_file"], allow_pickle=False)
        assert sorted(test.files) == ["eeg", "trial_ids"]  # no label, image id or subject
        assert list(test["trial_ids"]) == f["test"]
        rows = [by_id[t] for t in f["test"]]
        np.testing.assert_array_equal(test["eeg"], tiny_synth.eeg[rows])
        assert rows != sorted(rows)  # file order (which carries the block, so the class) is shuffled away
        train = np.load(kit / f["train_file"], allow_pickle=False)
        assert {"eeg", "labels", "image_ids", "trial_ids", "subjects", "captions", "class_names"} <= set(train.files)
        np.testing.assert_array_equal(train["labels"], tiny_synth.labels[[by_id[t] for t in f["train"]]])
        # the stimuli copied are exactly those of the training and validation trials
        shown = {str(tiny_synth.image_ids[by_id[t]]) for t in f["train"] + f["val"]}
        assert {p.stem for p in (kit / f["images"]).glob("*.png")} == shown
    readme = (kit / "README.md").read_text()
    assert doc["benchmark_id"] in readme and "SUB/<dataset>/<protocol>/<fold>/<trial_id>.png" in readme


def test_a_lab_reads_the_kit_with_numpy_alone_and_writes_a_submission(kit, tmp_path):
    # the suite's packages are made unimportable: the lab's script must not need them
    block = f"import sys; sys.modules.update(dict.fromkeys({SUITE_PACKAGES!r})); sys.argv = sys.argv[1:]; " \
            f"exec(compile(open(sys.argv[0]).read(), sys.argv[0], 'exec'))"
    sub = tmp_path / "SUB"
    result = subprocess.run([sys.executable, "-c", block, str(TESTS / "kit_ridge_submission.py"), str(kit), str(sub),
                             "lab-ridge"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads((kit / "benchmark.json").read_text())
    assert f'benchmark_id = "{doc["benchmark_id"]}"' in (sub / "submission.toml").read_text()
    for f in doc["folds"]:
        pngs = sorted(p.stem for p in (sub / f["dataset"] / f["protocol"] / f["fold"]).glob("*.png"))
        assert pngs == sorted(f["test"])
    from eeg2img.datasets.base import read_rgb

    image = read_rgb(next(sub.rglob("*.png")))
    assert image.shape == (32, 32, 3) and image.std() > 0


def test_a_real_datasets_images_are_referenced_not_copied(tiny_synth_dir, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    for name in ("eeg_synth.pth", "captions.json"):
        shutil.copy(tiny_synth_dir / name, real / name)
    shutil.copytree(tiny_synth_dir / "images", real / "images")  # no synth_meta.json: not generated here
    out = write_kit(config(real / "eeg_synth.pth"), tmp_path / "KIT", progress=False)
    doc = json.loads((out / "benchmark.json").read_text())
    assert all(f["image_root"] == str(real / "images") and "images" not in f for f in doc["folds"])
    assert not list(out.rglob("*.png"))


def test_bad_kits_fail_in_one_line_and_write_nothing(tiny_synth_dir, tmp_path, capsys):
    with pytest.raises(UserError, match=r"seeds \[0, 1\]; a kit describes one split per fold"):
        write_kit(config(tiny_synth_dir / "eeg_synth.pth", seeds=(0, 1)), tmp_path / "KIT", progress=False)
    assert not (tmp_path / "KIT").exists()
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    toml = tmp_path / "grid.toml"
    toml.write_text(f'protocols = ["loso"]\nmetrics = ["ssim"]\n[[datasets]]\npath = "{tiny_synth_dir / "eeg_synth.pth"}"\n'
                    '[methods.floor-mean]\n')
    assert main(["kit", "--config", str(toml), "--out", str(precious), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists and is not a kit" in err[0]
    assert [p.name for p in precious.iterdir()] == ["thesis.tex"]
    # a kit is replaced whole by the next one, and no staging folder is left behind
    assert main(["kit", "--config", str(toml), "--out", str(tmp_path / "KIT"), "--no-progress"]) == 0
    assert main(["kit", "--config", str(toml), "--out", str(tmp_path / "KIT"), "--no-progress"]) == 0
    assert len(json.loads((tmp_path / "KIT" / "benchmark.json").read_text())["folds"]) == 3
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
