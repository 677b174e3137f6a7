"""``eeg2img evaluate``: folders matched by stem, readable table, atomic JSON, one-line errors (exit 2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from metric_fixtures import perturbed, smooth_images
from PIL import Image

from eeg2img.cli import main
from eeg2img.weights import sha256_of

# fake_weights, offline_cache: tests/conftest.py; every test here runs with private caches and no network.
pytestmark = pytest.mark.usefixtures("metrics_private_environment")


def _write(folder: Path, images: np.ndarray, stems: list[str], ext: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, img in zip(stems, images):
        Image.fromarray(img).save(folder / f"{stem}{ext}", quality=95)
    return folder


@pytest.fixture
def dirs(tmp_path, offline_cache):
    ref = smooth_images(4, 32, seed=21)
    stems = ["n001_1", "n001_2", "n002_1", "n002_2"]
    return _write(tmp_path / "pred", perturbed(ref, seed=22), stems), _write(tmp_path / "ref", ref, stems, ".jpg"), \
        stems


def _fails(capsys, argv: list[str], *fragments: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eeg2img: error:") and "\n" not in err and "Traceback" not in err, err
    for f in fragments:
        assert f in err, err
    return err


def test_evaluate_writes_table_and_json(dirs, fake_weights, capsys, tmp_path):
    pred, ref, stems = dirs
    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps({s: f"an image of a {s}" for s in stems}))
    out = tmp_path / "out" / "scores.json"
    argv = ["evaluate", "--pred", str(pred), "--ref", str(ref), "--metrics", "ssim,pixcorr,fid,kid,is,nway,clip",
            "--backbone", "inception-tf", "--inception-weights", str(fake_weights.torchscript),
            "--resize", "torch-fidelity", "--clip-model", str(fake_weights.clip_config),
            "--clip-weights", str(fake_weights.clip_ckpt), "--captions", str(captions), "--json", str(out)]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    # Four images are below every set-level metric's minimum N: the table says so instead of a number.
    assert re.search(r"fid@inception-tf\s+N < min \(N=4\)", stdout)
    for name in ("ssim@pixels", "pixcorr@pixels", "fid@inception-tf", "kid@inception-tf", "is@inception-tf",
                 "nway@inception-tf", f"clip@{fake_weights.clip_name}", "nway@" + fake_weights.clip_name):
        assert name in stdout
    doc = json.loads(out.read_text())
    assert doc["n"] == 4 and not list(out.parent.glob(".*.tmp"))
    fid = doc["metrics"]["fid@inception-tf"]
    assert fid["n"] == 4 and fid["backbone"] == "inception-tf" and "resize=torch-fidelity" in fid["protocol"]
    assert fid["value"] is None and fid["status"] == "N < min" and doc["metrics"]["is@inception-tf"]["value"] is None
    assert doc["provenance"]["weights_sha256"]["inception-tf"] == sha256_of(fake_weights.torchscript)
    assert doc["provenance"]["resize"]["inception-tf"] == "torch-fidelity"
    assert doc["provenance"]["pred_dir"] == str(pred)
    ssim = doc["metrics"]["ssim@pixels"]
    assert ssim["ci95"][0] <= ssim["value"] <= ssim["ci95"][1]


def test_grayscale_rgba_and_16_bit_images_are_read(tmp_path, offline_cache, capsys):
    ref = smooth_images(3, 32, seed=5)
    pred = tmp_path / "pred"
    pred.mkdir()
    Image.fromarray(ref[0][..., 0]).save(pred / "a.png")  # 8-bit grey
    Image.fromarray(np.dstack([ref[1], np.full((32, 32), 128, np.uint8)])).save(pred / "b.png")  # RGBA
    Image.fromarray(ref[2][..., 1].astype(np.uint16) * 257).save(pred / "c.png")  # 16-bit grey
    refs = _write(tmp_path / "ref", ref, ["a", "b", "c"])
    out = tmp_path / "s.json"
    assert main(["evaluate", "--pred", str(pred), "--ref", str(refs), "--metrics", "ssim,pixcorr",
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["n"] == 3 and -1 <= doc["metrics"]["pixcorr@pixels"]["value"] <= 1


def test_proxy_backbone_is_opt_in(dirs, capsys, tmp_path):
    pred, ref, _ = dirs
    out = tmp_path / "p.json"
    assert main(["evaluate", "--pred", str(pred), "--ref", str(ref), "--metrics", "kid,nway",
                 "--backbone", "none", "--proxy-backbone", "--json", str(out)]) == 0
    assert set(json.loads(out.read_text())["metrics"]) == {"kid@proxy", "nway@proxy"}
    _fails(capsys, ["evaluate", "--pred", str(pred), "--ref", str(ref), "--metrics", "kid", "--backbone", "proxy"],
           "--proxy-backbone")


def test_mismatched_duplicate_and_missing_inputs(dirs, capsys, tmp_path):
    pred, ref, stems = dirs
    base = ["evaluate", "--pred", str(pred), "--ref", str(ref), "--metrics", "ssim"]
    (pred / "extra.png").write_bytes((pred / f"{stems[0]}.png").read_bytes())
    _fails(capsys, base, "do not match by file stem", "extra", "4 stimuli", "5 reconstructions")
    (pred / "extra.png").unlink()
    (ref / f"{stems[1]}.jpg").unlink()
    _fails(capsys, base, "do not match by file stem", stems[1])
    _write(ref, smooth_images(1, 32), [stems[1]], ".jpg")
    (pred / f"{stems[0]}.jpg").write_bytes((ref / f"{stems[0]}.jpg").read_bytes())
    _fails(capsys, base, "duplicate stem", f"{stems[0]}.jpg", f"{stems[0]}.png")
    (pred / f"{stems[0]}.jpg").unlink()
    _fails(capsys, ["evaluate", "--pred", str(tmp_path / "nowhere"), "--ref", str(ref)], "nowhere", "not found")
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails(capsys, ["evaluate", "--pred", str(empty), "--ref", str(ref)], "no images")


def test_unreadable_and_mixed_size_images(dirs, capsys, tmp_path):
    pred, ref, stems = dirs
    base = ["evaluate", "--pred", str(pred), "--ref", str(ref), "--metrics", "ssim"]
    Image.fromarray(smooth_images(1, 48)[0]).save(pred / f"{stems[2]}.png")
    _fails(capsys, base, str(pred), "differ in size", "--size")
    assert main(base + ["--size", "32"]) == 0
    capsys.readouterr()
    (pred / f"{stems[3]}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    _fails(capsys, base, f"{stems[3]}.png", "unreadable image")


def test_missing_weights_and_bad_options(dirs, capsys, tmp_path):
    pred, ref, stems = dirs
    base = ["evaluate", "--pred", str(pred), "--ref", str(ref)]
    _fails(capsys, base + ["--metrics", "fid"], "weights-inception-2015-12-05-6726825d.pth", "EEG2IMG_WEIGHTS",
           "inception-2015-12-05.pt")
    _fails(capsys, base + ["--metrics", "nway", "--backbone", "alexnet"], "alexnet-owt-7be5be79.pth",
           "--alexnet-weights")
    _fails(capsys, base + ["--metrics", "fid", "--inception-weights", str(tmp_path / "nope.pt")], "nope.pt")
    _fails(capsys, base + ["--metrics", "ssim,lpips"], "lpips", "choose from")
    caps = tmp_path / "caps.json"
    caps.write_text(json.dumps({s: "a cat" for s in stems}))
    _fails(capsys, base + ["--metrics", "clip", "--captions", str(caps)], "--clip-model")
    _fails(capsys, base + ["--metrics", "acc", "--backbone", "synth-cnn"], "--dataset")
    _fails(capsys, base + ["--resize", "nearest"], "--resize")


def test_captions_must_cover_every_stem(dirs, fake_weights, capsys, tmp_path):
    pred, ref, stems = dirs
    clip = ["--metrics", "clip", "--clip-model", str(fake_weights.clip_config), "--clip-weights",
            str(fake_weights.clip_ckpt)]
    base = ["evaluate", "--pred", str(pred), "--ref", str(ref), *clip]
    _fails(capsys, base, "--captions")
    partial = tmp_path / "caps.json"
    partial.write_text(json.dumps({stems[0]: "a cat"}))
    _fails(capsys, base + ["--captions", str(partial)], "caps.json", "no caption for 3 image(s)")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    _fails(capsys, base + ["--captions", str(broken)], "broken.json", "not valid JSON")
    tsv = tmp_path / "caps.tsv"
    tsv.write_text("".join(f"{s}\tan image of {s}\n" for s in stems))
    assert main(base + ["--captions", str(tsv)]) == 0
    assert f"clip@{fake_weights.clip_name}" in capsys.readouterr().out
