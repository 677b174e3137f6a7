"""``eeg2img kit``: what an outside lab needs to take part in a benchmark, and nothing it must not see.

The kit is built from the same config as ``eeg2img run``, so its ``benchmark_id`` equals the run
store's. Layout (every array file is a plain ``.npz``, read with ``numpy.load(path)``, no pickle)::

    KIT/benchmark.json       benchmark_id, the metric specification, and per fold: dataset, protocol,
                             fold, split fingerprint, the train / val / test trial ids, its files
    KIT/README.md            the kit and the submission layout, for the lab
    KIT/<dataset>/<protocol>/<fold>/
        train.npz            eeg (N, C, T) float32, labels, image_ids, trial_ids, subjects, captions, class_names
        val.npz              the same for the validation trials (absent when the fold has none)
        test.npz             eeg and trial_ids only, in a shuffled order
        images/<image_id>.png  the training and validation stimuli, for datasets the suite generated;
                             a real dataset's images are referenced (``image_root`` in benchmark.json), not copied

The kit is written into a staging folder and moved into place, so a failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

from eeg2img.atomic import atomic_directory, check_output, write_json, write_text
from eeg2img.datasets.base import EEGDataset
from eeg2img.errors import UserError
from eeg2img.grid.benchmark import benchmark_identity
from eeg2img.grid.config import GridConfig

KIT_VERSION = 1
BENCHMARK_FILE = "benchmark.json"


def write_kit(config: GridConfig, out: str | Path, progress: bool = True) -> Path:
    """Write the kit of ``config``'s benchmark into ``out`` (replaced if it exists); returns ``out``."""
    from tqdm.auto import tqdm

    from eeg2img.grid.runner import job_data, plan

    if len(config.seeds) != 1:
        raise UserError(f"kit: the config lists seeds {list(config.seeds)}; a kit describes one split per fold "
                        "(the seed draws the validation trials), so set seeds = [N]")
    out = check_output(out, kind="folder", fix="pass another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / BENCHMARK_FILE).is_file():
        # the kit replaces its folder: never a folder that holds something else
        raise UserError(f"{out}: exists and is not a kit (no {BENCHMARK_FILE}); pass a new or empty folder as --out")
    jobs = [j for j in plan(config, out) if not j.prefit]
    identity = benchmark_identity(jobs)
    folds, seen = [], set()
    with atomic_directory(out) as tmp:
        for job in tqdm(jobs, desc="kit", unit="job", disable=not progress):
            where = (job.dataset_name, job.protocol, job.fold)
            if where in seen:  # a fold's stage groups are separate jobs with the same split
                continue
            seen.add(where)
            dataset, fold = job_data(job, fix="run `eeg2img kit` again")
            rel = Path(_safe(job.dataset_name)) / _safe(job.protocol) / _safe(job.fold)
            files = _write_fold(tmp / rel, rel, dataset, fold, identity["benchmark_id"])
            folds.append({"dataset": job.dataset_name, "dataset_fingerprint": job.dataset_fingerprint,
                          "dataset_options": dict(job.dataset_options), "protocol": job.protocol, "fold": job.fold,
                          "fingerprint": fold.fingerprint,
                          "train": [str(t) for t in dataset.trial_ids[fold.train]],
                          "val": [str(t) for t in dataset.trial_ids[fold.val]],
                          "test": files.pop("test_order"), **files})
        doc = {"benchmark_id": identity["benchmark_id"], "kit_version": KIT_VERSION,
               "identity": {k: v for k, v in identity.items() if k != "benchmark_id"}, "folds": folds}
        write_json(tmp / BENCHMARK_FILE, doc)
        write_text(tmp / "README.md", kit_readme(doc))
    return out


def _safe(name: str) -> str:
    """A folder name from a dataset, protocol or fold name (these come from the suite, never from a lab)."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise UserError(f"kit: {name!r} cannot name a folder; rename the dataset")
    return name


def _write_fold(folder: Path, rel: Path, dataset: EEGDataset, fold, benchmark_id: str) -> dict:
    folder.mkdir(parents=True)
    files = {"train_file": str(rel / "train.npz"), "test_file": str(rel / "test.npz")}
    _save(folder / "train.npz", _labelled(dataset.subset(fold.train)))
    if len(fold.val):
        _save(folder / "val.npz", _labelled(dataset.subset(fold.val)))
        files["val_file"] = str(rel / "val.npz")
    test = dataset.subset(fold.test)
    # File order carries the recording block (and so the class) in block-design data: shuffle it away,
    # with an order fixed by the benchmark and the fold so the kit is reproducible.
    seed = int.from_bytes(hashlib.sha256(f"{benchmark_id}:{rel}".encode()).digest()[:8], "little")
    order = np.random.default_rng(seed).permutation(len(test))
    test_ids = [str(t) for t in test.trial_ids[order]]
    _save(folder / "test.npz", {"eeg": np.ascontiguousarray(test.eeg[order], dtype=np.float32),
                                "trial_ids": np.asarray(test_ids, dtype=str)})
    files["test_order"] = test_ids
    shown = sorted({str(i) for i in dataset.image_ids[np.concatenate([fold.train, fold.val])]})
    if _generated_here(dataset):
        images = folder / "images"
        images.mkdir()
        for image_id in shown:
            shutil.copyfile(dataset.image_path(image_id), images / f"{image_id}.png")
        files["images"] = str(rel / "images")
    else:
        files["image_root"] = str(dataset.image_root) if dataset.image_root else None
    return files


def _labelled(part: EEGDataset) -> dict[str, np.ndarray]:
    return {"eeg": np.ascontiguousarray(part.eeg, dtype=np.float32), "labels": np.asarray(part.labels, dtype=np.int64),
            "image_ids": np.asarray(part.image_ids, dtype=str), "trial_ids": np.asarray(part.trial_ids, dtype=str),
            "subjects": np.asarray(part.subjects, dtype=np.int64), "captions": np.asarray(part.captions(), dtype=str),
            "class_names": np.asarray(part.class_names, dtype=str)}


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    np.savez(path, **arrays)  # unicode and numeric arrays only: numpy.load reads them with allow_pickle=False


def _generated_here(dataset: EEGDataset) -> bool:
    """A synthetic set written by this suite (its stimuli may be copied; a real dataset's may not)."""
    return dataset.latents is not None and dataset.source is not None and \
        (Path(dataset.source).parent / "synth_meta.json").is_file()


def kit_readme(doc: dict) -> str:
    folds = "\n".join(f"| {f['dataset']} | {f['protocol']} | {f['fold']} | {len(f['train'])} | {len(f['val'])} | "
                      f"{len(f['test'])} |" for f in doc["folds"])
    return f"""# eeg2img-bench submission kit

Benchmark id: `{doc['benchmark_id']}`

This kit holds, for every fold of the benchmark, the training trials' EEG, labels, stimulus ids and
captions, and the test trials' EEG with their trial ids only. Train on a fold's `train.npz` (and
`val.npz` for model selection), reconstruct one image per test trial of `test.npz`, and submit the
images. Never use a fold's test trials for training or selection, and never use trial ids as
features: in block-design recordings a trial's position in the file identifies its block, and so its
class (the test order here is shuffled for that reason).

| dataset | protocol | fold | train | val | test |
|---|---|---|---|---|---|
{folds}

## Reading it (numpy only)

```python
import json, numpy as np
kit = json.load(open("benchmark.json"))
for fold in kit["folds"]:
    train = np.load(fold["train_file"])   # eeg (N, C, T) float32, labels, image_ids, trial_ids, subjects, captions, class_names
    test = np.load(fold["test_file"])     # eeg, trial_ids
```

Training stimuli: `<fold>/images/<image_id>.png` for datasets the suite generated; otherwise the
fold's `image_root` names where the dataset's own images are (they are not copied).

## The submission

```
SUB/submission.toml
SUB/<dataset>/<protocol>/<fold>/<trial_id>.png
```

`submission.toml` holds `name` (letters, digits, `-`, `_`, `.`; it becomes the method's name on the
leaderboard), `benchmark_id = "{doc['benchmark_id']}"`, and optionally `authors`, `url`, `code`,
`description`, and `oracle = false` (set `true` if the method saw test stimuli or labels). Each
listed fold needs exactly one RGB PNG per test trial, named by its trial id, and nothing else; images
may be any size up to 4096 × 4096 px (they are resized as the metrics require). Symbolic links are
refused.
"""
