"""The experiment grid: dataset × protocol × fold × method × seed, through the run store.

Work is cut into :class:`FoldJob` units — the methods of one (dataset, protocol, fold, seed) that
share a costly stage (:attr:`eeg2img.methods.Method.shared_stage`), or share none — so components
(an encoder, the diffusion model) are trained once, by the first cell that needs them, and reused
from the cache by the rest; a build lock makes a parallel worker wait for an entry another worker is
building instead of building it twice. A job is a plain picklable
description whose only output is what it writes to the run store, so any executor can run it: in
this process, in a process pool across folds, or (next) on a Ray cluster.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from eeg2img.config import GridConfig
from eeg2img.datasets.base import EEGDataset
from eeg2img.methods import build_method
from eeg2img.provenance import config_hash, provenance
from eeg2img.runstore import POOLED_KEYS, RESULT_COLUMNS, SET_LEVEL_FILE_COLUMNS, CellKey, RunStore
from eeg2img.splits import Fold, make_folds

# Intra-op threads of every cell on CPU. The thread count changes the order of floating-point
# reductions, so models trained with 1 and with 2 threads differ (the quick demo's ACC by up to 0.4 on
# a trial); fixing it makes a cell's numbers the same inline, in a process pool and on any machine.
# Parallelism comes from worker processes (--executor process --workers N) instead.
CELL_THREADS = 1

# Backbones trained or drawn by the project rather than the field's official weights: every number
# they produce is labelled as computed with a substitute.
SUBSTITUTE_BACKBONES = ("synth-cnn", "synth-clip", "proxy")


@dataclass(frozen=True)
class MethodSpec:
    name: str
    params: dict = field(default_factory=dict)

    def config_hash(self, seed: int) -> str:
        return config_hash({"method": self.name, "params": self.params, "seed": seed})


@dataclass(frozen=True)
class FoldJob:
    """The methods of one fold that share a costly stage (or share none): self-contained and picklable."""

    runs_dir: str
    dataset_path: str
    dataset_options: tuple
    protocol: str
    fold: str
    seed: int
    methods: tuple[MethodSpec, ...]
    metrics: tuple[str, ...]
    backbone: str = "synth-cnn"
    split_options: tuple = ()

    def cell_key(self, dataset_name: str, spec: MethodSpec) -> CellKey:
        return CellKey(dataset_name, self.protocol, self.fold, spec.name, self.seed, spec.config_hash(self.seed))


@dataclass
class CellOutcome:
    method: str
    fold: str
    protocol: str
    skipped: bool
    seconds: float


@functools.lru_cache(maxsize=2)
def _load(path: str, options: tuple) -> EEGDataset:
    from eeg2img.datasets import load_dataset

    return load_dataset(path, **dict(options))


@functools.lru_cache(maxsize=8)
def _folds(path: str, options: tuple, protocol: str, seed: int, split_options: tuple) -> dict[str, Fold]:
    return {f.name: f for f in make_folds(_load(path, options), protocol, seed, **dict(split_options))}


def run_fold_job(job: FoldJob, on_cell: Callable[[CellOutcome], None] | None = None) -> list[CellOutcome]:
    """Run (or skip, when finished) every cell of one fold; results land only in the run store.

    ``on_cell`` is called after each cell (in-process progress reporting).
    """
    dataset = _load(job.dataset_path, job.dataset_options)
    fold = _folds(job.dataset_path, job.dataset_options, job.protocol, job.seed, job.split_options)[job.fold]
    store = RunStore(job.runs_dir)
    outcomes = []
    for spec in job.methods:
        key = job.cell_key(dataset.name, spec)
        start = time.perf_counter()
        skipped = store.is_done(key)
        if not skipped:
            run_cell(store, key, dataset, fold, spec, job)
        outcomes.append(CellOutcome(spec.name, job.fold, job.protocol, skipped, time.perf_counter() - start))
        if on_cell is not None:
            on_cell(outcomes[-1])
    return outcomes


def run_cell(store: RunStore, key: CellKey, dataset: EEGDataset, fold: Fold, spec: MethodSpec, job: FoldJob) -> None:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(CELL_THREADS)
    try:
        _run_cell(store, key, dataset, fold, spec, job)
    finally:
        torch.set_num_threads(previous)


def _run_cell(store: RunStore, key: CellKey, dataset: EEGDataset, fold: Fold, spec: MethodSpec, job: FoldJob) -> None:
    import torch

    torch.manual_seed(job.seed)
    np.random.seed(job.seed)
    method = build_method(spec.name, seed=job.seed, **spec.params)
    method.cache_dir = Path(job.runs_dir) / ".cache" / dataset.name / f"seed-{job.seed}"
    record = provenance(
        config_hash=key.config_hash,
        split_fingerprint=fold.fingerprint,
        dataset_fingerprint=dataset.fingerprint,
        dataset_path=str(dataset.source) if dataset.source else None,
        image_root=str(dataset.image_root) if dataset.image_root else None,
        weights={},
        substitute_backbones=[job.backbone] if job.backbone in SUBSTITUTE_BACKBONES and _uses_backbone(job.metrics) else [],
        torch_threads=CELL_THREADS,
        torch_threads_override=os.environ.get("EEG2IMG_TORCH_THREADS") or None,
    )
    store.start(key, method.get_params(), method.is_oracle, record)
    train = dataset.subset(fold.train)
    val = dataset.subset(fold.val) if len(fold.val) else None
    test = dataset.subset(fold.test)
    done = store.finished_reconstructions(key)
    missing = [i for i, t in enumerate(test.trial_ids) if str(t) not in done]
    if missing:
        method.fit(train, val)
        todo = test.subset(missing)
        images = method.reconstruct(todo if method.is_oracle else todo.blind())
        _check_images(images, len(todo), spec.name)
        for trial_id, image in zip(todo.trial_ids, images):
            store.save_reconstruction(key, str(trial_id), image)
    pred = store.load_reconstructions(key, test.trial_ids)
    size = pred.shape[1]
    ref = test.load_images(size=size)
    report = evaluate_cell(pred, ref, test, dataset, job)
    samples = _plain_metric_names(report.per_sample)
    record["weights"] = {**report.provenance["weights_sha256"], **getattr(method, "weights_sha256", {})}
    rows = _tidy_rows(samples, report.labels, key)
    trials = pd.DataFrame(
        {
            "trial_id": test.trial_ids.astype(str),
            "subject": test.subjects.astype(int),
            "image_id": test.image_ids.astype(str),
            "label": test.labels.astype(int),
        }
    )
    store.finish(key, trials, samples, rows, record, set_inputs=report.set_inputs)


def _uses_backbone(metrics) -> bool:
    from metrics.vocabulary import PIXEL_METRICS

    return any(m not in PIXEL_METRICS for m in metrics)


def _check_images(images: np.ndarray, n: int, name: str) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise TypeError(f"method {name} must return uint8 (N, H, W, 3) images, got {getattr(images, 'shape', type(images))}")
    if len(images) != n:
        raise ValueError(f"method {name} returned {len(images)} images for {n} trials")


def evaluate_cell(pred, ref, test: EEGDataset, dataset: EEGDataset, job: FoldJob):
    """The engine's report on one cell: per-sample values, and the inputs of the set-level metrics."""
    from metrics.engine import evaluate_for_runner

    return evaluate_for_runner(
        pred,
        ref,
        metrics=job.metrics,
        trial_ids=test.trial_ids.astype(str),
        subjects=test.subjects.astype(int),
        captions=test.label_captions(),
        dataset=dataset,
        backbone=job.backbone,
        cache_dir=Path(job.runs_dir) / ".cache",
        seed=job.seed,
    )


def _plain_metric_names(frame: pd.DataFrame) -> pd.DataFrame:
    """The engine names metrics ``metric@backbone``; the tidy table keeps the two in separate columns."""
    if frame is None or not len(frame):
        return frame
    return frame.assign(metric=frame["metric"].str.split("@").str[0])


def _tidy_rows(samples: pd.DataFrame, labels: dict[str, str], key: CellKey) -> pd.DataFrame:
    """Per-subject means of the per-sample metrics, each with the protocol label it was computed under."""
    rows = samples.groupby(["subject", "metric", "backbone"], as_index=False)["value"].mean()
    by_plain_name = {(name.split("@")[0], name.split("@", 1)[1]): label for name, label in labels.items()}
    rows["label"] = [by_plain_name.get((m, b), "") for m, b in zip(rows["metric"], rows["backbone"])]
    rows["subject"] = rows["subject"].astype(int)
    for k, v in (("dataset", key.dataset), ("protocol", key.protocol), ("fold", key.fold), ("method", key.method), ("seed", key.seed)):
        rows[k] = v
    return rows[RESULT_COLUMNS]


def pool_set_level(store: RunStore, options: dict | None = None) -> pd.DataFrame:
    """FID, KID and IS over the pooled test trials of all folds of each (dataset, protocol, method, seed).

    Per-subject and LOSO folds test each trial exactly once, so the folds' trials together are the
    whole test set. Folds are concatenated in fold-name order, each in its trials.parquet order — the
    order the value depends on (KID subsets and the IS shuffle are seeded) — and :mod:`metrics.set_level`
    computes each metric once, for the whole set and for each subject whose trials reach the minimum N.
    """
    from metrics.set_level import SetLevelOptions, set_level_rows

    groups: dict[tuple, list[tuple[str, Path]]] = {}
    for d in store.finished_cells():
        cell = json.loads((d / "cell.json").read_text())
        groups.setdefault(tuple(cell[k] for k in POOLED_KEYS), []).append((cell["fold"], d))
    rows = []
    for key, cells in sorted(groups.items()):
        cells.sort()
        inputs = [store.set_inputs(d) for _, d in cells]
        subjects = np.concatenate([pd.read_parquet(d / "trials.parquet")["subject"].to_numpy() for _, d in cells])
        names = sorted(set().union(*inputs))
        opts = SetLevelOptions(seed=int(key[3]), **(options or {}))
        for name in names:
            if not all(name in i for i in inputs):
                continue  # a fold that did not compute this metric: no pooled value rather than a partial one
            arrays = tuple(np.concatenate(parts) for parts in zip(*(i[name] for i in inputs)))
            metric, backbone = name.split("@", 1)
            for row in set_level_rows(metric, backbone, arrays, subjects, opts):
                rows.append({**dict(zip(POOLED_KEYS, key)), "folds": len(cells), **row})
    return pd.DataFrame(rows, columns=SET_LEVEL_FILE_COLUMNS)


# --- building the grid and running it -----------------------------------------------------------------
def plan(config: GridConfig, runs_dir: str | Path) -> list[FoldJob]:
    """Every fold job of the grid, shared stages first (see :func:`_shared_stages_first`)."""
    methods = tuple(MethodSpec(name, dict(params)) for name, params in config.methods.items())
    jobs = []
    for spec in config.datasets:
        options = tuple(sorted((k, v) for k, v in spec.options.items() if k != "split_file"))
        for protocol in config.protocols:
            for seed in config.seeds:
                split_options = {"subjects": spec.subjects}
                if protocol == "loso":
                    split_options["allow_test_images_in_train"] = config.allow_test_images_in_train
                if protocol == "official" and "split_file" in spec.options:
                    split_options["split_file"] = spec.options["split_file"]
                split_key = tuple(sorted(split_options.items()))
                for fold_name in _folds(spec.path, options, protocol, seed, split_key):
                    for group in _by_shared_stage(methods):
                        jobs.append(FoldJob(str(runs_dir), spec.path, options, protocol, fold_name, seed, group,
                                            config.metrics, config.backbone, split_key))
    return _shared_stages_first(jobs)


def _by_shared_stage(methods: tuple[MethodSpec, ...]) -> list[tuple[MethodSpec, ...]]:
    """A fold's methods, grouped by the costly stage they share (methods without one form a group)."""
    from eeg2img.methods import shared_stage

    groups: dict[str | None, list[MethodSpec]] = {}
    for m in methods:
        groups.setdefault(shared_stage(m.name), []).append(m)
    return [tuple(g) for g in groups.values()]


def _shared_stages_first(jobs: list[FoldJob]) -> list[FoldJob]:
    """Order jobs so a pool builds each shared stage at once while its other workers do the rest.

    For each (stage, dataset, seed) the first job that needs the stage goes first — it builds it —
    then every job that needs no shared stage, then the remaining jobs, which find the stage built
    (or wait for it on its build lock). The order changes no result: every cell is seeded on its own.
    """
    from eeg2img.methods import shared_stage

    def stage(job: FoldJob):
        name = shared_stage(job.methods[0].name)
        return None if name is None else (name, job.dataset_path, job.dataset_options, job.seed)

    first, free, rest, seen = [], [], [], set()
    for job in jobs:
        key = stage(job)
        if key is None:
            free.append(job)
        elif key not in seen:
            seen.add(key)
            first.append(job)
        else:
            rest.append(job)
    return first + free + rest


class InlineExecutor:
    """Runs jobs one after another in this process, reporting every cell as it finishes."""

    def map(self, fn: Callable, jobs: Iterable, on_cell: Callable | None = None) -> Iterator:
        for job in jobs:
            yield fn(job, on_cell)


class ProcessExecutor:
    """Runs fold jobs in a pool of fresh processes (spawned, so nothing leaks between them)."""

    def __init__(self, workers: int):
        self.workers = workers

    def map(self, fn: Callable, jobs: Iterable, on_cell: Callable | None = None) -> Iterator:
        # Progress crosses the process boundary once per fold, with the fold's outcomes.
        from eeg2img.methods import defining_module

        jobs = list(jobs)
        # A spawned worker knows only the methods its imports register: import every module that
        # registered a method of the grid (a plugin, or a test's module), as the parent did.
        modules = sorted({m for job in jobs for spec in job.methods if (m := defining_module(spec.name))})
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"),
                                   initializer=_start_worker, initargs=(CELL_THREADS, tuple(modules)))
        try:
            futures = [pool.submit(fn, job) for job in jobs]
            for f in as_completed(futures):
                outcomes = f.result()
                for o in outcomes if on_cell else ():
                    on_cell(o)
                yield outcomes
        finally:
            pool.shutdown(cancel_futures=True)


def _start_worker(threads: int, modules: tuple[str, ...]) -> None:
    import importlib

    import torch

    # Workers share the cores: torch's default (all cores per process) oversubscribes them badly.
    torch.set_num_threads(threads)
    for name in modules:
        importlib.import_module(name)


def make_executor(name: str, workers: int = 1):
    return ProcessExecutor(workers) if name == "process" else InlineExecutor()


def run_grid(config: GridConfig, runs_dir: str | Path, executor=None, progress: bool = True) -> pd.DataFrame:
    """Run every unfinished cell, then write and return the tidy results table."""
    from tqdm.auto import tqdm

    jobs = plan(config, runs_dir)
    executor = executor or make_executor(config.executor, config.workers)
    n_cells = sum(len(j.methods) for j in jobs)
    with tqdm(total=n_cells, desc="grid", unit="cell", disable=not progress) as bar:

        def tick(o: CellOutcome) -> None:
            status = "skip" if o.skipped else f"{o.seconds:.1f}s"
            bar.set_postfix_str(f"{o.protocol}/{o.fold}/{o.method} {status}")
            bar.update(1)

        for _ in executor.map(run_fold_job, jobs, tick):
            pass
    store = RunStore(runs_dir)
    store.write_set_level(pool_set_level(store))
    return store.write_results()
