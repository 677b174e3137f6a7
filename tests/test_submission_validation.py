"""A submission is checked whole before anything is written: every refusal is one line naming the file and the fix."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from eeg2img.errors import UserError
from eeg2img.grid.config import parse_config
from eeg2img.grid.kit import write_kit
from eeg2img.grid.submission import read_submission

TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def kit_and_submission(tiny_synth_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("submission")
    cfg = parse_config({"datasets": [{"path": str(tiny_synth_dir / "eeg_synth.pth")}], "protocols": ["per-subject", "loso"],
                        "metrics": ["ssim"], "methods": {"floor-mean": {}}})
    kit = write_kit(cfg, base / "KIT", progress=False)
    sub = base / "SUB"
    subprocess.run([sys.executable, str(TESTS / "kit_ridge_submission.py"), str(kit), str(sub), "lab-ridge"], check=True)
    doc = json.loads((kit / "benchmark.json").read_text())
    tests = {(f["dataset"], f["protocol"], f["fold"]): f["test"] for f in doc["folds"]}
    return doc["benchmark_id"], tests, sub


@pytest.fixture
def sub(kit_and_submission, tmp_path):
    copy = tmp_path / "SUB"
    shutil.copytree(kit_and_submission[2], copy)
    return copy


def check(sub, kit_and_submission, reserved=frozenset()):
    bid, tests, _ = kit_and_submission
    return read_submission(sub, bid, tests, reserved)


def refused(sub, kit_and_submission, pattern, **kw):
    before = sorted(str(p) for p in sub.rglob("*"))
    with pytest.raises(UserError, match=pattern) as err:
        check(sub, kit_and_submission, **kw)
    assert "\n" not in str(err.value)
    assert sorted(str(p) for p in sub.rglob("*")) == before  # nothing written, nothing moved
    return str(err.value)


def toml(sub, **changes):
    path = sub / "submission.toml"
    lines = dict(line.split(" = ", 1) for line in path.read_text().splitlines())
    for k, v in changes.items():
        if v is None:
            lines.pop(k, None)
        else:
            lines[k] = v
    path.write_text("".join(f"{k} = {v}\n" for k, v in lines.items()))


def a_fold(sub):
    return next(p for p in sub.glob("*/*/*") if p.is_dir())


def test_a_good_submission_is_read_whole(sub, kit_and_submission):
    got = check(sub, kit_and_submission)
    bid, tests, _ = kit_and_submission
    assert got.name == "lab-ridge" and got.benchmark_id == bid and got.oracle is False
    assert got.metadata == {"authors": "a test lab"}
    assert list(got.folds) == list(tests)  # the benchmark's order
    for key, files in got.folds.items():
        assert list(files) == tests[key] and all(p.is_file() for p in files.values())


def test_a_submission_of_some_folds_lists_only_those(sub, kit_and_submission):
    shutil.rmtree(sub / "eeg_synth" / "loso")
    got = check(sub, kit_and_submission)
    assert {k[1] for k in got.folds} == {"per-subject"}


@pytest.mark.parametrize("value, pattern", [
    ('"0000"', r"submission\.toml: benchmark_id = '0000' is not this run store's"),
    (None, r"submission\.toml: benchmark_id = None is not"),
])
def test_the_benchmark_id_must_be_this_one(sub, kit_and_submission, value, pattern):
    toml(sub, benchmark_id=value)
    refused(sub, kit_and_submission, pattern)


@pytest.mark.parametrize("name", ['"../evil"', '"a b"', '"<b>x</b>"', '""', '"-x"', f'"{"a" * 65}"', "3"])
def test_odd_names_are_refused(sub, kit_and_submission, name):
    toml(sub, name=name)
    refused(sub, kit_and_submission, r"submission\.toml: name = .* is not a safe identifier")


def test_a_built_in_methods_name_is_refused(sub, kit_and_submission):
    toml(sub, name='"neuroimagen"')
    refused(sub, kit_and_submission, "is a built-in method's; choose another name", reserved={"neuroimagen"})


@pytest.mark.parametrize("key, value, pattern", [
    ("description", '"<script>alert(1)</script>"', "description must be plain text"),
    ("authors", '"a\\u0007b"', "authors must be plain text"),
    ("url", '"' + "u" * 501 + '"', "url must be plain text of at most 500"),
    ("code", "42", "code must be plain text"),
    ("oracle", '"no"', "oracle = 'no' must be true or false"),
    ("secret", '"x"', "unknown key 'secret'"),
])
def test_metadata_must_be_plain_and_known(sub, kit_and_submission, key, value, pattern):
    toml(sub, **{key: value})
    refused(sub, kit_and_submission, pattern)


def test_unreadable_or_missing_toml(sub, kit_and_submission):
    (sub / "submission.toml").write_text("name = [unclosed")
    refused(sub, kit_and_submission, r"submission\.toml: not valid TOML")
    (sub / "submission.toml").unlink()
    refused(sub, kit_and_submission, r"submission\.toml: missing; write it with name and benchmark_id")


def test_a_missing_trial_is_named(sub, kit_and_submission):
    fold = a_fold(sub)
    first = sorted(fold.glob("*.png"))[0]
    first.unlink()
    msg = refused(sub, kit_and_submission, r"no image for 1 of its \d+ test trial\(s\), e.g. .*\.png")
    assert first.name in msg


@pytest.mark.parametrize("extra", ["99999.png", "notes.txt", "train-trial", ".hidden.png"])
def test_an_extra_file_is_refused(sub, kit_and_submission, extra):
    fold = a_fold(sub)
    shutil.copy(sorted(fold.glob("*.png"))[0], fold / extra)
    refused(sub, kit_and_submission, rf"{extra.replace('.', chr(92) + '.')}: not <trial_id>\.png of a test trial")


def test_folders_that_are_not_folds_are_refused(sub, kit_and_submission):
    (sub / "eeg_synth" / "pooled").mkdir()
    refused(sub, kit_and_submission, r"pooled: not a protocol of this benchmark")
    shutil.rmtree(sub / "eeg_synth" / "pooled")
    (sub / "eeg_synth" / "loso" / "sub-09").mkdir()
    refused(sub, kit_and_submission, r"sub-09: not a fold of this benchmark")
    shutil.rmtree(sub / "eeg_synth" / "loso" / "sub-09")
    (sub / "README.txt").write_text("hi")
    refused(sub, kit_and_submission, r"README\.txt: not a dataset of this benchmark")
    (sub / "README.txt").unlink()
    empty = sub.parent / "EMPTY"
    empty.mkdir()
    shutil.copy(sub / "submission.toml", empty)
    refused(empty, kit_and_submission, "holds no fold folder")


def test_symbolic_links_are_refused(sub, kit_and_submission, tmp_path):
    fold = a_fold(sub)
    image = sorted(fold.glob("*.png"))[0]
    outside = tmp_path / "outside.png"
    shutil.move(image, outside)
    image.symlink_to(outside)
    refused(sub, kit_and_submission, r"\.png: a symbolic link; copy the image itself")
    image.unlink()
    shutil.move(outside, image)
    moved = tmp_path / "fold-elsewhere"
    shutil.move(fold, moved)
    fold.symlink_to(moved, target_is_directory=True)
    refused(sub, kit_and_submission, "a symbolic link; copy the file or folder itself")


def png_bytes(width: int, height: int, rows: bytes | None = None) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    raw = rows if rows is not None else b"".join(b"\x00" + bytes(width * 3) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_bombs_oversized_corrupt_and_disguised_images_are_refused(sub, kit_and_submission):
    image = sorted(a_fold(sub).glob("*.png"))[0]
    good = image.read_bytes()
    image.write_bytes(png_bytes(100_000, 100_000, rows=b"\x00"))  # declares 10¹⁰ pixels: never decoded
    refused(sub, kit_and_submission, "decompression bomb")
    image.write_bytes(png_bytes(5000, 2))
    refused(sub, kit_and_submission, r"5000×2 px, over 4096 px a side")
    image.write_bytes(good[: len(good) // 2])
    refused(sub, kit_and_submission, "unreadable image")
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image, format="JPEG")
    refused(sub, kit_and_submission, "a JPEG file named .png; write PNG images")
    Image.fromarray(np.zeros((32, 24, 3), np.uint8)).save(image, format="PNG")
    refused(sub, kit_and_submission, r"24×32 px where .* is 32×32; write every image of a fold square and at one size")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(image, format="PNG")  # grayscale converts: accepted
    assert check(sub, kit_and_submission).name == "lab-ridge"
