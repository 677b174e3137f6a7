"""`eeg2img report RUNS_DIR --out DIR` end to end: files, numbers, self-contained HTML, headless Chromium, bad input."""

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from fake_runs import write_fake_runs
from PIL import Image

from eeg2img.cli import main

METHODS = ["neuroimagen", "latent-ridge", "floor-mean", "oracle-stimulus"]
SSIM = "SSIM ↑ [pixels, 425px, grey]"
FID = "FID ↓ [synth-cnn (substitute), 128-d]"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    runs = write_fake_runs(base / "runs", protocols=("per-subject", "loso", "pooled"))
    out = base / "out"
    assert main(["report", str(runs), "--out", str(out), "--n-boot", "500", "--grid-trials", "3"]) == 0
    return runs, out


def test_writes_every_output_and_no_temporary_files(report):
    _, out = report
    names = {p.name for p in out.iterdir()}
    assert {"index.html", "leaderboard.md", "leaderboard.csv", "per_subject.csv", "cross_subject_gap.csv",
            "significance.csv"} <= names
    pngs = {n for n in names if n.endswith(".png")}
    assert pngs == {"per-subject-scores_synth.png", "subject-vs-loso_synth.png", "metric-correlations_synth.png",
                    "reconstructions_synth.png"}
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(".")]
    for name in pngs:
        with Image.open(out / name) as im:
            arr = np.asarray(im.convert("RGB"))
        assert arr.std() > 5  # drawn, not blank


def test_leaderboard_csv_numbers_equal_pandas_aggregates(report):
    runs, out = report
    raw = pd.read_csv(runs / "results.csv")
    board = pd.read_csv(out / "leaderboard.csv")
    unit = raw.groupby(["protocol", "method", "metric", "fold", "subject"])["value"].mean()
    expected = unit.groupby(level=[0, 1, 2]).mean()
    for label, metric in ((SSIM, "ssim"), ("PixCorr ↑ [pixels, 425px, RGB]", "pixcorr")):
        got = board.set_index(["protocol", "method"])[label]
        want = expected.xs(metric, level="metric")
        np.testing.assert_allclose(got.loc[want.index], want, rtol=1e-9)
        assert (board[f"{label} ci_low"] <= board[label]).all() and (board[label] <= board[f"{label} ci_high"]).all()
        assert set(board[f"{label} ci_basis"]) == {"subjects×folds"}
    # The set-level column is the pooled table's value over the whole test set, with its pooled-trials CI.
    pooled = pd.read_csv(runs / "set_level.csv").set_index(["protocol", "method"])
    got = board.set_index(["protocol", "method"])
    np.testing.assert_allclose(got.loc[pooled.index, FID], pooled["value"], rtol=1e-9)
    np.testing.assert_allclose(got.loc[pooled.index, f"{FID} ci_low"], pooled["ci_low"], rtol=1e-9)
    assert set(board[f"{FID} ci_basis"]) == {"trials (pooled test set)"} and set(board[f"{FID} n"]) == {60}
    assert sorted(board["method"].unique()) == sorted(METHODS)
    assert dict(zip(board["method"], board["kind"])) == {"neuroimagen": "method", "latent-ridge": "method",
                                                          "floor-mean": "floor", "oracle-stimulus": "oracle"}
    assert len(board) == 3 * len(METHODS)  # method × protocol; no published rows for synthetic data
    best = board[board[f"{SSIM} mark"] == "best"]
    assert set(best["method"]) == {"neuroimagen"} and len(best) == 3


def test_markdown_and_per_subject_csv(report):
    runs, out = report
    md = (out / "leaderboard.md").read_text()
    assert f"| protocol | method | kind | {SSIM} |" in md
    assert FID in md and "substitute backbone" in md
    assert re.search(r"\| per-subject \| neuroimagen \| method \| \*\*0\.\d+ \[0\.\d+, 0\.\d+\]\*\* \|", md)
    assert "| oracle |" in md and "| floor |" in md
    subj = pd.read_csv(out / "per_subject.csv")
    raw = pd.read_csv(runs / "results.csv")
    want = raw[raw["metric"] == "ssim"].groupby(["protocol", "method", "subject"])["value"].mean()
    np.testing.assert_allclose(subj.set_index(["protocol", "method", "subject"])[SSIM].loc[want.index], want)


def test_html_is_self_contained(report):
    _, out = report
    html = (out / "index.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?https?:", html) and "@import" not in html
    assert "<script src" not in html and '<link rel="stylesheet"' not in html
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) == 4
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            assert im.format == "PNG" and im.size[0] > 100


def test_html_marks_kinds_substitutes_and_provenance(report):
    _, out = report
    html = (out / "index.html").read_text()
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", html)
    assert all("(substitute)" in h for h in headers if "synth-cnn" in h)
    assert sum(FID in h for h in headers) >= 1  # the leaderboard (no subject reaches FID's minimum N alone)
    assert 'class="badge oracle"' in html and 'class="badge floor"' in html
    assert "reported, not reproduced" in html  # the legend; no published row for synthetic data
    assert "EEGStyleGAN" not in html and "Lan et al." not in html
    for needle in ("0123456789abcdef", "split-loso-sub-02", "ab" * 32, "data-synth", "cpu:x86_64", "2.4.0"):
        assert needle in html
    assert "Cross-subject gap" in html and 'id="cross-subject-gap"' in html
    assert "sign-flip permutation" in html


def test_reconstruction_grid_finds_the_stimuli(report):
    _, out = report
    html = (out / "index.html").read_text()
    assert "not found under image_root" not in html
    with Image.open(out / "reconstructions_synth.png") as im:
        w, h = im.size
    # Stimulus row + one row per method, 3 trials from the pooled fold.
    assert h > (len(METHODS) + 1) * 96 and w > 3 * 96
    assert "pooled, fold pooled" in html


def test_published_numbers_appear_beside_ours_for_eeg_cvpr40_pooled(tmp_path):
    # One protocol only: also checks that the plots cope with a single protocol and no LOSO pairs.
    runs = write_fake_runs(tmp_path / "runs", dataset="eeg_5_95_std", protocols=("pooled",),
                           methods={"neuroimagen": (0.3, False), "floor-mean": (0.0, False)})
    out = tmp_path / "out"
    assert main(["report", str(runs), "--out", str(out), "--n-boot", "200"]) == 0
    pngs = {p.name for p in out.glob("*.png")}
    assert pngs == {"per-subject-scores_eeg_5_95_std.png", "metric-correlations_eeg_5_95_std.png",
                    "reconstructions_eeg_5_95_std.png"}
    board = pd.read_csv(out / "leaderboard.csv")
    reported = board[board["kind"] == "reported, not reproduced"]
    assert set(reported["protocol"]) == {"pooled"}
    assert {"NeuroImagen", "NeuroImagen (saliency only)"} <= set(reported["method"])
    assert "GWIT" not in set(reported["method"])  # it published ACC/IS/FID only; our FID is a substitute
    ni = reported[reported["method"] == "NeuroImagen"].iloc[0]
    assert ni[SSIM] == 0.249 and "Lan et al." in ni["source"]
    assert np.isnan(ni[f"{SSIM} ci_low"])
    html = (out / "index.html").read_text()
    assert "NeuroImagen" in html and "reported, not reproduced" in html


def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such runs directory" in err
    runs = write_fake_runs(tmp_path / "runs", protocols=("pooled",), methods={"floor-mean": (0.0, False)})
    (tmp_path / "file").write_text("x")
    assert main(["report", str(runs), "--out", str(tmp_path / "file")]) == 2
    assert "not a directory" in capsys.readouterr().err
    next(runs.rglob("samples.parquet")).write_bytes(b"garbage")
    assert main(["report", str(runs), "--out", str(tmp_path / "out2"), "--ci", "trials"]) == 2
    err = capsys.readouterr().err
    assert "samples.parquet: unreadable" in err and err.count("\n") == 1
    assert not (tmp_path / "out2").exists()  # everything is computed before the first write
    next(runs.rglob("samples.parquet")).unlink()
    next(runs.rglob("trials.parquet")).write_bytes(b"garbage")
    assert main(["report", str(runs), "--out", str(tmp_path / "out2")]) == 2
    assert "trials.parquet: unreadable" in capsys.readouterr().err and not (tmp_path / "out2").exists()
    assert main(["report", str(runs), "--out", str(tmp_path / "out3"), "--n-boot", "5"]) == 2


# --- headless Chromium ---------------------------------------------------------------------------------------
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"]


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium); the HTML render test needs one")


def run_chromium(args, tmp_path, url):
    cmd = [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_page_renders_in_headless_chromium(report, tmp_path):
    _, out = report
    url = (out / "index.html").as_uri()
    dom = run_chromium(["--dump-dom"], tmp_path, url + "#sort=leaderboard-0:2:desc")
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []  # no JavaScript errors (or any console output)
    body = re.search(r"<body([^>]*)>", dom.stdout).group(1)
    assert 'data-images-loaded="4/4"' in body  # every embedded image decoded
    assert 'data-sortable-tables="' in body and 'data-sortable-tables="0"' not in body
    table = dom.stdout[dom.stdout.index('id="leaderboard-0"'):]
    table = table[: table.index("</table>")]
    body_rows = table[table.index("<tbody>"):].split("<tr")[1:]
    ssim_sorted = [float(re.findall(r'data-sort="([^"]*)"', row)[2]) for row in body_rows]
    assert len(ssim_sorted) == 12 and ssim_sorted == sorted(ssim_sorted, reverse=True)
    assert 'aria-sort="descending"' in table

    shot = tmp_path / "shot.png"
    res = run_chromium([f"--screenshot={shot}", "--window-size=1280,1600"], tmp_path, url)
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    with Image.open(shot) as im:
        arr = np.asarray(im.convert("L"), dtype=float)
    assert arr.shape == (1600, 1280)
    non_white = (arr < 240).mean()
    assert 0.02 < non_white < 0.9 and arr.std() > 10  # text and table rules drawn, not a blank page
