"""THINGS-EEG2 loader and the restricted .npy unpickler, on tiny files written exactly as the authors did."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from eeg2img.datasets import load_dataset, load_things_eeg2
from eeg2img.datasets.base import DatasetWarning
from eeg2img.datasets.safe_pickle import load_pickled_npy
from eeg2img.datasets.things_eeg2 import read_preprocessed
from eeg2img.errors import LeakageError, UserError

TRAIN_CONCEPTS = {
    "00001_aardvark": ["aardvark_03s", "aardvark_01b", "aardvark_02s"],
    "00002_abacus": ["abacus_02s", "abacus_01b", "abacus_03s"],
}
TEST_CONCEPTS = {"00001_aircraft_carrier": ["aircraft_carrier_06s"], "00002_banana_split": ["banana_split_01s"]}
CH_NAMES = ["Pz", "P3", "Oz"]  # deliberately not the release's 17 channels
TIMES = np.round(-0.2 + 0.01 * np.arange(5), 3)  # seconds, 100 Hz
REPS = {"train": 2, "test": 4}
N_IMAGES = {"train": 6, "test": 2}
FILES = {"train": "preprocessed_eeg_training.npy", "test": "preprocessed_eeg_test.npy"}


def eeg_values(subject: int, part: str, n_images: int | None = None, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(subject * 10 + (part == "test"))
    n = N_IMAGES[part] if n_images is None else n_images
    return rng.standard_normal((n, REPS[part], channels, len(TIMES)))


def save_things_file(path: Path, data, ch_names=CH_NAMES, times=TIMES, **extra) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # exactly how the authors saved them: a dict through np.save (pickled)
    np.save(path, {"preprocessed_eeg_data": data, "ch_names": ch_names, "times": times, **extra}, allow_pickle=True)
    return path


def colour(stem: str) -> tuple[int, int, int]:
    h = sum(map(ord, stem))
    return (h * 7 % 256, h * 13 % 256, h * 29 % 256)


def write_image_set(root: Path) -> None:
    for folder, concepts in (("training_images", TRAIN_CONCEPTS), ("test_images", TEST_CONCEPTS)):
        for concept, stems in concepts.items():
            (root / folder / concept).mkdir(parents=True, exist_ok=True)
            for s in stems:  # written out of order: the loader must sort
                Image.new("RGB", (8, 8), colour(s)).save(root / folder / concept / f"{s}.jpg", quality=100)


def write_things(root: Path, subjects=("sub-01", "sub-2"), images: bool = True) -> Path:
    for name in subjects:
        number = int(name.split("-")[1])
        for part, fname in FILES.items():
            save_things_file(root / name / fname, eeg_values(number, part))
    if images:
        write_image_set(root)
    return root


@pytest.fixture()
def things(tmp_path) -> Path:
    return write_things(tmp_path / "things")


def sorted_stems(concepts: dict) -> list[str]:
    return [s for c in sorted(concepts) for s in sorted(concepts[c])]


# --- loading -------------------------------------------------------------------------------------------


def test_averaged_repetitions(things):
    ds = load_things_eeg2(things)
    train_stems, test_stems = sorted_stems(TRAIN_CONCEPTS), sorted_stems(TEST_CONCEPTS)
    assert len(ds) == 2 * (6 + 2) and ds.eeg.dtype == np.float32 and ds.eeg.shape[1:] == (3, 5)
    assert ds.class_names == ("aardvark", "abacus", "aircraft carrier", "banana split")
    assert ds.ch_names == tuple(CH_NAMES) and ds.sfreq == pytest.approx(100.0)
    assert ds.blocks is None and ds.sessions is None
    rows = 0
    for subject in (1, 2):
        for part, stems, labels in (("train", train_stems, [0, 0, 0, 1, 1, 1]), ("test", test_stems, [2, 3])):
            block = slice(rows, rows + len(stems))
            np.testing.assert_allclose(ds.eeg[block], eeg_values(subject, part).mean(axis=1), rtol=1e-6)
            assert list(ds.image_ids[block]) == stems
            assert list(ds.labels[block]) == labels
            assert set(ds.partitions[block]) == {part} and set(ds.subjects[block]) == {subject}
            assert list(ds.trial_ids[block]) == [f"s{subject:02d}-{part}-{i:05d}" for i in range(len(stems))]
            rows += len(stems)
    assert len(set(ds.trial_ids)) == len(ds)
    assert ds.label_caption(ds.labels[-1]) == "an image of a banana split"


def test_kept_repetitions(things):
    ds = load_things_eeg2(things, average_repetitions=False, subjects=[2])
    train = eeg_values(2, "train")
    test = eeg_values(2, "test")
    assert len(ds) == 6 * 2 + 2 * 4
    for row in range(len(ds)):
        part = ds.partitions[row]
        i, r = int(ds.trial_ids[row].split("-")[2]), ds.sessions[row]
        assert ds.trial_ids[row] == f"s02-{part}-{i:05d}-r{r}"
        np.testing.assert_allclose(ds.eeg[row], (train if part == "train" else test)[i, r], rtol=1e-6)
    # image-major order, repetition index as session and block
    assert list(ds.sessions[:4]) == [0, 1, 0, 1] and list(ds.blocks[12:16]) == [0, 1, 2, 3]
    assert list(ds.image_ids[:4]) == ["aardvark_01b"] * 2 + ["aardvark_02s"] * 2
    assert len(set(ds.trial_ids)) == len(ds)


def test_partition_and_subject_selection(things):
    ds = load_things_eeg2(things, subjects=[1], partitions="test")
    assert list(ds.partitions) == ["test", "test"] and set(ds.subjects) == {1}
    # the class list is shared, so test labels stay the same when training data is not loaded
    assert ds.class_names[2:] == ("aircraft carrier", "banana split") and list(ds.labels) == [2, 3]


@pytest.mark.parametrize("subjects", [[3], [1, 7], ["1"]])
def test_unknown_subject(things, subjects):
    with pytest.raises(UserError, match=r"unknown subject .*; subjects are \[1, 2\]") as err:
        load_things_eeg2(things, subjects=subjects)
    assert str(things) in str(err.value)


@pytest.mark.parametrize("partitions", [("train", "validation"), (), ("test", "test")])
def test_bad_partitions(things, partitions):
    with pytest.raises(UserError, match="expected one or both of 'train', 'test'"):
        load_things_eeg2(things, partitions=partitions)


def test_stimuli_resolve_from_concept_folders(things):
    ds = load_things_eeg2(things, subjects=[2])
    assert ds.image_root == things
    pixels = ds.load_images()
    for row, stem in enumerate(ds.image_ids):
        np.testing.assert_allclose(pixels[row, 4, 4], colour(stem), atol=4)
    sub = ds.subset([7, 1])
    assert sub.image_path(sub.image_ids[0]) == things / "test_images" / "00002_banana_split" / "banana_split_01s.jpg"
    with pytest.raises(LeakageError):
        sub.blind().load_images()


@pytest.mark.parametrize("layout", ["image_set", "explicit"])
def test_image_set_locations(tmp_path, layout):
    root = write_things(tmp_path / "eeg", subjects=("sub-01",), images=False)
    images_root = root / "image_set" if layout == "image_set" else tmp_path / "stimuli"
    write_image_set(images_root)
    ds = load_things_eeg2(root, images=None if layout == "image_set" else images_root)
    assert ds.image_root == images_root and ds.image_ids[0] == "aardvark_01b"
    assert ds.load_images([ds.image_ids[0]]).shape == (1, 8, 8, 3)


def test_without_image_folders_ids_are_synthesised(tmp_path):
    root = tmp_path / "eeg"
    rng = np.random.default_rng(0)
    save_things_file(root / "sub-01" / FILES["train"], rng.standard_normal((23, 2, 3, 5)))
    save_things_file(root / "sub-01" / FILES["test"], rng.standard_normal((2, 4, 3, 5)))
    ds = load_things_eeg2(root)
    assert list(ds.image_ids[:2]) == ["train_00000", "train_00001"] and list(ds.image_ids[-2:]) == [
        "test_000",
        "test_001",
    ]
    # ten training images per concept (the official design), one test image per concept after them
    assert list(ds.labels[:23]) == [i // 10 for i in range(23)] and list(ds.labels[23:]) == [3, 4]
    assert ds.class_names == tuple(f"concept_{k}" for k in range(5))
    assert ds.image_root is None
    with pytest.raises(UserError, match="no stimulus image directory"):
        ds.load_images()


def test_image_count_must_match(tmp_path):
    root = write_things(tmp_path / "eeg", subjects=("sub-01",))
    save_things_file(root / "sub-01" / FILES["train"], eeg_values(1, "train", n_images=5))
    with pytest.raises(UserError, match="5 image conditions but .* holds 6 images") as err:
        load_things_eeg2(root)
    assert FILES["train"] in str(err.value)


def test_explicit_image_folder_must_be_an_image_set(things, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="expected a folder holding training_images/ and test_images/"):
        load_things_eeg2(things, images=tmp_path / "empty")


def test_sfreq_from_millisecond_times(tmp_path):
    root = tmp_path / "eeg"
    save_things_file(root / "sub-03" / FILES["test"], eeg_values(3, "test"), times=np.arange(5) * 4.0 - 200)
    ds = load_things_eeg2(root, partitions=["test"])
    assert ds.sfreq == pytest.approx(250.0) and ds.subject_ids == (3,)


def test_fingerprint_depends_on_files_and_averaging(things):
    a = load_things_eeg2(things)
    assert a.fingerprint == load_things_eeg2(things).fingerprint and len(a.fingerprint) == 64
    assert a.fingerprint != load_things_eeg2(things, average_repetitions=False).fingerprint
    assert a.fingerprint != load_things_eeg2(things, subjects=[1]).fingerprint


# --- bad input ------------------------------------------------------------------------------------------


class RunsCommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Custom:
    pass


class CallsEval:
    def __reduce__(self):
        return eval, ("1 + 1",)


@pytest.mark.parametrize("writer", ["np.save", "pickle.dump"])  # the release's files, and ATM-style ones
@pytest.mark.parametrize(
    "payload, refused",
    [("system", r"posix\.system"), ("eval", r"builtins\.eval"), ("custom", r"test_loaders_things\.Custom")],
)
def test_pickle_carrying_code_is_refused(tmp_path, payload, refused, writer):
    marker = tmp_path / "pwned"
    evil = {"system": RunsCommand(marker), "eval": CallsEval(), "custom": Custom()}[payload]
    save = save_things_file if writer == "np.save" else save_atm_file
    path = save(tmp_path / "eeg" / "sub-01" / FILES["train"], evil)
    before = sorted(path.parent.iterdir())
    with pytest.raises(UserError, match=f"refusing to unpickle .*{refused}: the file may carry code") as err:
        load_things_eeg2(tmp_path / "eeg", partitions=["train"])
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists()  # the command never ran
    assert sorted(path.parent.iterdir()) == before


def _bad_file(path: Path, case: str) -> None:
    data = eeg_values(1, "train")
    if case == "plain_array":
        np.save(path, data)
    elif case == "not_npy":
        path.write_bytes(b"PK\x03\x04 neither a numpy file nor a pickle")
    elif case == "not_a_pickle":
        path.write_bytes(b"\x80\x04not a pickle either")  # the PROTO opcode, then garbage
    elif case == "truncated":
        save_things_file(path, data)
        path.write_bytes(path.read_bytes()[:-200])
    elif case == "extra_key":
        save_things_file(path, data, subject="01")
    elif case == "missing_key":
        np.save(path, {"preprocessed_eeg_data": data, "ch_names": CH_NAMES}, allow_pickle=True)
    elif case == "list_payload":
        np.save(path, np.array([data, CH_NAMES], dtype=object), allow_pickle=True)
    elif case == "none_payload":
        np.save(path, None, allow_pickle=True)
    elif case == "ndim3":
        save_things_file(path, data[:, 0])
    elif case == "strings":
        save_things_file(path, np.full((6, 2, 3, 5), "x"))
    elif case == "ch_names":
        save_things_file(path, data, ch_names=CH_NAMES[:2])
    elif case == "ch_names_type":
        save_things_file(path, data, ch_names=[1, 2, 3])
    elif case == "times_length":
        save_things_file(path, data, times=TIMES[:4])
    elif case == "times_order":
        save_things_file(path, data, times=TIMES[::-1])
    elif case == "nan":
        data[4, 1, 2, 3] = np.inf
        save_things_file(path, data)
    elif case == "no_times":
        save_things_file(path, data[..., :0], times=TIMES[:0])
    elif case == "no_repetitions":
        save_things_file(path, data[:, :0])


@pytest.mark.parametrize(
    "case, message",
    [
        ("plain_array", "holds a plain float64 array of shape .*, not a pickled dict"),
        ("not_npy", "neither a .npy file nor a pickle"),
        ("not_a_pickle", "corrupt or truncated pickle"),
        ("truncated", "corrupt or truncated pickle"),
        (
            "extra_key",
            r"expected a dict with keys .*, found \['ch_names', 'preprocessed_eeg_data', 'subject', 'times'\]",
        ),
        ("missing_key", "expected a dict with keys"),
        ("list_payload", r"holds an object array of shape \(2,\), not a pickled dict"),
        ("none_payload", "expected a dict with keys .*found NoneType"),
        ("ndim3", r"must be images × repetitions × channels × times, got \(6, 3, 5\)"),
        ("strings", "expected real numbers"),
        ("ch_names", "2 ch_names for 3 channels"),
        ("ch_names_type", "ch_names must be a list of channel names"),
        ("times_length", "times must list the 5 sample times"),
        ("times_order", "times must increase strictly"),
        ("nan", "trial s01-train-00004 has NaN or Inf"),
        ("no_times", r"has 0 times \(shape \(6, 2, 3, 0\)\)"),
        ("no_repetitions", r"has 0 repetitions"),
    ],
)
def test_bad_files(tmp_path, case, message):
    root = tmp_path / "eeg"
    path = root / "sub-01" / FILES["train"]
    path.parent.mkdir(parents=True)
    _bad_file(path, case)
    before = sorted(path.parent.iterdir())
    with pytest.raises(UserError, match=message) as err:
        load_things_eeg2(root, partitions=["train"])
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert sorted(path.parent.iterdir()) == before  # nothing written, not even the digest sidecar


def test_nan_named_with_repetition_when_kept(tmp_path):
    data = eeg_values(1, "test")
    data[1, 3, 0, 0] = np.nan
    save_things_file(tmp_path / "sub-01" / FILES["test"], data)
    with pytest.raises(UserError, match="trial s01-test-00001-r3 has NaN"):
        load_things_eeg2(tmp_path, partitions=["test"], average_repetitions=False)


def test_folder_problems(tmp_path, things):
    with pytest.raises(UserError, match="THINGS-EEG2 folder not found"):
        load_things_eeg2(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no sub-XX folders"):
        load_things_eeg2(tmp_path / "empty")
    (things / "sub-2" / FILES["test"]).unlink()
    with pytest.raises(UserError, match="subject 2 lacks the test partition"):
        load_things_eeg2(things)
    assert len(load_things_eeg2(things, partitions=["train"])) == 12
    (things / "sub-001").mkdir()
    with pytest.raises(UserError, match="both sub-001 and sub-01 claim subject 1"):
        load_things_eeg2(things)


def test_files_of_different_preprocessing_are_not_mixed(tmp_path):
    root = write_things(tmp_path / "eeg", images=False)
    save_things_file(root / "sub-2" / FILES["test"], eeg_values(2, "test"), ch_names=["O1", "O2", "Oz"])
    with pytest.raises(UserError, match="channels .* differ from"):
        load_things_eeg2(root)
    assert not list(root.rglob("*.sha256.json"))  # the files read before the bad one were not hashed either
    save_things_file(root / "sub-2" / FILES["test"], eeg_values(2, "test"), times=TIMES + 0.5)
    with pytest.raises(UserError, match="sample times differ"):
        load_things_eeg2(root)
    save_things_file(root / "sub-2" / FILES["test"], eeg_values(2, "test", n_images=3))
    with pytest.raises(UserError, match="3 image conditions, other subjects have 2"):
        load_things_eeg2(root)


# --- ATM-style files: plain pickle.dump, 63 channels at 250 Hz, data cropped by 50 samples at the front -----

ATM_CH_NAMES = [f"E{k:02d}" for k in range(1, 64)]
ATM_SFREQ = 250.0
ATM_CROP = 50  # samples the scripts drop at the front of the data, while times keeps them
ATM_TIMES = -0.2 + np.arange(250) / ATM_SFREQ  # the epoch -200 ... 796 ms; the data keep times[50:] (0 ... 796 ms)
ATM_IMAGES = {"train": 3, "test": 2}


def atm_values(subject: int, part: str) -> np.ndarray:
    rng = np.random.default_rng(100 + subject * 10 + (part == "test"))
    return rng.standard_normal((ATM_IMAGES[part], REPS[part], len(ATM_CH_NAMES), len(ATM_TIMES) - ATM_CROP))


def save_atm_file(path: Path, data, protocol: int = 4, times=ATM_TIMES) -> Path:
    """As those preprocessing scripts save: the release's dict, through plain pickle.dump, uncropped times."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump({"preprocessed_eeg_data": data, "ch_names": ATM_CH_NAMES, "times": times}, f, protocol=protocol)
    return path


def write_atm(root: Path, protocol: int = 4, subjects=(1,)) -> Path:
    for subject in subjects:
        for part, fname in FILES.items():
            save_atm_file(root / f"sub-{subject:02d}" / fname, atm_values(subject, part), protocol)
    return root


def load_warned(*args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_things_eeg2(*args, **kwargs)
    return ds, [w for w in caught if issubclass(w.category, DatasetWarning)]


@pytest.mark.parametrize("protocol", [4, 5])  # 4: the scripts' pickle.dump; 5: Python 3.14's default
def test_atm_style_pickle_files_load_with_cropped_times(tmp_path, protocol):
    root = write_atm(tmp_path / "atm", protocol)
    # protocol 5 rebuilds arrays through numpy's _frombuffer, which the allow-list must admit
    assert (b"_frombuffer" in (root / "sub-01" / FILES["test"]).read_bytes()) == (protocol == 5)
    ds, warned = load_warned(root, average_repetitions=False)
    assert ds.ch_names == tuple(ATM_CH_NAMES) and ds.sfreq == pytest.approx(ATM_SFREQ)
    assert ds.eeg.shape == (3 * 2 + 2 * 4, 63, 200)
    train, test = atm_values(1, "train"), atm_values(1, "test")
    np.testing.assert_allclose(ds.eeg[:6], train.reshape(6, 63, 200), rtol=1e-6)
    np.testing.assert_allclose(ds.eeg[6:], test.reshape(8, 63, 200), rtol=1e-6)
    with pytest.warns(DatasetWarning):
        rec = read_preprocessed(root / "sub-01" / FILES["train"])
    np.testing.assert_array_equal(rec.times, ATM_TIMES[ATM_CROP:])  # what ATM's loader reads as times[50:]
    assert rec.times[0] == pytest.approx(0.0) and rec.written_by == "pickle" and rec.leading_times_dropped == 50
    # one warning per file, naming it once, with the rule applied
    paths = [str(root / "sub-01" / FILES[p]) for p in ("train", "test")]
    assert len(warned) == 2
    for path, w in zip(paths, warned):
        message = str(w.message)
        assert message.count(path) == 1 and "cropped by 50 samples at the front" in message
    assert ds.provenance == {
        "files_written_by": {"pickle.dump": 2},
        "leading_times_dropped": {f"sub-01/{FILES['train']}": 50, f"sub-01/{FILES['test']}": 50},
    }


@pytest.mark.parametrize("average", [True, False])
def test_atm_style_file_equals_the_official_file_with_cropped_times(tmp_path, average):
    atm = write_atm(tmp_path / "atm", subjects=(1, 2))
    official = tmp_path / "official"
    for subject in (1, 2):
        for part, fname in FILES.items():
            save_things_file(official / f"sub-{subject:02d}" / fname, atm_values(subject, part),
                             ch_names=ATM_CH_NAMES, times=ATM_TIMES[ATM_CROP:])
    a, warned = load_warned(atm, average_repetitions=average)
    b, none = load_warned(official, average_repetitions=average)
    assert len(warned) == 4 and none == []
    np.testing.assert_array_equal(a.eeg, b.eeg)
    for field in ("trial_ids", "labels_", "image_ids_", "subjects", "partitions"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert (a.ch_names, a.sfreq, a.class_names) == (b.ch_names, b.sfreq, b.class_names)
    assert b.provenance == {"files_written_by": {"np.save": 4}}


def test_uncropped_times_in_an_np_save_file_are_read_the_same_way(tmp_path):
    path = save_things_file(tmp_path / "sub-01" / FILES["test"], atm_values(1, "test"), ch_names=ATM_CH_NAMES,
                            times=ATM_TIMES)
    ds, warned = load_warned(tmp_path, partitions=["test"])
    assert len(warned) == 1 and str(path) in str(warned[0].message)
    with pytest.warns(DatasetWarning, match="cropped by 50 samples"):
        np.testing.assert_array_equal(read_preprocessed(path).times, ATM_TIMES[ATM_CROP:])
    assert ds.n_samples == 200 and ds.sfreq == pytest.approx(ATM_SFREQ)


@pytest.mark.parametrize(
    "case, message",
    [
        ("truncated", r"corrupt or truncated pickle \(\w+\)"),
        ("garbled", r"corrupt or truncated pickle \(\w+\)"),
        ("times_shorter", "times must list the 200 sample times, got shape \\(150,\\); regenerate"),
        ("times_2d", "times must list the 200 sample times"),
        ("times_reversed", "times must increase strictly"),
    ],
)
def test_bad_plain_pickles_are_one_line_naming_the_file(tmp_path, case, message):
    path = tmp_path / "eeg" / "sub-01" / FILES["train"]
    data = atm_values(1, "train")
    if case in ("truncated", "garbled"):
        save_atm_file(path, data)
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 2] if case == "truncated" else raw[:40] + b"\xff" * 64 + raw[104:])
    elif case == "times_shorter":  # data longer than times: no crop explains it
        save_atm_file(path, data, times=ATM_TIMES[:150])
    elif case == "times_2d":
        save_atm_file(path, data, times=np.stack([ATM_TIMES, ATM_TIMES]))
    else:
        save_atm_file(path, data, times=ATM_TIMES[::-1])
    with pytest.raises(UserError, match=message) as err:
        load_things_eeg2(tmp_path / "eeg", partitions=["train"])
    assert str(path) in str(err.value) and "\n" not in str(err.value)


# --- the restricted unpickler on its own ---------------------------------------------------------------


def test_numpy1_pickles_load(tmp_path):
    """Files written by numpy 1.x name numpy.core.multiarray; both spellings must load."""
    obj = {"preprocessed_eeg_data": eeg_values(1, "test"), "ch_names": CH_NAMES, "times": TIMES, "n": np.int64(3)}
    payload = pickle.dumps(np.array(obj, dtype=object), protocol=3)  # numpy 1.x np.save: text GLOBAL opcodes
    assert b"numpy._core.multiarray" in payload
    payload = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path = tmp_path / "old.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + _header("{'descr': '|O', 'fortran_order': False, 'shape': (), }") + payload)
    loaded = load_pickled_npy(path)
    np.testing.assert_array_equal(loaded["preprocessed_eeg_data"], obj["preprocessed_eeg_data"])
    assert loaded["ch_names"] == CH_NAMES and loaded["n"] == 3


def _header(text: str) -> bytes:
    pad = 64 - (10 + len(text) + 1) % 64
    body = (text + " " * pad + "\n").encode("latin1")
    return len(body).to_bytes(2, "little") + body


@settings(max_examples=25, deadline=None)
@given(
    arrays=st.lists(
        hnp.arrays(
            dtype=st.sampled_from([np.float32, np.float64, np.int16, np.int64, np.bool_, np.complex64, "<U3", ">f8"]),
            shape=hnp.array_shapes(min_dims=0, max_dims=4, max_side=3),
        ),
        min_size=1,
        max_size=3,
    ),
    extra=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=6,
    ),
)
def test_restricted_unpickler_round_trips_numpy_data(tmp_path_factory, arrays, extra):
    path = tmp_path_factory.mktemp("rt") / "x.npy"
    obj = {f"a{i}": a for i, a in enumerate(arrays)} | {"extra": extra}
    np.save(path, obj, allow_pickle=True)
    loaded = load_pickled_npy(path)
    # the reference: numpy's own unrestricted loader, safe here because this test wrote the file
    reference = np.load(path, allow_pickle=True).item()
    assert set(loaded) == set(obj) and loaded["extra"] == extra == reference["extra"]
    for key, value in obj.items():
        if key != "extra":
            np.testing.assert_array_equal(loaded[key], value)
            assert loaded[key].dtype == reference[key].dtype and loaded[key].shape == value.shape


def test_read_preprocessed_accepts_ndarray_channel_names(tmp_path):
    path = save_things_file(tmp_path / "f.npy", eeg_values(1, "test"), ch_names=np.array(CH_NAMES))
    rec = read_preprocessed(path)
    assert rec.ch_names == tuple(CH_NAMES) and rec.data.shape == (2, 4, 3, 5)


# --- dispatcher -----------------------------------------------------------------------------------------


def test_load_dataset_dispatches_to_things(things):
    ds = load_dataset(things, subjects=[1], average_repetitions=False)
    assert ds.name == "things_eeg2" and set(ds.subjects) == {1} and len(ds) == 6 * 2 + 2 * 4
    with pytest.raises(UserError, match="option window does not apply to THINGS-EEG2 folders"):
        load_dataset(things, window=(0, 5))
