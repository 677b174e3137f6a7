"""The command-line contract: names, JSON shapes, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from eeg2img.cli import main


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert lines[0].startswith("eeg2img: error: ")
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_data_info_json_shape(capsys, tiny_synth_dir):
    code, out, _ = run_cli(capsys, "data", "info", tiny_synth_dir / "eeg_synth.pth", "--json")
    assert code == 0
    info = json.loads(out)
    assert set(info) == {"n_trials", "subjects", "n_classes", "n_images", "n_channels", "n_samples", "provenance"}
    assert info["provenance"]["segments_kept"] == info["n_trials"]  # 500-sample synthetic trials: none dropped
    assert info["subjects"] == [1, 2, 3]
    assert info["n_channels"] == 128 and info["n_samples"] == 440
    assert info["n_trials"] == 3 * info["n_images"]  # every subject saw every image once


@pytest.mark.parametrize("protocol", ["per-subject", "loso", "pooled", "official"])
def test_splits_json_contract(capsys, tiny_synth_dir, tiny_synth, protocol):
    code, out, _ = run_cli(capsys, "splits", "--dataset", tiny_synth_dir / "eeg_synth.pth", "--protocol", protocol, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["protocol"] == protocol
    expected = {"per-subject": 3, "loso": 3, "pooled": 1, "official": 1}[protocol]
    assert len(doc["folds"]) == expected
    for fold in doc["folds"]:
        assert set(fold) == {"name", "train", "val", "test", "fingerprint"}
        train, test = set(fold["train"]), set(fold["test"])
        assert train and test and not train & test
        assert max(train | test) < len(tiny_synth)
        images = lambda idx: set(tiny_synth.image_ids_[sorted(idx)])  # noqa: E731
        assert not images(train) & images(test)


def test_splits_are_seeded(capsys, tiny_synth_dir):
    args = ("splits", "--dataset", tiny_synth_dir / "eeg_synth.pth", "--protocol", "pooled", "--json", "--seed")
    fp = lambda s: json.loads(run_cli(capsys, *args, s)[1])["folds"][0]["fingerprint"]  # noqa: E731
    assert fp(1) == fp(1) != fp(2)


def test_unknown_protocol_and_subject(capsys, tiny_synth_dir):
    path = tiny_synth_dir / "eeg_synth.pth"
    code, _, err = run_cli(capsys, "splits", "--dataset", path, "--protocol", "random")
    assert_one_line_error(code, err, "unknown protocol")
    code, _, err = run_cli(capsys, "splits", "--dataset", path, "--protocol", "loso", "--subjects", "1,9")
    assert_one_line_error(code, err, "unknown subject 9")


def test_missing_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "data", "info", tmp_path / "nope.pth")
    assert_one_line_error(code, err, "nope.pth")


def test_not_a_dataset(capsys, tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"layer.weight": torch.zeros(2, 2)}, path)
    code, _, err = run_cli(capsys, "data", "info", path)
    assert_one_line_error(code, err, str(path))


def test_truncated_file(capsys, tiny_synth_dir, tmp_path):
    data = (tiny_synth_dir / "eeg_synth.pth").read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) // 2])
    code, _, err = run_cli(capsys, "data", "info", path)
    assert_one_line_error(code, err, str(path))


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_pickle_carrying_code_is_refused_not_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    torch.save({"dataset": [_Exploit()], "labels": ["a"], "images": ["x"]}, path)
    code, _, err = run_cli(capsys, "data", "info", path)
    assert_one_line_error(code, err, str(path))
    assert not (tmp_path / "pwned").exists()
    npy = tmp_path / "things" / "sub-01" / "preprocessed_eeg_training.npy"
    npy.parent.mkdir(parents=True)
    with open(npy, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        pickle.dump(_Exploit(), f)
    code, _, err = run_cli(capsys, "data", "info", tmp_path / "things")
    assert_one_line_error(code, err)
    assert not (tmp_path / "pwned").exists()


def _write_cvpr40(path, eeg_list):
    items = [{"eeg": e, "label": 0, "image": 0, "subject": 1} for e in eeg_list]
    torch.save({"dataset": items, "labels": ["n00000001"], "images": ["n00000001_1"]}, path)


def test_wrong_shapes_and_nan(capsys, tmp_path):
    bad_shape = tmp_path / "shape.pth"
    _write_cvpr40(bad_shape, [torch.zeros(128, 500), torch.zeros(64, 500)])
    code, _, err = run_cli(capsys, "data", "info", bad_shape)
    assert_one_line_error(code, err, str(bad_shape))
    nan = tmp_path / "nan.pth"
    eeg = torch.zeros(128, 500)
    eeg[3, 100] = float("nan")
    _write_cvpr40(nan, [torch.zeros(128, 500), eeg])
    code, _, err = run_cli(capsys, "data", "info", nan)
    assert_one_line_error(code, err, str(nan))


def test_bad_synth_arguments_write_nothing(capsys, tmp_path):
    out = tmp_path / "synth"
    code, _, err = run_cli(capsys, "data", "synth", "--out", out, "--subjects", "0")
    assert_one_line_error(code, err, "--subjects")
    code, _, err = run_cli(capsys, "data", "synth", "--out", out, "--image-size", "4")
    assert code == 2 and "Traceback" not in err
    assert not out.exists()


def test_console_script_exit_code(tmp_path):
    exe = Path(sys.executable).with_name("eeg2img")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "eeg2img.cli"]
    result = subprocess.run([*cmd, "data", "info", str(tmp_path / "missing.pth")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
