"""Reconstruction grids: the stimuli of a few test trials above every method's reconstructions of them.

The trials come from one fold that most methods finished (``pooled`` first, then ``per-subject``,
then ``loso``), lowest seed per method; the stimuli are read from ``image_root`` in the cells'
provenance and the trial's ``image_id`` (trials.parquet).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from eeg2img.datasets.base import IMAGE_EXTENSIONS
from eeg2img.errors import UserError
from eeg2img.runstore import RECON_DIR
from reports.load import Cell, Runs
from reports.plots import reconstruction_grid

# The pooled fold shows several subjects in one grid, so it is preferred.
GRID_PROTOCOLS = ["pooled", "per-subject", "loso"]
THUMBNAIL = 128  # px; keeps the embedded page small when reconstructions are 512²


def _read(path: Path | None) -> np.ndarray | None:
    from PIL import Image

    from eeg2img.datasets.base import read_rgb

    if path is None or not path.is_file():
        return None
    try:
        image = read_rgb(path)
    except UserError:
        return None
    if max(image.shape[:2]) > THUMBNAIL:
        im = Image.fromarray(image)
        im.thumbnail((THUMBNAIL, THUMBNAIL), Image.BICUBIC)
        image = np.asarray(im)
    return image


def _image_roots(runs: Runs, cells: list[Cell]) -> list[Path]:
    roots = []
    for c in cells:
        root = c.provenance.get("image_root")
        if not root:
            continue
        p = Path(root)
        candidates = [p] if p.is_absolute() else [p, runs.root / p, runs.root.parent / p]
        roots.extend(q for q in candidates if q.is_dir() and q not in roots)
    return roots


def _stimulus_path(roots: list[Path], image_id: str) -> Path | None:
    for root in roots:
        for ext in IMAGE_EXTENSIONS:
            for candidate in (root / f"{image_id}{ext}", root / image_id.split("_")[0] / f"{image_id}{ext}"):
                if candidate.is_file():
                    return candidate
    return None


def _choose_cells(runs: Runs, dataset: str) -> list[Cell]:
    cells = [c for c in runs.cells if c.dataset == dataset]
    present = {c.protocol for c in cells}
    for protocol in [p for p in GRID_PROTOCOLS if p in present] + sorted(present - set(GRID_PROTOCOLS)):
        pcells = [c for c in cells if c.protocol == protocol]
        methods_per_fold = Counter()
        for fold in {c.fold for c in pcells}:
            methods_per_fold[fold] = len({c.method for c in pcells if c.fold == fold})
        fold = sorted(methods_per_fold, key=lambda f: (-methods_per_fold[f], f))[0]
        chosen: dict[str, Cell] = {}
        for c in sorted(pcells, key=lambda c: c.seed):
            if c.fold == fold:
                chosen.setdefault(c.method, c)
        return list(chosen.values())
    return []


def grid_for_dataset(runs: Runs, dataset: str, method_order: list[str], n_trials: int = 8) -> tuple[bytes, str] | None:
    """PNG bytes and a caption, or None when no cell of the dataset kept its trials and reconstructions."""
    cells = _choose_cells(runs, dataset)
    cells.sort(key=lambda c: method_order.index(c.method) if c.method in method_order else len(method_order))
    trials = next((t for t in (c.trials() for c in cells) if t is not None and len(t)), None)
    if trials is None:
        return None
    have = [{p.stem for p in (c.path / RECON_DIR).glob("*.png")} for c in cells]
    common = [t for t in trials["trial_id"] if all(t in h for h in have)]
    pool = trials[trials["trial_id"].isin(common)] if common else trials
    # One trial per stimulus first, spread evenly, so the grid shows different images.
    pool = pool.drop_duplicates("image_id") if pool["image_id"].nunique() >= min(n_trials, len(pool)) else pool
    idx = np.unique(np.linspace(0, len(pool) - 1, num=min(n_trials, len(pool))).round().astype(int))
    picked = pool.iloc[idx]
    roots = _image_roots(runs, cells)
    stimuli = [_read(_stimulus_path(roots, i)) for i in picked["image_id"]]
    rows = []
    for c in cells:
        name = c.method if c.kind == "method" else f"{c.method} ({c.kind})"
        rows.append((name, [_read(c.recon_path(t)) for t in picked["trial_id"]]))
    if all(img is None for _, imgs in rows for img in imgs):
        return None
    titles = [f"{t}\n{i}" for t, i in zip(picked["trial_id"], picked["image_id"])]
    c0 = cells[0]
    title = f"{dataset}: {c0.protocol} / {c0.fold} — stimulus vs reconstructions"
    png = reconstruction_grid(stimuli, rows, titles, title)
    missing = sum(s is None for s in stimuli)
    caption = (f"{dataset}, protocol {c0.protocol}, fold {c0.fold}, lowest seed per method; "
               f"{len(picked)} test trials" + (f"; {missing} stimulus image(s) not found under image_root" if missing else ""))
    return png, caption
