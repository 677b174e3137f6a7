"""Read a runs directory into the report's tables, through the run store's reader (:mod:`eeg2img.runstore`
owns the layout: which cells exist, which are finished and current, and every file name).

Only finished cells (``DONE`` present) count, and where ``RUNS/current.json`` exists (written by every
``eeg2img run``), only the cells of the config last run there: a store may hold cells of older
configurations (another dataset version, other parameters), which are never mixed into the report. ``metrics.parquet`` is the source of a cell's rows; a
finished cell without one falls back to its rows in ``RUNS/results.parquet`` (or ``results.csv``).
``provenance.json``, ``trials.parquet``, ``samples.parquet`` and ``recon/`` are optional: what is
missing only leaves out the part of the report that needs it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eeg2img.errors import UserError
from eeg2img.runstore import (
    CELL_FILE,
    CURRENT_FILE,
    DONE_FILE,
    METRICS_FILE,
    POOLED_KEYS,
    PROVENANCE_FILE,
    RESULT_COLUMNS,
    RESULTS_FILES,
    SAMPLES_FILE,
    SET_LEVEL_FILE_COLUMNS,
    SET_LEVEL_FILES,
    TRIALS_FILE,
    RunStore,
    recon_path,
)
from metrics.vocabulary import SET_METRICS

CELL_KEYS = ["dataset", "protocol", "fold", "method", "seed"]
UNIT_KEYS = ["dataset", "protocol", "method", "metric", "backbone", "fold", "subject"]


def _read_parquet(path: Path, what: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a corrupt file
        raise UserError(f"{path}: unreadable {what} ({err.__class__.__name__}); delete the cell and rerun it") from None


def _read_json(path: Path, what: str) -> dict:
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: unreadable {what} ({err.__class__.__name__}); delete the cell and rerun it") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: {what} must be a JSON object; delete the cell and rerun it")
    return obj


def subject_key(value: Any) -> str:
    """Subjects as strings, so ``1``, ``1.0`` and ``"1"`` are one subject and set-level rows read ``all``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "all"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    try:
        f = float(text)
    except ValueError:
        return text or "all"
    return str(int(f)) if f.is_integer() else text


def method_kind(method: str, is_oracle: bool = False) -> str:
    """``oracle`` (upper bound that saw the stimulus), ``floor`` (chance-level reference) or ``method``
    (a cell submitted by an outside lab is a ``submission`` instead: :attr:`Cell.kind`)."""
    if is_oracle or method.startswith("oracle-"):
        return "oracle"
    if method.startswith("floor-"):
        return "floor"
    return "method"


@dataclass
class Cell:
    """One finished cell of the grid."""

    path: Path
    dataset: str
    protocol: str
    fold: str
    method: str
    seed: int
    config_hash: str
    params: dict
    is_oracle: bool
    provenance: dict = field(default_factory=dict)
    submission: dict | None = None  # an outside lab's metadata (``eeg2img submit``); None for a built-in method

    @property
    def key(self) -> tuple:
        return (self.dataset, self.protocol, self.fold, self.method, self.seed)

    @property
    def kind(self) -> str:
        kind = method_kind(self.method, self.is_oracle)
        return "submission" if kind == "method" and self.submission is not None else kind

    def recon_path(self, trial_id: str) -> Path:
        return recon_path(self.path, trial_id)

    def trials(self) -> pd.DataFrame | None:
        p = self.path / TRIALS_FILE
        if not p.is_file():
            return None
        t = _read_parquet(p, "trials table")
        missing = {"trial_id", "image_id"} - set(t.columns)
        if missing:
            raise UserError(f"{p}: trials table lacks column(s) {sorted(missing)}; delete the cell and rerun it")
        t = t.copy()
        t["trial_id"] = t["trial_id"].astype(str)
        t["image_id"] = t["image_id"].astype(str)
        return t

    def samples(self) -> pd.DataFrame | None:
        p = self.path / SAMPLES_FILE
        if not p.is_file():
            return None
        s = _read_parquet(p, "per-sample metrics")
        missing = {"trial_id", "metric", "value"} - set(s.columns)
        if missing:
            raise UserError(f"{p}: per-sample table lacks column(s) {sorted(missing)}; delete the cell and rerun it")
        s = s.copy()
        if "backbone" not in s.columns:
            s["backbone"] = ""
        s["subject"] = [subject_key(v) for v in s["subject"]] if "subject" in s.columns else "all"
        s["trial_id"] = s["trial_id"].astype(str)
        s["value"] = pd.to_numeric(s["value"], errors="coerce")
        return s


def _parse_cell(where: Path) -> Cell:
    cell_json = where / CELL_FILE
    meta = _read_json(cell_json, "cell description")
    # The path is authoritative for the keys when cell.json lacks them (older cells).
    rel = where.parts[-6:]
    fallback = dict(zip(["dataset", "protocol", "fold", "method"], rel[:4]))
    seed_dir = rel[4] if len(rel) >= 5 else ""
    fallback["seed"] = seed_dir.removeprefix("seed-")
    fallback["config_hash"] = where.name
    values = {k: meta.get(k, fallback.get(k)) for k in [*CELL_KEYS, "config_hash"]}
    try:
        seed = int(values["seed"])
    except (TypeError, ValueError):
        raise UserError(f"{cell_json}: seed {values['seed']!r} is not an integer; delete the cell and rerun it") from None
    prov_path = where / PROVENANCE_FILE
    prov = _read_json(prov_path, "provenance record") if prov_path.is_file() else {}
    params = meta.get("params") or {}
    return Cell(
        path=where,
        dataset=str(values["dataset"]),
        protocol=str(values["protocol"]),
        fold=str(values["fold"]),
        method=str(values["method"]),
        seed=seed,
        config_hash=str(values["config_hash"] or where.name),
        params=params if isinstance(params, dict) else {},
        is_oracle=bool(meta.get("is_oracle", False)),
        provenance=prov,
        submission=meta["submission"] if meta.get("kind") == "submission" and isinstance(meta.get("submission"), dict)
        else None,
    )


@dataclass
class Runs:
    """The finished cells of a runs directory and their tidy results."""

    root: Path
    cells: list[Cell]
    results: pd.DataFrame  # RESULT_COLUMNS + kind; subject as str, fold as str, seed as int
    notes: list[str] = field(default_factory=list)
    # RUNS/benchmark.json (eeg2img.grid.benchmark): the benchmark id and what it hashes; None for a store
    # written before benchmark ids
    benchmark: dict | None = None
    stores: list[Path] = field(default_factory=list)  # the run stores read (several for a merged leaderboard)
    # FID/KID/IS over the pooled test trials of each (dataset, protocol, method, seed): SET_LEVEL_FILE_COLUMNS
    # + kind; rows with status "N < min" have no value
    set_level: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=[*SET_LEVEL_FILE_COLUMNS, "kind"]))

    def cell(self, dataset: str, protocol: str, fold: str, method: str, seed: int) -> Cell | None:
        return self._by_key.get((dataset, protocol, fold, method, seed))

    @cached_property
    def _by_key(self) -> dict[tuple, Cell]:
        return {c.key: c for c in self.cells}

    @cached_property
    def kinds(self) -> dict[str, str]:
        """Method name → kind; a method counts as an oracle if any of its cells says so."""
        out: dict[str, str] = {}
        for c in self.cells:
            if out.get(c.method) != "oracle":
                out[c.method] = c.kind
        for m in self.results["method"].unique():
            out.setdefault(m, method_kind(m))
        return out

    @cached_property
    def _all_samples(self) -> pd.DataFrame:
        return self._read_samples(self.cells)

    def samples(self, cells: list[Cell] | None = None) -> pd.DataFrame:
        """Per-sample values of the given cells (all by default, read once), tagged with the cell keys."""
        return self._all_samples.copy() if cells is None else self._read_samples(cells)

    def _read_samples(self, cells: list[Cell]) -> pd.DataFrame:
        frames = []
        for c in cells:
            s = c.samples()
            if s is None or s.empty:
                continue
            for k in CELL_KEYS:
                s[k] = getattr(c, k)
            frames.append(s)
        if not frames:
            return pd.DataFrame(columns=[*CELL_KEYS, "trial_id", "subject", "metric", "backbone", "value"])
        return pd.concat(frames, ignore_index=True)


def _normalise(rows: pd.DataFrame, cell: Cell | None, where: Path) -> pd.DataFrame:
    if "metric" not in rows.columns or "value" not in rows.columns:
        raise UserError(f"{where}: results lack the 'metric' and 'value' columns; delete the cell and rerun it")
    rows = rows.copy()
    for k in CELL_KEYS:
        if k not in rows.columns:
            if cell is None:
                raise UserError(f"{where}: results lack the {k!r} column; regenerate them with `eeg2img run`")
            rows[k] = getattr(cell, k)
    if "backbone" not in rows.columns:
        rows["backbone"] = ""
    if "label" not in rows.columns:  # written before the engine stored its protocol labels
        rows["label"] = ""
    rows["label"] = rows["label"].fillna("").astype(str)
    if "subject" not in rows.columns:
        rows["subject"] = "all"
    rows["subject"] = [subject_key(v) for v in rows["subject"]]
    rows["backbone"] = rows["backbone"].fillna("").astype(str)
    for k in ("dataset", "protocol", "fold", "method", "metric"):
        rows[k] = rows[k].astype(str)
    try:
        rows["seed"] = rows["seed"].astype(int)
    except (TypeError, ValueError):
        raise UserError(f"{where}: non-integer seed in the results; regenerate them with `eeg2img run`") from None
    rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
    if "config_hash" not in rows.columns:  # written before rows carried their cell's hash
        rows["config_hash"] = cell.config_hash if cell is not None else ""
    rows["config_hash"] = rows["config_hash"].fillna("").astype(str)
    return rows[RESULT_COLUMNS]


def _root_results(store: RunStore) -> pd.DataFrame | None:
    p = store.first_existing(RESULTS_FILES)
    if p is None:
        return None
    if p.suffix == ".parquet":
        table = _read_parquet(p, "results table")
    else:
        try:
            table = pd.read_csv(p)
        except (OSError, ValueError, UnicodeDecodeError) as err:
            raise UserError(f"{p}: unreadable results table ({err.__class__.__name__}); rerun `eeg2img run`") from None
    return _normalise(table, None, p)


def load_runs(runs_dir: str | Path) -> Runs:
    """Every finished cell under ``runs_dir`` and the tidy results table (NaN values dropped, noted)."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise UserError(f"{root}: no such runs directory; pass the folder `eeg2img run` wrote")
    notes: list[str] = []
    store = RunStore(root)
    scan = store.scan()
    unfinished, other_configs = scan.unfinished, scan.other_configs
    cells = [_parse_cell(d) for d in scan.finished]
    if not cells:
        extra = f" ({unfinished} unfinished)" if unfinished else ""
        raise UserError(f"{root}: no finished cells{extra}; run `eeg2img run` until cells are DONE")
    if unfinished:
        notes.append(f"{unfinished} unfinished cell(s) left out")
    if other_configs:
        notes.append(f"{other_configs} cell(s) of other configurations left out (not in {CURRENT_FILE}; "
                     "`eeg2img run --prune` deletes them)")

    # Two finished configurations of one cell key (a re-run with other parameters): keep the newest.
    by_key: dict[tuple, list[Cell]] = {}
    for c in cells:
        by_key.setdefault(c.key, []).append(c)
    kept = []
    for group in by_key.values():
        group.sort(key=lambda c: (str(c.provenance.get("created", "")), (c.path / DONE_FILE).stat().st_mtime))
        kept.append(group[-1])
        if len(group) > 1:
            notes.append(
                f"{group[-1].path.relative_to(root)}: newest of {len(group)} configurations of this cell; older ones ignored"
            )
    cells = sorted(kept, key=lambda c: (c.dataset, c.protocol, c.fold, c.method, c.seed))

    frames = []
    root_table = None
    for c in cells:
        p = c.path / METRICS_FILE
        if p.is_file():
            rows = _normalise(_read_parquet(p, "metrics table"), c, p)
        else:
            if root_table is None:
                root_table = _root_results(store)
                if root_table is None:
                    raise UserError(f"{p}: missing and no results.parquet/results.csv in {root}; rerun this cell")
            rows = root_table
            for k in CELL_KEYS:
                rows = rows[rows[k] == getattr(c, k)]
        # Rows must belong to their cell: a copied metrics file would silently mislabel results.
        rows = rows.assign(**{k: getattr(c, k) for k in [*CELL_KEYS, "config_hash"]})
        frames.append(rows)
    results = pd.concat(frames, ignore_index=True)
    finite = np.isfinite(results["value"].to_numpy(dtype=float))
    if not finite.all():
        notes.append(f"{int((~finite).sum())} result row(s) with a missing, NaN or infinite value left out "
                     "(never ranked)")
        results = results[finite]
    if results.empty:
        raise UserError(f"{root}: finished cells hold no metric values; check the metrics configuration and rerun")
    # Per-fold FID/KID/IS rows (older run stores) describe a fraction of the test set each: set-level metrics
    # are read from the pooled set_level table instead.
    per_fold_sets = results["metric"].isin(SET_METRICS)
    if per_fold_sets.any():
        notes.append(f"{int(per_fold_sets.sum())} per-fold FID/KID/IS row(s) left out: set-level metrics are "
                     "reported over the pooled test set (set_level.parquet; rerun `eeg2img run` to write it)")
        results = results[~per_fold_sets]
    # A set-level row (subject "all") next to per-subject rows of the same cell and metric would be
    # averaged with them as if it were one more subject: keep the per-subject rows.
    group = [*CELL_KEYS, "metric", "backbone"]
    has_subjects = (results["subject"] != "all").groupby([results[k] for k in group]).transform("any")
    redundant = (results["subject"] == "all") & has_subjects
    if redundant.any():
        notes.append(f"{int(redundant.sum())} whole-test-set row(s) left out where per-subject rows of the same "
                     "cell and metric exist")
        results = results[~redundant]
    results = results.reset_index(drop=True)
    benchmark = store.read_benchmark()
    if benchmark is None:
        notes.append(f"{root}: no benchmark id (the store predates them); rerun `eeg2img run` to record it")
    runs = Runs(root=root, cells=cells, results=results, notes=notes, benchmark=benchmark, stores=[root])
    results["kind"] = results["method"].map(runs.kinds)
    runs.set_level = _set_level(store, cells, runs.kinds)
    return runs


def _set_level(store: RunStore, cells: list[Cell], kinds: dict[str, str]) -> pd.DataFrame:
    """``RUNS/set_level.parquet`` (or .csv) restricted to the pooled groups of the finished cells read."""
    table = None
    p = store.first_existing(SET_LEVEL_FILES)
    if p is not None:
        try:
            table = _read_parquet(p, "set-level table") if p.suffix == ".parquet" else pd.read_csv(p)
        except (OSError, ValueError, UnicodeDecodeError) as err:
            raise UserError(f"{p}: unreadable set-level table ({err.__class__.__name__}); rerun `eeg2img run`") from None
    if table is None:
        return pd.DataFrame(columns=[*SET_LEVEL_FILE_COLUMNS, "kind"])
    missing = set(SET_LEVEL_FILE_COLUMNS) - set(table.columns)
    if missing:
        raise UserError(f"{p}: set-level table lacks column(s) {sorted(missing)}; rerun `eeg2img run` to rewrite it")
    table = table[SET_LEVEL_FILE_COLUMNS].copy()
    for k in ("dataset", "protocol", "method", "metric", "status"):
        table[k] = table[k].astype(str)
    for k in ("backbone", "label", "warning"):
        table[k] = table[k].astype(object).where(table[k].notna(), "").astype(str)
    table["subject"] = [subject_key(v) for v in table["subject"]]
    table["seed"] = table["seed"].astype(int)
    present = {(c.dataset, c.protocol, c.method, c.seed) for c in cells}
    keep = [k in present for k in zip(table["dataset"], table["protocol"], table["method"], table["seed"])]
    table = table[np.asarray(keep, dtype=bool)].reset_index(drop=True)  # a list of no booleans would select columns
    table["kind"] = table["method"].map(kinds)
    return table


def load_merged(runs_dirs: Sequence[str | Path]) -> Runs:
    """One :class:`Runs` from several run stores (machines, labs) of the very same benchmark.

    Every store must carry a benchmark id and all ids must agree, or one line says which store
    differs. A cell present in two stores with the same configuration is read once (from the first);
    the same cell with another configuration is refused: the leaderboard could not say which it shows.
    """
    stores = [load_runs(d) for d in runs_dirs]
    if len(stores) == 1:
        return stores[0]
    first = stores[0]
    for r in stores:
        if r.benchmark is None:
            raise UserError(f"{r.root}: no benchmark id (the store predates them), so it cannot be merged; "
                            "rerun `eeg2img run` on it")
        if r.benchmark["benchmark_id"] != first.benchmark["benchmark_id"]:
            raise UserError(f"{r.root}: benchmark {r.benchmark['benchmark_id'][:16]}… differs from {first.root}'s "
                            f"{first.benchmark['benchmark_id'][:16]}…; only runs of the very same benchmark merge")
    kept: dict[tuple, Cell] = {}
    source: dict[tuple, Runs] = {}  # the store each kept cell is read from
    notes = []
    for r in stores:
        notes += [f"{r.root}: {n}" for n in r.notes]
        for c in r.cells:
            other = kept.get(c.key)
            if other is None:
                kept[c.key], source[c.key] = c, r
            elif other.config_hash != c.config_hash:
                raise UserError(f"{c.path}: {'/'.join(map(str, c.key))} is also in {other.path} with another "
                                "configuration; merge stores whose shared cells agree, or rename one method")
            else:
                notes.append(f"{'/'.join(map(str, c.key))}: in several stores with the same configuration; "
                             f"read from {source[c.key].root}")
    rows = []
    for r in stores:
        keys = zip(*(r.results[k] for k in CELL_KEYS))
        mine = [source.get(k) is r for k in keys]
        rows.append(r.results[np.asarray(mine, dtype=bool)])
    sets = [r.set_level for r in stores if len(r.set_level)]
    merged = Runs(root=first.root, cells=sorted(kept.values(), key=lambda c: c.key),
                  results=pd.concat(rows, ignore_index=True), notes=notes, benchmark=first.benchmark,
                  stores=[r.root for r in stores])
    if sets:
        table = pd.concat(sets, ignore_index=True)
        merged.set_level = table.drop_duplicates(
            [*POOLED_KEYS, "subject", "metric", "backbone"], keep="first").reset_index(drop=True)
    return merged
