"""The run store: one directory per cell of the experiment grid, written atomically, read as tidy tables.

This module owns the layout: the grid writes through :class:`RunStore`, and the report reads through it
(:meth:`RunStore.scan`, :meth:`RunStore.current_cells`, :meth:`RunStore.read_set_level`, the file names
below), so no other module spells a path inside a runs directory.

Layout::

    RUNS/<dataset>/<protocol>/<fold>/<method>/seed-<seed>/<config_hash[:12]>/
        cell.json          what the cell is: keys, method parameters, oracle flag, the inputs its hash covers
        provenance.json    config hash, split and dataset fingerprints, weights sha256, versions, commit, device
        recon/<trial_id>.png   reconstructions, one per test trial (kept across a kill: a rerun makes only the missing)
        trials.parquet     trial_id, subject, image_id, label of the test trials
        samples.parquet    per-sample metric values: trial_id, subject, metric, backbone, value
        metrics.parquet    tidy rows of RESULT_COLUMNS for this cell (per-sample metrics, mean per subject)
        set_inputs.npz     per-trial features of the set-level metrics (FID, KID, IS), rows in trials order
        embeddings.npz     a method's predicted image embeddings (``Method.embed``): ``trial_ids``, ``embedding``,
                           ``space``; what zero-shot retrieval is scored from (kept across a kill, like recon/)
        DONE               written last; a cell with DONE is skipped by a rerun
    RUNS/current.json  the cells of the config last run here and the submitted cells (``eeg2img submit``) kept
                       beside them: what results.csv and the report are built from
    RUNS/benchmark.json  the benchmark those cells belong to: its ``benchmark_id`` and what it hashes
                       (every fold's dataset and split fingerprints, the metric specification;
                       ``eeg2img.grid.benchmark``), and, outside the hash, ``sources``: where this
                       machine found each fold's data (what ``eeg2img submit`` scores against)
    RUNS/results.csv, RUNS/results.parquet   the tidy rows of those cells
    RUNS/.lock         held by the one `eeg2img run` writing the store (holds its pid)
    RUNS/set_level.csv, RUNS/set_level.parquet   FID, KID and IS over the pooled test trials of all folds of
                       a (dataset, protocol, method, seed), and per subject where N reaches the minimum

``config_hash`` covers everything that decides a cell: the method, its parameters and seed, the dataset's
fingerprint and loading options, the fold's split fingerprint (its exact train/val/test trials, so split
options such as ``allow_test_images_in_train`` too), the metric specification and the backbone's weights.
A changed input makes a new cell beside the old one; the old one is never served for the new config,
and ``eeg2img run --prune`` deletes cells the current config does not refer to.

A cell is finished only when DONE exists, and DONE is written after every other file, each by
temp-file + rename, so a run killed at any point leaves either a finished cell or one that a rerun
completes — never duplicated or half-written rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from eeg2img.atomic import (
    exclusive_lock,
    remove_stale_temps,
    write_csv,
    write_json,
    write_parquet,
    write_png,
    write_text,
    write_with,
)
from eeg2img.digest import document_digest
from eeg2img.errors import UserError

# ``label`` is the protocol the engine computed the value under ("5-way top-1"): part of what a value is.
# ``config_hash`` names the cell a row comes from (two configurations of one method never share a row key).
RESULT_COLUMNS = ["dataset", "protocol", "fold", "subject", "method", "seed", "metric", "backbone", "label",
                  "config_hash", "value"]
SAMPLE_COLUMNS = ["trial_id", "subject", "metric", "backbone", "value"]
POOLED_KEYS = ["dataset", "protocol", "method", "seed"]
SET_LEVEL_FILE_COLUMNS = [*POOLED_KEYS, "folds", "subject", "metric", "backbone", "label", "value", "std", "ci_low",
                          "ci_high", "n", "min_n", "status", "warning"]
_SET_INPUTS = "set_inputs.npz"
_EMBEDDINGS = "embeddings.npz"
CURRENT_FILE = "current.json"
BENCHMARK_FILE = "benchmark.json"
LOCK_FILE = ".lock"
CELL_FILE = "cell.json"
PROVENANCE_FILE = "provenance.json"
TRIALS_FILE = "trials.parquet"
SAMPLES_FILE = "samples.parquet"
METRICS_FILE = "metrics.parquet"
DONE_FILE = "DONE"
RECON_DIR = "recon"
RESULTS_FILES = ("results.parquet", "results.csv")  # the first that exists is read
SET_LEVEL_FILES = ("set_level.parquet", "set_level.csv")
_CELL_DIRS = "*/*/*/*/seed-*/*"  # <dataset>/<protocol>/<fold>/<method>/seed-<seed>/<config_hash12>


def recon_path(cell: Path, trial_id: str) -> Path:
    """Where a cell keeps the reconstruction of one test trial."""
    return Path(cell) / RECON_DIR / f"{trial_id}.png"


@dataclass(frozen=True)
class CellScan:
    """What :meth:`RunStore.scan` found: finished cells of the current config and what it left out."""

    finished: list[Path]
    unfinished: int
    other_configs: int


@dataclass(frozen=True)
class CellKey:
    dataset: str
    protocol: str
    fold: str
    method: str
    seed: int
    config_hash: str

    def relpath(self) -> Path:
        for part in (self.dataset, self.protocol, self.fold, self.method):
            if not part or "/" in part or part.startswith("."):
                raise UserError(f"invalid name {part!r} in a run cell; names may not be empty, contain '/' or start with '.'")
        return Path(self.dataset, self.protocol, self.fold, self.method, f"seed-{self.seed}", self.config_hash[:12])


class RunStore:
    """Reads and writes cells under ``root``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # --- one cell ----------------------------------------------------------------------------------
    def cell_dir(self, key: CellKey) -> Path:
        return self.root / key.relpath()

    def is_done(self, key: CellKey) -> bool:
        return (self.cell_dir(key) / DONE_FILE).is_file()

    def start(self, key: CellKey, params: dict, is_oracle: bool, provenance: dict, inputs: dict | None = None,
              submission: dict | None = None) -> Path:
        d = self.cell_dir(key)
        (d / RECON_DIR).mkdir(parents=True, exist_ok=True)
        # A run killed mid-write leaves its temp files behind; drop those of writers that are gone.
        remove_stale_temps(d)
        remove_stale_temps(d / RECON_DIR)
        extra = {"kind": "submission", "submission": submission} if submission is not None else {}
        write_json(d / CELL_FILE, {**asdict(key), "params": params, "is_oracle": bool(is_oracle),
                                     "inputs": inputs or {}, **extra})
        write_json(d / PROVENANCE_FILE, provenance)
        return d

    def discard_if_empty(self, key: CellKey) -> bool:
        """Remove an unfinished cell that holds no reconstruction yet (and its now empty parents)."""
        import shutil

        d = self.cell_dir(key)
        if not d.is_dir() or self.is_done(key) or self.finished_reconstructions(key):
            return False
        shutil.rmtree(d, ignore_errors=True)
        for parent in d.parents:
            if parent == self.root or self.root not in parent.parents:
                break
            try:
                parent.rmdir()
            except OSError:
                break
        return True

    def finished_reconstructions(self, key: CellKey) -> set[str]:
        recon = self.cell_dir(key) / RECON_DIR
        return {p.stem for p in recon.glob("*.png")} if recon.is_dir() else set()

    def save_reconstruction(self, key: CellKey, trial_id: str, image: np.ndarray) -> None:
        write_png(recon_path(self.cell_dir(key), trial_id), np.ascontiguousarray(image, dtype=np.uint8))

    def load_reconstructions(self, key: CellKey, trial_ids) -> np.ndarray:
        from eeg2img.datasets.base import read_rgb

        return np.stack([read_rgb(recon_path(self.cell_dir(key), t)) for t in trial_ids])

    def save_embeddings(self, key: CellKey, trial_ids, embedding: np.ndarray, space: str) -> None:
        arrays = {"trial_ids": np.asarray(trial_ids, dtype=str), "embedding": np.asarray(embedding, np.float32),
                  "space": np.asarray(space)}
        write_with(self.cell_dir(key) / _EMBEDDINGS, lambda p: _save_npz(p, arrays))

    def load_embeddings(self, key: CellKey, trial_ids) -> tuple[np.ndarray, str] | None:
        """The saved embeddings in ``trial_ids`` order and their space; None when the cell saved none for them."""
        path = self.cell_dir(key) / _EMBEDDINGS
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                saved, emb, space = z["trial_ids"].tolist(), z["embedding"], str(z["space"])
        except (OSError, ValueError, KeyError) as err:
            raise UserError(f"{path}: unreadable ({err.__class__.__name__}); delete it and rerun") from None
        row = {t: i for i, t in enumerate(saved)}
        wanted = [str(t) for t in trial_ids]
        if any(t not in row for t in wanted):
            return None
        return emb[[row[t] for t in wanted]], space

    def finish(self, key: CellKey, trials: pd.DataFrame, samples: pd.DataFrame, rows: pd.DataFrame, provenance: dict,
               set_inputs: dict[str, tuple[np.ndarray, ...]] | None = None) -> None:
        d = self.cell_dir(key)
        arrays = {f"{name}#{i}": np.asarray(a) for name, parts in (set_inputs or {}).items() for i, a in enumerate(parts)}
        write_with(d / _SET_INPUTS, lambda p: _save_npz(p, arrays))
        write_parquet(d / TRIALS_FILE, trials)
        write_parquet(d / SAMPLES_FILE, samples[SAMPLE_COLUMNS])
        write_parquet(d / METRICS_FILE, rows.assign(config_hash=key.config_hash)[RESULT_COLUMNS])
        write_json(d / PROVENANCE_FILE, provenance)
        write_text(d / DONE_FILE, "done\n")

    # --- the whole store ---------------------------------------------------------------------------
    def all_cells(self) -> list[Path]:
        """Every cell folder in the store, finished or not, of any configuration."""
        return sorted(p.parent for p in self.root.glob(f"{_CELL_DIRS}/{CELL_FILE}"))

    def finished_cells(self, keys: list[CellKey] | None = None) -> list[Path]:
        """Finished cells: of ``keys`` (the current config) when given, else every finished cell in the store."""
        if not self.root.is_dir():
            raise UserError(f"{self.root}: no such runs directory; run `eeg2img run` or `eeg2img demo` first")
        if keys is not None:
            return sorted(self.cell_dir(k) for k in keys if self.is_done(k))
        return sorted(p.parent for p in self.root.glob(f"{_CELL_DIRS}/{DONE_FILE}"))

    def lock(self):
        """Held by the one process writing this store; a second one fails in one line naming the holder."""
        return exclusive_lock(self.root / LOCK_FILE, str(self.root),
                              "wait for that `eeg2img run` to finish, or pass another --out")

    def _current(self) -> dict[str, list[str]] | None:
        """``current.json`` validated: ``{"cells": [...], "submissions": [...]}``; None for a store without it."""
        path = self.root / CURRENT_FILE
        if not path.is_file():
            return None
        try:
            doc = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UserError(f"{path}: unreadable ({err.__class__.__name__}); rerun `eeg2img run` to rewrite it") from None
        cells = doc.get("cells") if isinstance(doc, dict) else None
        submitted = doc.get("submissions", []) if isinstance(doc, dict) else None
        for listed in (cells, submitted):
            if not isinstance(listed, list) or not all(isinstance(c, str) for c in listed):
                raise UserError(f"{path}: 'cells' and 'submissions' must be lists of cell paths; "
                                "rerun `eeg2img run` to rewrite it")
        return {"cells": cells, "submissions": submitted}

    def current_cells(self) -> set[str] | None:
        """The cells (paths relative to the root) of the config last run here and the submitted ones;
        None for a store without the list."""
        doc = self._current()
        return None if doc is None else set(doc["cells"]) | set(doc["submissions"])

    def current_submissions(self) -> list[CellKey]:
        """The keys of the submitted cells listed as current (``eeg2img submit``) that still exist."""
        listed = (self._current() or {}).get("submissions", [])
        return [self.key_of(self.root / rel) for rel in listed if (self.root / rel / CELL_FILE).is_file()]

    def replace_submissions(self, keys: list[CellKey]) -> None:
        """List ``keys`` as the store's submitted cells, keeping its config's cells as they are."""
        self.write_current_paths((self._current() or {}).get("cells", []), [str(k.relpath()) for k in keys])

    def current_keys(self) -> list[CellKey]:
        """The keys of every current cell (config and submitted) that has a folder, finished or not."""
        return [self.key_of(self.root / rel) for rel in sorted(self.current_cells() or ())
                if (self.root / rel / CELL_FILE).is_file()]

    def key_of(self, cell: Path) -> CellKey:
        """The key of a cell folder, from its cell.json."""
        c = _read_cell(cell)
        return CellKey(c["dataset"], c["protocol"], c["fold"], c["method"], int(c["seed"]), c["config_hash"])

    def scan(self) -> CellScan:
        """The finished cells of the current config (every finished cell where there is no current list)."""
        if not self.root.is_dir():
            raise UserError(f"{self.root}: no such runs directory; pass the folder `eeg2img run` wrote")
        current = self.current_cells()
        finished, unfinished, other = [], 0, 0
        for d in self.all_cells():
            if current is not None and str(d.relative_to(self.root)) not in current:
                other += 1
            elif (d / DONE_FILE).is_file():
                finished.append(d)
            else:
                unfinished += 1
        return CellScan(finished, unfinished, other)

    def first_existing(self, names: tuple[str, ...]) -> Path | None:
        """The first of the store's root files ``names`` (parquet before csv) that exists."""
        return next((self.root / n for n in names if (self.root / n).is_file()), None)

    def write_current(self, keys: list[CellKey], submissions: list[CellKey] = ()) -> None:
        self.write_current_paths([str(k.relpath()) for k in keys], [str(k.relpath()) for k in submissions])

    def write_current_paths(self, cells: list[str], submissions: list[str]) -> None:
        write_json(self.root / CURRENT_FILE, {"cells": sorted(cells), "submissions": sorted(submissions)})

    def write_benchmark(self, doc: dict) -> None:
        write_json(self.root / BENCHMARK_FILE, doc)

    def read_benchmark(self) -> dict | None:
        """The benchmark document of the config last run here; None for a store written before benchmark ids."""
        path = self.root / BENCHMARK_FILE
        if not path.is_file():
            return None
        fix = "rerun `eeg2img run` with the store's config to rewrite it"
        try:
            doc = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UserError(f"{path}: unreadable ({err.__class__.__name__}); {fix}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("benchmark_id"), str) or not isinstance(doc.get("folds"), list):
            raise UserError(f"{path}: not a benchmark document (needs 'benchmark_id' and 'folds'); {fix}")
        if document_digest(doc, "benchmark_id", "sources") != doc["benchmark_id"]:
            raise UserError(f"{path}: benchmark_id does not match the document (edited by hand?); {fix}")
        return doc

    def results(self, keys: list[CellKey] | None = None) -> pd.DataFrame:
        frames = []
        for d in self.finished_cells(keys):
            try:
                rows = pd.read_parquet(d / METRICS_FILE)
            except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a corrupt file
                raise UserError(f"{d / METRICS_FILE}: unreadable ({err.__class__.__name__}); delete {d} and rerun") from None
            if "config_hash" not in rows.columns:  # written before rows carried their cell's hash
                rows = rows.assign(config_hash=_read_cell(d)["config_hash"])
            frames.append(rows)
        if not frames:
            return pd.DataFrame(columns=RESULT_COLUMNS)
        table = pd.concat(frames, ignore_index=True).reindex(columns=RESULT_COLUMNS)
        table["label"] = table["label"].fillna("")  # cells written before labels were stored
        return table.sort_values(RESULT_COLUMNS[:-1], kind="stable").reset_index(drop=True)

    def set_inputs(self, cell: Path) -> dict[str, tuple[np.ndarray, ...]]:
        """``{metric@backbone: arrays}`` of a finished cell (rows in the order of its trials.parquet)."""
        path = Path(cell) / _SET_INPUTS
        if not path.is_file():
            return {}
        try:
            with np.load(path, allow_pickle=False) as z:
                flat = {k: z[k] for k in z.files}
        except (OSError, ValueError) as err:
            raise UserError(f"{path}: unreadable ({err.__class__.__name__}); delete {cell} and rerun") from None
        out: dict[str, list] = {}
        for k in sorted(flat, key=lambda k: (k.rsplit("#", 1)[0], int(k.rsplit("#", 1)[1]))):
            out.setdefault(k.rsplit("#", 1)[0], []).append(flat[k])
        return {name: tuple(parts) for name, parts in out.items()}

    def write_set_level(self, table: pd.DataFrame) -> pd.DataFrame:
        table = table.reindex(columns=SET_LEVEL_FILE_COLUMNS)
        write_csv(self.root / SET_LEVEL_FILES[1], table)
        write_parquet(self.root / SET_LEVEL_FILES[0], table.astype({"subject": str}))
        return table

    def samples(self, keys: list[CellKey] | None = None) -> pd.DataFrame:
        frames = []
        for d in self.finished_cells(keys):
            cell = _read_cell(d)
            s = pd.read_parquet(d / SAMPLES_FILE)
            for k in ("dataset", "protocol", "fold", "method", "seed"):
                s.insert(0, k, cell[k])
            frames.append(s)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def write_results(self, keys: list[CellKey] | None = None) -> pd.DataFrame:
        table = self.results(keys)
        write_csv(self.root / RESULTS_FILES[1], table)
        write_parquet(self.root / RESULTS_FILES[0], table)
        return table


def _read_cell(d: Path) -> dict:
    try:
        cell = json.loads((d / CELL_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{d / CELL_FILE}: unreadable ({err.__class__.__name__}); delete {d} and rerun") from None
    if not isinstance(cell, dict) or "config_hash" not in cell:
        raise UserError(f"{d / CELL_FILE}: not a cell description; delete {d} and rerun")
    return cell


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to the temporary name
        np.savez(f, **arrays)
