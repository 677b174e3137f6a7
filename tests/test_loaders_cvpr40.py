"""EEG-CVPR40 loader, official split files and the load_dataset dispatcher, on tiny files in the real format."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from eeg2img.datasets import load_cvpr40, load_dataset, load_official_split
from eeg2img.datasets.base import DatasetWarning
from eeg2img.datasets.cvpr40 import CVPR40_CLASS_NAMES, read_official_split
from eeg2img.errors import LeakageError, UserError

WNIDS = ["n02389026", "n02690373", "n07753592", "n99999999"]  # the last is not a CVPR40 class
SUBJECTS = (1, 2, 3)
IMAGES_PER_CLASS = 2
CHANNELS = 4
# cycle of segment lengths: 440 (< min_len), 455 (passes the filter but cannot hold the 20:460 window),
# 601 (> max_len) are dropped; 500, 470 and 600 are kept
LENGTH_CYCLE = (500, 440, 455, 470, 600, 601)
KEPT_LENGTHS = {500, 470, 600}


def signal(i: int, length: int, channels: int = CHANNELS) -> torch.Tensor:
    """Values that encode (trial, channel, sample) exactly in float32, so crops can be checked."""
    c = torch.arange(channels, dtype=torch.float32)[:, None]
    t = torch.arange(length, dtype=torch.float32)[None, :]
    return i * 100_000 + c * 1000 + t


def stem(c: int, k: int) -> str:
    return f"{WNIDS[c]}_{100 + k}"


def build_raw(lengths=None, with_block=False) -> dict:
    """Each subject sees each class as one block of its images, as in the recording."""
    images = [stem(c, k) for c in range(len(WNIDS)) for k in range(IMAGES_PER_CLASS)]
    items = []
    for s in SUBJECTS:
        for c in range(len(WNIDS)):
            for k in range(IMAGES_PER_CLASS):
                i = len(items)
                length = lengths[i] if lengths is not None else LENGTH_CYCLE[i % len(LENGTH_CYCLE)]
                item = {"eeg": signal(i, length), "label": c, "image": images.index(stem(c, k)), "subject": s}
                if with_block:
                    item["block"] = 10 * s + c
                items.append(item)
    return {"dataset": items, "labels": list(WNIDS), "images": images}


def write_raw(path: Path, raw: dict, **save_kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(raw, path, **save_kwargs)
    return path


def kept_indices(raw: dict, min_len=450, max_len=600, stop=460) -> list[int]:
    return [
        i
        for i, it in enumerate(raw["dataset"])
        if min_len <= it["eeg"].shape[1] <= max_len and it["eeg"].shape[1] >= stop
    ]


@pytest.fixture()
def cvpr(tmp_path) -> tuple[Path, dict]:
    raw = build_raw()
    return write_raw(tmp_path / "eeg_5_95_std.pth", raw), raw


# --- loading ------------------------------------------------------------------------------------


def test_window_filter_and_fields(cvpr):
    path, raw = cvpr
    ds = load_cvpr40(path)
    keep = kept_indices(raw)
    assert len(keep) == 12 and len(ds) == len(keep)
    assert ds.eeg.dtype == np.float32 and ds.eeg.shape == (len(keep), CHANNELS, 440)
    for row, i in enumerate(keep):
        np.testing.assert_array_equal(ds.eeg[row], signal(i, raw["dataset"][i]["eeg"].shape[1])[:, 20:460].numpy())
        item = raw["dataset"][i]
        assert ds.trial_ids[row] == f"{i:05d}"
        assert ds.labels[row] == item["label"]
        assert ds.image_ids[row] == raw["images"][item["image"]]
        assert ds.subjects[row] == item["subject"]
    # without a block key, the block is the class (one contiguous block per class and subject)
    np.testing.assert_array_equal(ds.blocks, ds.labels)
    assert ds.class_names == ("sorrel", "airliner", "banana", "n99999999")
    assert ds.label_caption(0) == "an image of a sorrel"
    assert ds.sfreq == 1000.0 and ds.name == "eeg_5_95_std" and ds.source == path
    assert ds.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ds.image_root is None and ds.latents is None and dict(ds.captions_) == {}


def test_block_key_is_used_when_present(tmp_path):
    raw = build_raw(with_block=True)
    ds = load_cvpr40(write_raw(tmp_path / "d.pth", raw), name="blocks")
    expected = [raw["dataset"][int(t)]["block"] for t in ds.trial_ids]
    np.testing.assert_array_equal(ds.blocks, expected)
    assert ds.name == "blocks"


def test_legacy_serialization_gives_same_dataset(tmp_path, cvpr):
    path, raw = cvpr
    legacy = write_raw(tmp_path / "legacy" / "eeg.pth", raw, _use_new_zipfile_serialization=False)
    a, b = load_cvpr40(path), load_cvpr40(legacy)
    np.testing.assert_array_equal(a.eeg, b.eeg)
    np.testing.assert_array_equal(a.trial_ids, b.trial_ids)
    assert a.fingerprint != b.fingerprint  # different bytes, different source


def test_float64_and_custom_window(tmp_path):
    raw = build_raw(lengths=[500] * 24)
    for it in raw["dataset"]:
        it["eeg"] = it["eeg"].double()
    ds = load_cvpr40(write_raw(tmp_path / "d.pth", raw), window=(0, 100))
    assert ds.eeg.dtype == np.float32 and ds.n_samples == 100
    np.testing.assert_array_equal(ds.eeg[5], signal(5, 500)[:, :100].numpy())


@settings(max_examples=15, deadline=None)
@given(
    lengths=st.lists(st.integers(400, 700), min_size=24, max_size=24),
    min_len=st.integers(400, 650),
    span=st.integers(0, 150),
)
def test_length_filter_property(lengths, min_len, span):
    raw = build_raw(lengths=lengths)
    max_len = min_len + span
    expected = kept_indices(raw, min_len, max_len)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_raw(Path(tmp) / "d.pth", raw)
        if not expected:
            with pytest.raises(UserError, match="no segment has"):
                load_cvpr40(path, min_len=min_len, max_len=max_len)
            return
        ds = load_cvpr40(path, min_len=min_len, max_len=max_len)
    assert [int(t) for t in ds.trial_ids] == expected
    # trial ids survive filtering: each row still holds the segment it names
    assert [int(v) // 100_000 for v in ds.eeg[:, 0, 0]] == expected
    # every dropped segment is counted once, under its first reason
    too_short = sum(L < min_len for L in lengths)
    too_long = sum(L > max_len for L in lengths if L >= min_len)
    assert ds.provenance["segments_dropped"] == {
        "shorter_than_min_len": too_short,
        "shorter_than_window": len(lengths) - len(expected) - too_short - too_long,
        "longer_than_max_len": too_long,
    }
    assert ds.provenance["segments_kept"] == len(expected) and ds.provenance["segments_in_file"] == 24


# --- dropped segments: counted by reason, shown by `eeg2img data info` --------------------------------

# two of each kind per subject: < 450, 450 ≤ L < 460 (the peers keep these with a 430-439 window), > 600, kept
EVERY_KIND = (449, 450, 459, 601, 460, 600, 300, 700)


def test_dropped_segments_are_counted_by_reason(tmp_path):
    raw = build_raw(lengths=list(EVERY_KIND) * 3)
    ds = load_cvpr40(write_raw(tmp_path / "eeg.pth", raw))
    assert len(ds) == 6 and ds.n_samples == 440  # 460 and 600 kept, each with the full window
    assert ds.provenance == {
        "segments_in_file": 24,
        "segments_kept": 6,
        "segments_dropped": {"shorter_than_min_len": 6, "shorter_than_window": 6, "longer_than_max_len": 6},
        "length_filter": {"min_len": 450, "max_len": 600, "window": [20, 460]},
    }
    # a shorter window moves 450 ≤ L < 460 back in; a higher min_len moves them to "shorter than min_len"
    short = load_cvpr40(tmp_path / "eeg.pth", window=(20, 450))
    assert len(short) == 12 and short.provenance["segments_dropped"]["shorter_than_window"] == 0
    strict = load_cvpr40(tmp_path / "eeg.pth", min_len=455)
    assert strict.provenance["segments_dropped"] == {
        "shorter_than_min_len": 9, "shorter_than_window": 3, "longer_than_max_len": 6}


def test_data_info_reports_the_dropped_segments(tmp_path, capsys):
    from eeg2img.cli import main

    path = write_raw(tmp_path / "eeg.pth", build_raw(lengths=list(EVERY_KIND) * 3))
    assert main(["data", "info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_trials"] == 6 and info["provenance"]["segments_dropped"]["shorter_than_window"] == 6
    assert main(["data", "info", str(path)]) == 0
    rows = dict(line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines())
    assert rows["segments_in_file"] == "24" and rows["segments_kept"] == "6"
    assert rows["segments_dropped.shorter_than_window"] == "6"
    assert rows["segments_dropped.shorter_than_min_len"] == rows["segments_dropped.longer_than_max_len"] == "6"


# --- fingerprint: cached under $EEG2IMG_CACHE, never beside the data ------------------------------


def test_fingerprint_is_cached_outside_the_data_folder_by_size_and_mtime(cvpr, tmp_path_factory, monkeypatch):
    from eeg2img import digest

    cache = tmp_path_factory.mktemp("digest-cache")
    monkeypatch.setenv("EEG2IMG_CACHE", str(cache))
    path, _ = cvpr
    before = sorted(p.name for p in path.parent.iterdir())
    real = hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_cvpr40(path).fingerprint == real
    assert sorted(p.name for p in path.parent.iterdir()) == before  # nothing written beside the dataset
    [record_path] = (cache / "sha256").iterdir()
    record = json.loads(record_path.read_text())
    assert record["sha256"] == real and record["size"] == path.stat().st_size
    # a record that matches path, size, mtime and inode is trusted (this is what saves hashing 3 GB again)
    record_path.write_text(json.dumps({**record, "sha256": "f" * 64}))
    digest._MEMO.clear()
    assert load_cvpr40(path).fingerprint == "f" * 64
    # a changed mtime invalidates it
    st_ = path.stat()
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1_000_000))
    assert load_cvpr40(path).fingerprint == real


def test_fingerprint_without_a_writable_cache(cvpr, monkeypatch):
    from eeg2img import atomic

    path, _ = cvpr

    def refuse(*_args, **_kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr(atomic, "write_text", refuse)
    assert load_cvpr40(path).fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not path.with_name(path.name + ".sha256.json").exists()


# --- stimuli, captions, latents -------------------------------------------------------------------


def test_images_captions_latents_found_beside_the_file(cvpr):
    path, raw = cvpr
    root = path.parent
    colours = {}
    for n, s in enumerate(raw["images"]):
        colours[s] = (n * 20, 255 - n * 20, 7)
        # half flat (<stem>.png), half in ImageNet's wnid folders (<wnid>/<stem>.JPEG)
        target = root / "images" / (f"{s}.png" if n % 2 else f"{s.split('_')[0]}/{s}.JPEG")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (6, 6), colours[s]).save(target, quality=100 if target.suffix == ".JPEG" else None)
    (root / "captions.json").write_text(json.dumps({raw["images"][0]: "a chestnut horse in a field"}))
    np.savez(
        root / "latents.npz", image_ids=np.array(raw["images"]), z=np.arange(len(raw["images"]) * 3).reshape(-1, 3)
    )

    ds = load_cvpr40(path)
    assert ds.image_root == root / "images"
    pixels = ds.load_images(size=6)
    assert pixels.shape == (len(ds), 6, 6, 3)
    for row, image_id in enumerate(ds.image_ids):
        np.testing.assert_allclose(pixels[row, 3, 3], colours[image_id], atol=3)  # JPEG rounding
    caps = ds.captions()
    first = list(ds.image_ids).index(raw["images"][0])
    assert caps[first] == "a chestnut horse in a field"
    other = next(r for r, i in enumerate(ds.image_ids) if i != raw["images"][0] and ds.labels[r] == 2)
    assert caps[other] == "an image of a banana"
    wanted = [raw["images"][4], raw["images"][1]]
    np.testing.assert_array_equal(ds.latents_for(wanted)["z"], [[12, 13, 14], [3, 4, 5]])


def test_explicit_stimulus_paths(tmp_path, cvpr):
    path, raw = cvpr
    elsewhere = tmp_path / "stimuli"
    for s in raw["images"]:
        (elsewhere / s.split("_")[0]).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4), (1, 2, 3)).save(elsewhere / s.split("_")[0] / f"{s}.png")
    captions = tmp_path / "caps.json"
    captions.write_text(json.dumps({s: f"caption {s}" for s in raw["images"]}))
    ds = load_cvpr40(path, images=elsewhere, captions=captions)
    assert ds.load_images().shape == (len(ds), 4, 4, 3)
    assert ds.captions() == [f"caption {i}" for i in ds.image_ids]


@pytest.mark.parametrize(
    "option, content, message",
    [
        ("images", None, "images folder not found"),
        ("captions", "{not json", "unreadable captions JSON"),
        ("captions", json.dumps(["a", "b"]), "captions must be a JSON object"),
        ("latents", b"PK\x03\x04broken", "unreadable latents archive"),
        ("latents", "no-image-ids", "lacks 'image_ids'"),
        ("latents", "object-array", "unreadable latents archive"),
        ("latents", "short", "has 1 rows for 8 image_ids"),
    ],
)
def test_bad_side_files(tmp_path, cvpr, option, content, message):
    path, raw = cvpr
    target = tmp_path / f"side_{option}"
    if content == "no-image-ids":
        target = target.with_suffix(".npz")
        np.savez(target, z=np.zeros(3))
    elif content == "object-array":
        target = target.with_suffix(".npz")
        np.savez(target, image_ids=np.array(raw["images"], dtype=object))  # pickled: must not load
    elif content == "short":
        target = target.with_suffix(".npz")
        np.savez(target, image_ids=np.array(raw["images"]), z=np.zeros((1, 2)))
    elif isinstance(content, bytes):
        target.write_bytes(content)
    elif content is not None:
        target.write_text(content)
    with pytest.raises(UserError, match=message) as err:
        load_cvpr40(path, **{option: target})
    assert str(target) in str(err.value)


# --- official splits ------------------------------------------------------------------------------------


def write_splits(path: Path, splits) -> Path:
    torch.save({"splits": splits}, path)
    return path


def test_official_split_maps_raw_indices(tmp_path, cvpr):
    path, raw = cvpr
    ds = load_cvpr40(path)
    n = len(raw["dataset"])
    train, val, test = list(range(0, 16)), list(range(16, 20)), list(range(20, n))
    other = {"train": test, "val": val, "test": train}
    split_file = write_splits(
        tmp_path / "block_splits_by_image_all.pth", [{"train": train, "val": val, "test": test}, other]
    )
    for index, chosen in ((0, {"train": train, "val": val, "test": test}), (1, other)):
        parts = load_official_split(split_file, ds, split_index=index)
        for name, raw_idx in chosen.items():
            kept = [i for i in raw_idx if i in set(kept_indices(raw))]
            assert [int(ds.trial_ids[k]) for k in parts[name]] == kept  # filtered segments dropped, order kept
            assert parts[name].dtype == np.int64


def test_official_split_with_tensor_indices_and_subset(tmp_path, cvpr):
    path, raw = cvpr
    ds = load_cvpr40(path)
    sub = ds.for_subject(2)
    split_file = write_splits(
        tmp_path / "s.pth",
        [{"train": torch.arange(0, 18), "val": torch.tensor([18, 19]), "test": torch.arange(20, 24)}],
    )
    parts = load_official_split(split_file, sub)
    for k in parts.values():
        assert all(sub.subjects[k] == 2)
    assert {int(t) for t in sub.trial_ids[parts["train"]]} == {i for i in kept_indices(raw) if 8 <= i < 16}


# --- official splits with a subject filter: full-list or subject-filtered positions --------------------


def build_interleaved(lengths=None) -> dict:
    """Subjects 1, 2, 3 take turns segment by segment, so the two readings of a split differ."""
    raw = build_raw(lengths=lengths)
    for i, item in enumerate(raw["dataset"]):
        item["subject"] = SUBJECTS[i % len(SUBJECTS)]
    return raw


def dreamdiffusion_rows(raw: dict, subject: int, indices: list[int]) -> list[np.ndarray]:
    """DreamDiffusion's documented reading: the subject's segments in file order, indexed by the split,
    then the length filter (our window also needs L >= 460); each kept segment cropped to 20:460."""
    own = [it for it in raw["dataset"] if it["subject"] == subject]
    return [own[i]["eeg"][:, 20:460].numpy() for i in indices if 460 <= own[i]["eeg"].shape[1] <= 600]


def split_of(train, val, test) -> list[dict]:
    return [{"train": list(train), "val": list(val), "test": list(test)}]


def quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)  # these readings are proven: no warning allowed
        return read_official_split(*args, **kwargs)


def test_single_file_within_the_subject_count_is_read_as_subject_filtered_positions(tmp_path):
    # subject 2 owns raw segments 1, 4, 7, ...; segment 4 (its second) is 455 samples long, so it is dropped
    lengths = [500] * 24
    lengths[4] = 455
    raw = build_interleaved(lengths)
    ds = load_cvpr40(write_raw(tmp_path / "eeg.pth", raw))
    indices = {"train": [0, 1, 2, 3, 4], "val": [5], "test": [6, 7]}  # all below subject 2's 8 segments
    split_file = write_splits(tmp_path / "block_splits_by_image_single.pth", split_of(*indices.values()))
    with pytest.warns(DatasetWarning, match="read as subject-filtered positions because the name ends in _single") as w:
        split = read_official_split(split_file, ds, subjects=[2])
    assert len(w) == 1 and str(split_file) in str(w[0].message)
    for part, idx in indices.items():
        assert all(ds.subjects[split.parts[part]] == 2)
        got = [ds.eeg[row] for row in split.parts[part]]
        np.testing.assert_array_equal(np.array(got), np.array(dreamdiffusion_rows(raw, 2, idx)))
    assert [int(t) for t in ds.trial_ids[split.parts["train"]]] == [1, 7, 10, 13]  # 4 (too short) dropped
    assert split.reading == {"file": split_file.name, "split": 0, "positions": "subject-filtered", "subjects": [2],
                             "why": "ambiguous ranges; the name ends in _single"}


def test_same_ranges_without_the_single_name_are_read_as_full_list_positions(tmp_path):
    ds = load_cvpr40(write_raw(tmp_path / "eeg.pth", build_interleaved([500] * 24)))
    split_file = write_splits(tmp_path / "my_split.pth", split_of([0, 1, 2, 3, 4], [5], [6, 7]))
    with pytest.warns(DatasetWarning, match="read as full-list positions because the name does not end in _single"):
        parts = load_official_split(split_file, ds, subjects=[2])
    # raw positions 0-7 that belong to subject 2: 1, 4 (train), 7 (test)
    assert [[int(t) for t in ds.trial_ids[parts[p]]] for p in ("train", "val", "test")] == [[1, 4], [], [7]]
    forced = quietly(split_file, ds, subjects=[2], positions="subject-filtered")
    assert [int(t) for t in ds.trial_ids[forced.parts["test"]]] == [19, 22]
    assert forced.reading["positions"] == "subject-filtered" and forced.reading["why"] == "requested"


def test_an_index_beyond_the_subject_count_proves_full_list_positions(tmp_path):
    ds = load_cvpr40(write_raw(tmp_path / "eeg.pth", build_interleaved([500] * 24)))
    split_file = write_splits(tmp_path / "block_splits_by_image_single.pth",
                              split_of(range(0, 16), range(16, 20), range(20, 24)))
    split = quietly(split_file, ds, subjects=[2])  # index 23 >= subject 2's 8 segments: no ambiguity, no warning
    assert split.reading["positions"] == "full-list" and "index 23 >= subject 2's 8 segments" in split.reading["why"]
    assert [int(t) for t in ds.trial_ids[split.parts["test"]]] == [22]
    assert all(ds.subjects[np.concatenate(list(split.parts.values()))] == 2)
    with pytest.raises(UserError, match="index 23 is beyond subject 2's 8 segments") as err:
        read_official_split(split_file, ds, subjects=[2], positions="subject-filtered")
    assert str(split_file) in str(err.value) and "\n" not in str(err.value)


def test_proofs_from_the_file_order(tmp_path):
    # subject-ordered file (subject 1 = segments 0-7, subject 2 = 8-15): indices 0-7 are all subject 1's
    ds = load_cvpr40(write_raw(tmp_path / "eeg.pth", build_raw(lengths=[500] * 24)))
    split_file = write_splits(tmp_path / "custom.pth", split_of([0, 1, 2, 3, 4], [5], [6, 7]))
    as_two = quietly(split_file, ds, subjects=[2])  # full-list positions would select no segment of subject 2
    assert as_two.reading["positions"] == "subject-filtered"
    assert [int(t) for t in ds.trial_ids[as_two.parts["test"]]] == [14, 15]
    as_one = quietly(split_file, ds, subjects=[1])  # subject 1's segments come first: both readings agree
    assert as_one.reading["why"] == "both readings select the same segments"
    assert [int(t) for t in ds.trial_ids[as_one.parts["test"]]] == [6, 7]


def test_indices_that_fit_no_reading_are_refused(tmp_path):
    ds = load_cvpr40(write_raw(tmp_path / "eeg.pth", build_interleaved([500] * 24)))
    split_file = write_splits(tmp_path / "block_splits_by_image_single.pth", split_of([0, 30], [1], [2]))
    with pytest.raises(UserError, match=r"train index 30 is out of range for eeg \(24 segments\)") as err:
        read_official_split(split_file, ds, subjects=[2])
    assert str(split_file) in str(err.value) and "\n" not in str(err.value)
    fits = write_splits(tmp_path / "fits.pth", split_of([0], [1], [2]))
    for bad, message in (([9], "unknown subject 9"), ([1, 2], "needs exactly one subject")):
        with pytest.raises(UserError, match=message):
            read_official_split(fits, ds, subjects=bad, positions="subject-filtered")
    with pytest.raises(UserError, match="positions='raw': expected one of auto, full-list, subject-filtered"):
        read_official_split(split_file, ds, positions="raw")


def test_single_file_without_a_subject_filter_is_warned_about(tmp_path):
    ds = load_cvpr40(write_raw(tmp_path / "eeg.pth", build_interleaved([500] * 24)))
    small = write_splits(tmp_path / "block_splits_by_image_single.pth", split_of([0, 1, 2], [3], [4, 5]))
    with pytest.warns(DatasetWarning, match="may index one subject's segments.*pass subjects="):
        parts = load_official_split(small, ds)
    assert [int(t) for t in ds.trial_ids[parts["test"]]] == [4, 5]  # read as today: full-list, every subject
    (tmp_path / "w").mkdir()
    wide = write_splits(tmp_path / "w" / "block_splits_by_image_single.pth", split_of([0, 1, 2], [3], [4, 23]))
    assert quietly(wide, ds).reading == {"file": wide.name, "split": 0, "positions": "full-list", "subjects": None,
                                         "why": "no single-subject filter"}


def test_official_protocol_with_one_subject_uses_the_subject_filter(tmp_path):
    from eeg2img.splits import make_folds

    ds = load_cvpr40(write_raw(tmp_path / "eeg.pth", build_raw(lengths=[500] * 24)))
    split_file = write_splits(tmp_path / "block_splits_by_image_single.pth", split_of(range(0, 6), [6], [7]))
    [fold] = make_folds(ds, "official", subjects=[3], split_file=split_file)
    assert [int(t) for t in ds.trial_ids[fold.test]] == [23] and all(ds.subjects[fold.train] == 3)
    assert fold.options["official_split"]["positions"] == "subject-filtered"
    with pytest.warns(DatasetWarning, match="pass subjects="):  # no filter: full-list positions, as before
        [everyone] = make_folds(ds, "official", split_file=split_file)
    assert [int(t) for t in ds.trial_ids[everyone.test]] == [7]


@pytest.mark.parametrize(
    "content, kwargs, error, message",
    [
        ({"splits": [{"train": [0], "val": [1], "test": [4]}]}, {"split_index": 1}, UserError, "split 1 out of range"),
        (
            {"splits": [{"train": [0], "val": [1], "test": [4]}]},
            {"split_index": -1},
            UserError,
            "split -1 out of range",
        ),
        ({"splits": [{"train": [0, 24], "val": [], "test": [4]}]}, {}, UserError, "index 24 is out of range"),
        ({"splits": [{"train": [0, -3], "val": [], "test": [4]}]}, {}, UserError, "negative index"),
        ({"splits": [{"train": [1, 2], "val": [], "test": [7]}]}, {}, UserError, "no index of split 0 matches"),
        ({"splits": [{"train": [0, 3], "val": [], "test": [3, 4]}]}, {}, LeakageError, "both train and test"),
        ({"splits": [{"train": [0.5], "val": [], "test": [4]}]}, {}, UserError, "integer indices"),
        ({"splits": [{"train": [0]}]}, {}, UserError, "lacks train/val/test"),
        ({"weight": torch.zeros(2)}, {}, UserError, "not an EEG-CVPR40 split file"),
    ],
)
def test_official_split_errors(tmp_path, cvpr, content, kwargs, error, message):
    path, _ = cvpr
    ds = load_cvpr40(path)
    split_file = tmp_path / "split.pth"
    torch.save(content, split_file)
    with pytest.raises(error, match=message) as err:
        load_official_split(split_file, ds, **kwargs)
    assert str(split_file) in str(err.value)


# --- bad input ---------------------------------------------------------------------------------------------


class Payload:
    """A custom class: weights_only loading must refuse to rebuild it."""

    def __init__(self):
        self.x = 1


class RunsCommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _mutate(raw: dict, case: str, tmp_path: Path):
    items = raw["dataset"]
    if case == "eeg_1d":
        items[3]["eeg"] = items[3]["eeg"][0]
    elif case == "channels_differ":
        items[5]["eeg"] = signal(5, 500, channels=CHANNELS + 1)
    elif case == "label_out_of_range":
        items[2]["label"] = len(WNIDS)
    elif case == "image_out_of_range":
        items[2]["image"] = -1
    elif case == "label_not_int":
        items[2]["label"] = "n02389026"
    elif case == "nan":
        items[3]["eeg"][1, 100] = float("nan")  # item 3 is kept (length 470)
    elif case == "inf_outside_window_is_ok":
        items[0]["eeg"][0, 480] = float("inf")
    elif case == "all_filtered":
        for it in items:
            it["eeg"] = it["eeg"][:, :300]
    elif case == "empty":
        raw["dataset"] = []
    elif case == "custom_class":
        items[0]["meta"] = Payload()
    elif case == "runs_command":
        items[0]["meta"] = RunsCommand(tmp_path / "pwned")
    return raw


@pytest.mark.parametrize(
    "case, message",
    [
        ("eeg_1d", r"dataset\[3\]\['eeg'\] must be a real channels × samples tensor"),
        ("channels_differ", r"dataset\[5\]\['eeg'\] has 5 channels, dataset\[0\] has 4"),
        ("label_out_of_range", r"dataset\[2\]\['label'\] = 4 is out of range for 'labels'"),
        ("image_out_of_range", r"dataset\[2\]\['image'\] = -1 is out of range for 'images'"),
        ("label_not_int", r"dataset\[2\]\['label'\] must be an integer"),
        ("nan", "trial 00003 has NaN or Inf"),
        ("all_filtered", "no segment has 450 <= length <= 600"),
        ("empty", "holds no trials"),
        ("custom_class", "refusing to unpickle .*Payload: the file may carry code"),
        ("runs_command", "refusing to unpickle .*system: the file may carry code"),
    ],
)
def test_bad_dataset_contents(tmp_path, case, message):
    path = write_raw(tmp_path / "data" / "eeg.pth", _mutate(build_raw(), case, tmp_path))
    before = sorted(path.parent.iterdir())
    with pytest.raises(UserError, match=message) as err:
        load_cvpr40(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert sorted(path.parent.iterdir()) == before  # nothing written, not even the digest sidecar
    assert not (tmp_path / "pwned").exists()


def test_non_finite_values_outside_the_window_are_ignored(tmp_path):
    ds = load_cvpr40(write_raw(tmp_path / "eeg.pth", _mutate(build_raw(), "inf_outside_window_is_ok", tmp_path)))
    assert np.isfinite(ds.eeg).all() and ds.trial_ids[0] == "00000"


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "file not found"),
        ("folder", "is a folder"),
        ("state_dict", "not an EEG-CVPR40 dataset .*top-level keys encoder.weight, encoder.bias"),
        ("list", "not an EEG-CVPR40 dataset .*a list"),
        ("truncated", "corrupt or truncated file"),
        ("garbage", "corrupt"),
        ("empty_file", "corrupt or truncated file"),
        ("labels_not_list", "'labels' is a str"),
    ],
)
def test_bad_files(tmp_path, cvpr, case, message):
    good, raw = cvpr
    path = tmp_path / "bad" / "eeg.pth"
    path.parent.mkdir()
    if case == "folder":
        path.mkdir()
    elif case == "state_dict":
        torch.save({"encoder.weight": torch.zeros(2, 2), "encoder.bias": torch.zeros(2)}, path)
    elif case == "list":
        torch.save([torch.zeros(2)], path)
    elif case == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif case == "garbage":
        path.write_bytes(b"this is not a torch file" * 10)
    elif case == "empty_file":
        path.write_bytes(b"")
    elif case == "labels_not_list":
        torch.save({**raw, "labels": "n02389026"}, path)
    before = sorted(path.parent.iterdir())
    with pytest.raises(UserError, match=message) as err:
        load_cvpr40(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert sorted(path.parent.iterdir()) == before


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"window": (460, 20)}, "expected 0 <= start < stop"),
        ({"window": "x"}, "expected"),
        ({"min_len": 700}, "min_len=700 > max_len"),
    ],
)
def test_bad_options(cvpr, kwargs, message):
    with pytest.raises(UserError, match=message):
        load_cvpr40(cvpr[0], **kwargs)


def test_class_name_table_is_the_forty_cvpr_classes():
    assert len(CVPR40_CLASS_NAMES) == 40 and len(set(CVPR40_CLASS_NAMES.values())) == 40
    assert all(k.startswith("n") and len(k) == 9 for k in CVPR40_CLASS_NAMES)


# --- dispatcher -------------------------------------------------------------------------------------------


def test_load_dataset_dispatches(tmp_path, cvpr):
    path, raw = cvpr
    direct = load_dataset(path, min_len=460)
    assert direct.name == "eeg_5_95_std" and len(direct) == len(kept_indices(raw, min_len=460))
    synth = write_raw(tmp_path / "synth" / "eeg_synth.pth", raw)
    from_folder = load_dataset(synth.parent)
    assert from_folder.name == "eeg_synth" and from_folder.source == synth
    np.testing.assert_array_equal(from_folder.eeg, direct.eeg)


def test_load_dataset_rejects_unknown_paths_and_options(tmp_path, cvpr):
    with pytest.raises(UserError, match="not found; pass an EEG-CVPR40 .pth file") as err:
        load_dataset(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model.pth").write_bytes(b"")
    with pytest.raises(UserError, match="not a dataset; expected"):
        load_dataset(tmp_path / "other")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(UserError, match="not a dataset"):
        load_dataset(text)
    with pytest.raises(UserError, match="option average_repetitions does not apply to EEG-CVPR40"):
        load_dataset(cvpr[0], average_repetitions=False)


def test_package_exports():
    import eeg2img.datasets as datasets

    assert {"EEGDataset", "load_cvpr40", "load_things_eeg2", "load_official_split", "load_dataset"} <= set(
        dir(datasets)
    )
    with pytest.raises(AttributeError):
        datasets.no_such_loader  # noqa: B018
    synthetic = pytest.importorskip("eeg2img.datasets.synthetic")
    assert datasets.generate_synthetic is synthetic.generate_synthetic
