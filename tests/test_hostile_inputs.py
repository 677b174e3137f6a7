"""Hostile and careless inputs: each is one line and exit 2, or is shown inertly; nothing is half-written."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from metric_fixtures import smooth_images
from PIL import Image

from eeg2img.atomic import write_csv
from eeg2img.cli import main


def _one_line_error(capsys, argv, *fragments) -> str:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eeg2img: error:") and "\n" not in err and "Traceback" not in err, err
    for f in fragments:
        assert f in err, err
    return err


def _folders(tmp_path: Path, n: int = 3) -> tuple[Path, Path]:
    ref = smooth_images(n, 16, seed=3)
    for role in ("pred", "ref"):
        (tmp_path / role).mkdir()
        for i, img in enumerate(ref):
            Image.fromarray(img).save(tmp_path / role / f"s{i}.png")
    return tmp_path / "pred", tmp_path / "ref"


def _png_declaring(path: Path, width: int, height: int) -> None:
    """A few-byte PNG whose header declares ``width`` × ``height`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_refused_in_one_line_before_it_is_decoded(tmp_path, capsys, offline_cache):
    pred, ref = _folders(tmp_path)
    _png_declaring(pred / "s1.png", 20000, 20000)  # beyond PIL's own refusal
    assert (pred / "s1.png").stat().st_size < 200
    _one_line_error(capsys, ["evaluate", "--pred", pred, "--ref", ref, "--metrics", "ssim"], "s1.png",
                    "decompression bomb")
    _png_declaring(pred / "s1.png", 9000, 9000)  # PIL would only warn, then decode 81 M pixels
    _one_line_error(capsys, ["evaluate", "--pred", pred, "--ref", ref, "--metrics", "ssim"], "s1.png", "9000×9000",
                    "decompression bomb")
    _one_line_error(capsys, ["evaluate", "--pred", pred, "--ref", ref, "--metrics", "ssim", "--size", "16"],
                    "s1.png", "decompression bomb")


def test_a_fifo_or_a_looping_link_among_the_images_is_named_not_skipped(tmp_path, capsys, offline_cache):
    pred, ref = _folders(tmp_path)
    os.mkfifo(pred / "s9.png")
    _one_line_error(capsys, ["evaluate", "--pred", pred, "--ref", ref, "--metrics", "ssim"], "s9.png",
                    "not a regular image file")
    os.unlink(pred / "s9.png")
    os.symlink(pred / "loop.png", pred / "loop.png")
    _one_line_error(capsys, ["evaluate", "--pred", pred, "--ref", ref, "--metrics", "ssim"], "loop.png",
                    "not a regular image file")


@pytest.mark.parametrize("where", ["folder", "under-a-file"])
def test_json_output_that_cannot_be_written_fails_before_any_metric(tmp_path, capsys, offline_cache, where):
    pred, ref = _folders(tmp_path)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    target = tmp_path if where == "folder" else a_file / "scores.json"
    _one_line_error(capsys, ["evaluate", "--pred", pred, "--ref", ref, "--metrics", "ssim", "--json", target],
                    str(target if where == "folder" else a_file))
    assert capsys.readouterr().out == ""  # refused before the table was computed
    assert a_file.read_text() == "x"


@pytest.mark.parametrize("shape", [(2, 1, 1, 3), (2, 3, 7, 3), (2, 3, 3, 3)])
def test_tiny_channels_last_images_are_never_read_as_channels_first(shape):
    """A 1×1 or 3-pixel-tall RGB image has a size-1 or size-3 second axis: the layout is not guessed from it."""
    import torch

    from metrics.image_ops import as_image_batch

    images = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    batch = as_image_batch(images, "pred")
    assert tuple(batch.shape) == (shape[0], 3, shape[1], shape[2])
    np.testing.assert_allclose(batch.permute(0, 2, 3, 1).numpy(), images / 255, atol=1e-7)
    # torch tensors are channels-first by convention, and stay so
    chw = torch.rand(2, 3, 1, 3)
    assert tuple(as_image_batch(chw, "pred").shape) == (2, 3, 1, 3)


def test_ssim_of_a_three_pixel_tall_image_is_that_of_its_unambiguous_channels_first_tensor():
    import torch

    from metrics.ssim import ssim

    rng = np.random.default_rng(1)
    pred, ref = (rng.integers(0, 256, (2, 3, 9, 3), dtype=np.uint8) for _ in range(2))
    as_tensor = [torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255 for x in (pred, ref)]
    np.testing.assert_allclose(np.asarray(ssim(pred, ref, size=32)), np.asarray(ssim(*as_tensor, size=32)), atol=1e-6)


def test_csv_cells_that_would_start_a_formula_are_made_inert(tmp_path):
    frame = pd.DataFrame({"method": ["=HYPERLINK(\"http://x\")", "+1", "@SUM(A1)", "-cmd", "ok", "a=b"], "value": [1.0, -2.0, 3, 4, 5, 6]})
    write_csv(tmp_path / "t.csv", frame)
    back = pd.read_csv(tmp_path / "t.csv")
    assert list(back.method) == ["'=HYPERLINK(\"http://x\")", "'+1", "'@SUM(A1)", "'-cmd", "ok", "a=b"]
    assert list(back.value) == [1.0, -2.0, 3, 4, 5, 6]  # numbers are numbers, negative or not


def test_markdown_shows_html_in_names_instead_of_rendering_it():
    from reports.render import markdown_table

    table = markdown_table(["method"], [["<img src=x onerror=alert(1)>"], ["a|b &lt; c"], ["N < min"]])
    assert "<img" not in table and "&lt;img src=x onerror=alert(1)>" in table
    assert "a\\|b &amp;lt; c" in table and "N < min" in table


def test_an_infinite_metric_value_is_dropped_from_the_ranking_and_noted(tmp_path):
    from fake_runs import write_fake_runs

    from reports.load import load_runs

    root = write_fake_runs(tmp_path / "runs")
    cell = sorted(root.glob("*/per-subject/*/*/seed-0/*/metrics.parquet"))[0]
    rows = pd.read_parquet(cell)
    rows.loc[0, "value"] = np.inf
    rows.to_parquet(cell, index=False)
    runs = load_runs(root)
    assert np.isfinite(runs.results["value"]).all()
    assert any("infinite value left out" in n for n in runs.notes)


def test_weights_that_are_not_the_official_file_are_warned_about_on_stdout(tmp_path, capsys, monkeypatch):
    from eeg2img import weights as W

    monkeypatch.setenv("EEG2IMG_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    path.write_bytes(b"not the official file")
    record = W.weights_record("alexnet", path)
    assert record["official"] is False
    out = capsys.readouterr().out
    assert str(path) in out and "not the official" in out
    W.weights_record("alexnet", path)
    assert capsys.readouterr().out == ""  # once per file


def test_a_method_that_cannot_fit_the_data_is_one_line_and_leaves_no_cell(tmp_path, capsys):
    """brain2image-vae's LDA on 3 training trials of 3 classes: sklearn's ValueError was a traceback."""
    from eeg2img.datasets.synthetic import generate_synthetic

    generate_synthetic(tmp_path / "d", subjects=2, classes=3, images_per_class=3, image_size=16, progress=False)
    config = tmp_path / "g.toml"
    config.write_text(f'protocols = ["per-subject"]\nmetrics = ["ssim"]\n[[datasets]]\npath = "{tmp_path / "d"}"\n'
                      '[methods."brain2image-vae"]\nsteps = 5\n')
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.strip() and not line.startswith("grid:")]  # the progress bar shares stderr
    assert len(errors) == 1 and errors[0].startswith("eeg2img: error:") and "more trials than classes" in errors[0], err
    assert "Traceback" not in err
    assert not list((tmp_path / "runs").glob("*/*")), "a failed cell left files behind"
