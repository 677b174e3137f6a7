"""Write a small runs directory in the exact run-store layout, with known numbers (for tests and demos).

Every cell gets ``cell.json``, ``provenance.json``, ``recon/<trial_id>.png``, ``trials.parquet``,
``samples.parquet``, ``metrics.parquet`` and ``DONE``; the root gets ``results.csv``/``.parquet``,
the pooled ``set_level.csv``/``.parquet`` and the stimuli the provenance points at. Per-sample metrics
(ssim, pixcorr) are means of their samples; the set-level metric (fid on a substitute backbone) has
one pooled row per (protocol, method, seed), with ``set_level_n`` as its N (below 50: "N < min").
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd


# Plain writes: this is fixture data, and an fsync per file would dominate the test time.
def write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def write_text(path: Path, text: str) -> None:
    path.write_text(text)


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    frame.to_parquet(path, index=False)


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    frame.to_csv(path, index=False)

DEFAULT_METHODS = {
    # name: (quality offset, is_oracle); higher offset → better scores
    "neuroimagen": (0.30, False),
    "latent-ridge": (0.15, False),
    "floor-mean": (0.0, False),
    "oracle-stimulus": (0.60, True),
}
LABELS = {"ssim": "425px, grey", "pixcorr": "425px, RGB"}


def _image(rng: np.random.Generator, size: int, colour: tuple[int, int, int]) -> np.ndarray:
    base = np.broadcast_to(np.array(colour, np.uint8), (size, size, 3)).astype(np.int16)
    return np.clip(base + rng.integers(-40, 40, size=(size, size, 3)), 0, 255).astype(np.uint8)


def write_fake_runs(
    root: str | Path,
    *,
    dataset: str = "synth",
    subjects: tuple[int, ...] = (1, 2, 3),
    protocols: tuple[str, ...] = ("per-subject", "loso"),
    methods: dict[str, tuple[float, bool]] | None = None,
    seeds: tuple[int, ...] = (0,),
    trials_per_subject: int = 4,
    image_size: int = 8,
    seed: int = 0,
    backbone_fid: str = "synth-cnn",
    set_level_n: int = 60,
) -> Path:
    from eeg2img.runstore import RESULT_COLUMNS, SET_LEVEL_FILE_COLUMNS, CellKey, RunStore
    from metrics.vocabulary import spec

    root = Path(root)
    store = RunStore(root)
    methods = DEFAULT_METHODS if methods is None else methods
    rng = np.random.default_rng(seed)
    stim_dir = root.parent / f"{root.name}-stimuli" / dataset
    image_ids = [f"img{i:03d}" for i in range(trials_per_subject)]
    colours = [tuple(int(c) for c in rng.integers(30, 225, 3)) for _ in image_ids]
    for image_id, colour in zip(image_ids, colours):
        write_png(stim_dir / f"{image_id}.png", _image(rng, image_size, colour))
    trials_all = pd.DataFrame(
        [
            {"trial_id": f"s{s}-t{i}", "subject": s, "image_id": image_ids[i], "label": i % 2}
            for s in subjects
            for i in range(trials_per_subject)
        ]
    )
    subject_effect = {s: 0.02 * k for k, s in enumerate(subjects)}
    all_rows, set_rows = [], []
    for protocol in protocols:
        folds = {"pooled": list(subjects)} if protocol == "pooled" else {f"sub-{s:02d}": [s] for s in subjects}
        protocol_penalty = 0.08 if protocol in ("loso", "zero-shot-loso") else 0.0
        for fold, fold_subjects in folds.items():
            trials = trials_all[trials_all["subject"].isin(fold_subjects)].reset_index(drop=True)
            for method, (offset, is_oracle) in methods.items():
                for run_seed in seeds:
                    config_hash = hashlib.sha256(f"{method}/{run_seed}".encode()).hexdigest()
                    key = CellKey(dataset, protocol, fold, method, run_seed, config_hash)
                    recon = [(t.trial_id, _image(rng, image_size, colours[image_ids.index(t.image_id)]))
                             for t in trials.itertuples(index=False)]
                    samples = []
                    for t in trials.itertuples(index=False):
                        base = 0.1 + offset + subject_effect[t.subject] - protocol_penalty
                        samples.append((t.trial_id, t.subject, "ssim", "pixels", base + rng.normal(0, 0.03)))
                        samples.append((t.trial_id, t.subject, "pixcorr", "pixels", base / 2 + rng.normal(0, 0.03)))
                    samples = pd.DataFrame(samples, columns=["trial_id", "subject", "metric", "backbone", "value"])
                    rows = samples.groupby(["subject", "metric", "backbone"], as_index=False)["value"].mean()
                    rows["label"] = rows["metric"].map(LABELS)
                    for k, v in (("dataset", dataset), ("protocol", protocol), ("fold", fold), ("method", method),
                                 ("seed", run_seed), ("config_hash", config_hash)):
                        rows[k] = v
                    rows = rows[RESULT_COLUMNS].reset_index(drop=True)
                    prov = {"config_hash": config_hash, "split_fingerprint": f"split-{protocol}-{fold}",
                            "dataset_fingerprint": f"data-{dataset}", "dataset_path": str(stim_dir.parent / "eeg.pth"),
                            "image_root": str(stim_dir), "weights": {backbone_fid: "ab" * 32},
                            "packages": {"python": "3.11.0", "torch": "2.4.0"}, "git_commit": "0123456789abcdef",
                            "device": "cpu:x86_64", "created": "2025-01-01T00:00:00+00:00"}
                    store.start(key, {"seed": run_seed}, is_oracle, prov)
                    for trial_id, image in recon:
                        store.save_reconstruction(key, trial_id, image)
                    store.finish(key, trials, samples, rows, prov)
                    all_rows.append(rows)
        for method, (offset, _) in methods.items():
            for run_seed in seeds:
                value = 200.0 - 150 * offset + 20 * protocol_penalty + rng.normal(0, 3)
                ok = set_level_n >= spec("fid").min_n
                set_rows.append({"dataset": dataset, "protocol": protocol, "method": method, "seed": run_seed,
                                 "folds": len(folds), "subject": "all", "metric": "fid", "backbone": backbone_fid,
                                 "label": f"128-d, N={set_level_n}", "value": value if ok else np.nan,
                                 "std": np.nan, "ci_low": value - 10 if ok else np.nan,
                                 "ci_high": value + 10 if ok else np.nan, "n": set_level_n,
                                 "min_n": spec("fid").min_n, "status": "ok" if ok else "N < min",
                                 "warning": "N < 2048: biased upwards" if ok else ""})
    store.write_set_level(pd.DataFrame(set_rows, columns=SET_LEVEL_FILE_COLUMNS))
    store.write_results()
    return root
