"""An outside lab's submission, validated whole before anything is written (``docs/submissions.md``).

Layout::

    SUB/submission.toml                       name, benchmark_id; optional authors, url, code, description, oracle
    SUB/<dataset>/<protocol>/<fold>/<trial_id>.png

:func:`read_submission` checks everything against the benchmark (its id, each fold's test trials) and returns what
it found, or raises one :class:`~eeg2img.errors.UserError` naming the file and the fix: the benchmark
id; the name (a safe identifier, not a registered method's); the text fields (no markup, no control
characters, bounded length); every folder a fold of the benchmark; every test trial of every listed
fold exactly one regular file ``<trial_id>.png`` and nothing else (no symbolic link, no other name);
every image decodable, RGB or convertible, at most :data:`MAX_SIDE` px a side (decompression bombs
refused before decoding). Only the folds present are scored, so a lab may submit some protocols.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from eeg2img.errors import UserError

SUBMISSION_FILE = "submission.toml"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TEXT_FIELDS = {"authors": 500, "url": 500, "code": 500, "description": 4000}
MAX_SIDE = 4096
MAX_TOML_BYTES = 64 * 1024
_MARKUP = re.compile(r"[<>\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Submission:
    root: Path
    name: str
    benchmark_id: str
    oracle: bool
    metadata: dict[str, str]  # the text fields given
    # (dataset, protocol, fold) → {trial_id: image file}, in the benchmark's fold and test order
    folds: dict[tuple[str, str, str], dict[str, Path]] = field(default_factory=dict)


def read_submission(sub: str | Path, benchmark_id: str, tests: dict[tuple[str, str, str], list[str]],
                    reserved: set[str] | frozenset[str] = frozenset()) -> Submission:
    """Validate ``sub`` against a benchmark: its id, and the test trial ids of each (dataset, protocol, fold).

    ``reserved``: the names already taken (the registered methods').
    """
    root = Path(sub)
    if root.is_symlink() or not root.is_dir():
        raise UserError(f"{root}: not a submission folder; pass the folder holding {SUBMISSION_FILE}")
    meta = _read_toml(root / SUBMISSION_FILE)
    name = meta.pop("name", None)
    where = root / SUBMISSION_FILE
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise UserError(f"{where}: name = {_show(name)} is not a safe identifier; use 1–64 letters, digits, "
                        "'-', '_' or '.', starting with a letter or digit")
    if name in reserved:
        raise UserError(f"{where}: name = {name!r} is a built-in method's; choose another name")
    bid = meta.pop("benchmark_id", None)
    if bid != benchmark_id:
        raise UserError(f"{where}: benchmark_id = {_show(bid)} is not this run store's "
                        f"({benchmark_id[:16]}…); make the submission from this benchmark's kit")
    oracle = meta.pop("oracle", False)
    if not isinstance(oracle, bool):
        raise UserError(f"{where}: oracle = {_show(oracle)} must be true or false")
    metadata = {}
    for key, value in meta.items():
        if key not in TEXT_FIELDS:
            raise UserError(f"{where}: unknown key {_show(key)}; the keys are name, benchmark_id, oracle, "
                            f"{', '.join(TEXT_FIELDS)}")
        if not isinstance(value, str) or len(value) > TEXT_FIELDS[key] or _MARKUP.search(value):
            raise UserError(f"{where}: {key} must be plain text of at most {TEXT_FIELDS[key]} characters "
                            "(no '<', '>' or control characters)")
        metadata[key] = value
    return Submission(root, name, bid, oracle, metadata, _fold_files(root, tests))


def _read_toml(path: Path) -> dict:
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise UserError(f"{path}: missing; write it with name and benchmark_id (see the kit's README.md)") from None
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{path}: not a regular file (a link or a folder); write the file itself")
    if info.st_size > MAX_TOML_BYTES:
        raise UserError(f"{path}: {info.st_size} bytes, over {MAX_TOML_BYTES}; keep it to the metadata")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid TOML ({_first_line(err)}); fix the syntax") from None


def _fold_files(root: Path, tests: dict[tuple[str, str, str], list[str]]) -> dict[tuple[str, str, str], dict[str, Path]]:
    levels = [sorted({k[:n] for k in tests}) for n in (1, 2, 3)]
    found: dict[tuple[str, str, str], dict[str, Path]] = {}
    _walk(root, (), levels, tests, found)
    if not found:
        raise UserError(f"{root}: holds no fold folder; write {root}/<dataset>/<protocol>/<fold>/<trial_id>.png")
    return {k: found[k] for k in tests if k in found}


def _walk(folder: Path, prefix: tuple, levels, tests, found) -> None:
    depth = len(prefix)
    expected = {k[depth] for k in levels[depth] if k[:depth] == prefix}
    for entry in _entries(folder):
        path = folder / entry.name
        if depth == 0 and entry.name == SUBMISSION_FILE:
            continue
        if entry.is_symlink():
            raise UserError(f"{path}: a symbolic link; copy the file or folder itself")
        if entry.name not in expected or not entry.is_dir(follow_symlinks=False):
            what = ["dataset", "protocol", "fold"][depth]
            raise UserError(f"{path}: not a {what} of this benchmark (expected one of {sorted(expected)}); "
                            "remove it")
        key = (*prefix, entry.name)
        if depth < 2:
            _walk(path, key, levels, tests, found)
        else:
            found[key] = _trial_files(path, tests[key])


def _trial_files(folder: Path, test_ids: list[str]) -> dict[str, Path]:
    wanted = set(test_ids)
    files = {}
    for entry in _entries(folder):
        path = folder / entry.name
        if entry.is_symlink():
            raise UserError(f"{path}: a symbolic link; copy the image itself")
        stem, dot, ext = entry.name.rpartition(".")
        if not entry.is_file(follow_symlinks=False) or not dot or ext != "png" or stem not in wanted:
            raise UserError(f"{path}: not <trial_id>.png of a test trial of this fold; remove it")
        files[stem] = path
    missing = [t for t in test_ids if t not in files]
    if missing:
        raise UserError(f"{folder}: no image for {len(missing)} of its {len(test_ids)} test trial(s), e.g. "
                        f"{missing[0]}.png; write one PNG per test trial")
    sizes = {}
    for trial_id in test_ids:
        sizes[trial_id] = _check_image(files[trial_id])
    first = sizes[test_ids[0]]
    odd = next((t for t in test_ids if sizes[t] != first or sizes[t][0] != sizes[t][1]), None)
    if odd is not None:  # the metrics compare a fold's images as one square stack, as the built-in methods write
        raise UserError(f"{files[odd]}: {sizes[odd][0]}×{sizes[odd][1]} px where {files[test_ids[0]].name} is "
                        f"{first[0]}×{first[1]}; write every image of a fold square and at one size")
    return {t: files[t] for t in test_ids}


def _check_image(path: Path) -> tuple[int, int]:
    from eeg2img.datasets.base import open_image, read_rgb

    with open_image(path) as im:  # refuses a decompression bomb before decoding
        w, h = im.size
        fmt = im.format
    if fmt != "PNG":
        raise UserError(f"{path}: a {fmt} file named .png; write PNG images")
    if max(w, h) > MAX_SIDE:
        raise UserError(f"{path}: {w}×{h} px, over {MAX_SIDE} px a side; write smaller images")
    read_rgb(path)  # decodes whole and converts to RGB, or one line naming the file
    return w, h


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as err:
        from eeg2img.errors import path_error

        raise path_error(err, "check the submission folder") from None


def _show(value) -> str:
    """A user's value in an error line: repr, so control characters and markup are shown escaped, and short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else err.__class__.__name__


# --- scoring into a run store --------------------------------------------------------------------------
def submit(sub: str | Path, runs_dir: str | Path, progress: bool = True) -> list:
    """Validate ``sub`` whole, then score each of its folds into the run store as cells of method ``name``.

    The cells are marked ``kind = "submission"`` with the lab's metadata; a submission of the same name
    replaces the earlier one's cells (the new cells are written first, then listed, then the old ones
    deleted, so a failure leaves the earlier submission in place). Returns the new cells' keys.
    """
    import hashlib
    import shutil

    from tqdm.auto import tqdm

    from eeg2img.datasets.base import read_rgb
    from eeg2img.grid.runner import pool_set_level, score_submitted_cell
    from eeg2img.methods import available_methods
    from eeg2img.provenance import config_hash
    from eeg2img.runstore import CellKey, RunStore

    runs = Path(runs_dir)
    if not runs.is_dir():
        raise UserError(f"{runs}: no such runs directory; run the benchmark with `eeg2img run` first")
    store = RunStore(runs)
    with store.lock():
        benchmark = store.read_benchmark()
        if benchmark is None or not benchmark.get("sources"):
            raise UserError(f"{runs}: no benchmark id and data sources (the store predates them); "
                            "rerun `eeg2img run` on it, then submit")
        try:
            jobs = {(src["dataset"], src["protocol"], src["fold"]): _job(runs, src, benchmark)
                    for src in benchmark["sources"]}
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{runs}/benchmark.json: malformed sources ({err.__class__.__name__}: {err}); "
                            "rerun `eeg2img run` to rewrite it") from None
        tests = {k: _test_ids(job) for k, job in jobs.items()}
        found = read_submission(sub, benchmark["benchmark_id"], tests, reserved=set(available_methods()))
        submission = {"name": found.name, "oracle": found.oracle, **found.metadata}
        new = []
        for where, files in tqdm(found.folds.items(), desc="submit", unit="fold", disable=not progress):
            job = jobs[where]
            digest = hashlib.sha256()
            for trial_id, path in files.items():
                digest.update(trial_id.encode() + b"\0" + path.read_bytes() + b"\0")
            images = {trial_id: read_rgb(path) for trial_id, path in files.items()}
            key = CellKey(job.dataset_name, job.protocol, job.fold, found.name, job.seed,
                          config_hash({"submission": submission, "images_sha256": digest.hexdigest(),
                                       "inputs": job.inputs()}))
            if not store.is_done(key):
                score_submitted_cell(store, key, job, images, found.oracle, submission)
            new.append(key)
        earlier = store.current_submissions()
        store.replace_submissions([k for k in earlier if k.method != found.name] + new)
        for k in earlier:
            if k.method == found.name and k not in new:
                shutil.rmtree(store.cell_dir(k), ignore_errors=True)
        keys = store.current_keys()
        store.write_set_level(pool_set_level(store, keys=keys))
        store.write_results(keys)
        return new


def _job(runs: Path, src: dict, benchmark: dict):
    from eeg2img.grid.runner import FoldJob

    fold = next((f for f in benchmark["folds"] if (f["dataset"], f["protocol"], f["fold"], f["fingerprint"])
                 == (src["dataset"], src["protocol"], src["fold"], src["fingerprint"])), None)
    if fold is None:
        raise UserError(f"{runs}/benchmark.json: sources and folds disagree; rerun `eeg2img run` to rewrite it")
    return FoldJob(str(runs), src["dataset_path"], _frozen(src["dataset_options"]), src["protocol"], src["fold"],
                   int(src["seed"]), (), tuple(src["metrics"]), src["backbone"], _frozen(src["split_options"]),
                   src["dataset"], fold["dataset_fingerprint"], src["fingerprint"], src["metric_spec"],
                   src.get("backbone_weights"))


def _test_ids(job) -> list[str]:
    from eeg2img.grid.runner import job_data

    if not Path(job.dataset_path).exists():
        raise UserError(f"{job.dataset_path}: the benchmark's dataset is not here; put it back where "
                        "`eeg2img run` found it, then submit")
    dataset, fold = job_data(job, fix="rerun `eeg2img run`, then submit")
    return [str(t) for t in dataset.trial_ids[fold.test]]


def _frozen(value):
    """JSON lists back to the tuples a job holds (its options are hashable)."""
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value
