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
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from eeg2img.datasets.base import EEGDataset
from eeg2img.errors import UserError
from eeg2img.grid.benchmark import benchmark_identity, benchmark_sources
from eeg2img.grid.config import GridConfig
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

    def config_hash(self, seed: int, inputs: dict | None = None) -> str:
        """The cell's key: this method, its code version, *every* parameter and seed, and every other input.

        The parameters are the built method's ``get_params()``, the defaults included, so a default that
        changes in the code gives new cells instead of serving the old ones; ``Method.version`` covers a
        change of behaviour at the same parameters.
        """
        method = build_method(self.name, seed=seed, **self.params)
        return config_hash({"method": self.name, "version": str(getattr(method, "version", "")),
                            "params": method.get_params(), "seed": seed, "inputs": inputs or {}})


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
    dataset_name: str = ""
    dataset_fingerprint: str = ""
    split_fingerprint: str = ""
    metric_spec: str = "{}"  # JSON of :func:`metric_spec` (a string keeps the job hashable and picklable)
    backbone_weights: str | None = None
    # A prefit job only runs its methods' :meth:`~eeg2img.methods.Method.prefit` (what they can train
    # before the shared stage exists); it has no cells of its own, the job with prefit=False has them.
    prefit: bool = False

    def inputs(self) -> dict:
        """Everything besides the method that decides this fold's cells (what their keys cover)."""
        from eeg2img.seeding import TRIAL_SEED_RULE

        return {"dataset": self.dataset_fingerprint, "dataset_options": dict(self.dataset_options),
                "split": self.split_fingerprint, "metrics": json.loads(self.metric_spec),
                "trial_seeds": TRIAL_SEED_RULE}

    def cell_key(self, spec: MethodSpec) -> CellKey:
        return CellKey(self.dataset_name, self.protocol, self.fold, spec.name, self.seed,
                       spec.config_hash(self.seed, self.inputs()))

    def cell_keys(self) -> list[CellKey]:
        return [] if self.prefit else [self.cell_key(spec) for spec in self.methods]


@dataclass
class CellOutcome:
    method: str
    fold: str
    protocol: str
    skipped: bool
    seconds: float


def _stamp(path: str) -> tuple:
    """Size, mtime and inode of a dataset's files: a dataset rewritten in place is loaded again."""
    root = Path(path)
    files = [root] if root.is_file() else sorted([*root.glob("*"), *root.glob("sub-*/*")])
    out = []
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        out.append((str(f), st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


def _load(path: str, options: tuple) -> EEGDataset:
    return _load_stamped(path, options, _stamp(path))


@functools.lru_cache(maxsize=2)
def _load_stamped(path: str, options: tuple, stamp: tuple) -> EEGDataset:
    from eeg2img.datasets import load_dataset

    return load_dataset(path, **dict(options))


def _folds(path: str, options: tuple, protocol: str, seed: int, split_options: tuple) -> dict[str, Fold]:
    return _folds_stamped(path, options, protocol, seed, split_options, _stamp(path))


@functools.lru_cache(maxsize=8)
def _folds_stamped(path: str, options: tuple, protocol: str, seed: int, split_options: tuple, stamp: tuple):
    return {f.name: f for f in make_folds(_load(path, options), protocol, seed, **dict(split_options))}


def job_data(job: FoldJob, fix: str) -> tuple[EEGDataset, Fold]:
    """The job's dataset and fold, loaded (cached per process) and checked against the fingerprints it was planned with."""
    dataset = _load(job.dataset_path, job.dataset_options)
    fold = _folds(job.dataset_path, job.dataset_options, job.protocol, job.seed, job.split_options)[job.fold]
    if (dataset.fingerprint, fold.fingerprint) != (job.dataset_fingerprint, job.split_fingerprint):
        raise UserError(f"{job.dataset_path}: the dataset or its split changed since it was planned; {fix}")
    return dataset, fold


def run_fold_job(job: FoldJob, on_cell: Callable[[CellOutcome], None] | None = None) -> list[CellOutcome]:
    """Run (or skip, when finished) every cell of one fold; results land only in the run store.

    ``on_cell`` is called after each cell (in-process progress reporting). A prefit job runs only the
    prefit of its unfinished cells' methods and reports no cell.
    """
    dataset, fold = job_data(job, fix="rerun `eeg2img run`")
    store = RunStore(job.runs_dir)
    if job.prefit:
        _prefit(store, dataset, fold, job)
        return []
    outcomes = []
    for spec in job.methods:
        key = job.cell_key(spec)
        start = time.perf_counter()
        skipped = store.is_done(key)
        if not skipped:
            try:
                run_cell(store, key, dataset, fold, spec, job)
            except Exception:
                store.discard_if_empty(key)  # a cell that failed before saving any reconstruction leaves nothing
                raise
        outcomes.append(CellOutcome(spec.name, job.fold, job.protocol, skipped, time.perf_counter() - start))
        if on_cell is not None:
            on_cell(outcomes[-1])
    return outcomes


def run_cell(store: RunStore, key: CellKey, dataset: EEGDataset, fold: Fold, spec: MethodSpec, job: FoldJob) -> None:
    with _cell_threads():
        _run_cell(store, key, dataset, fold, spec, job)


@contextmanager
def _cell_threads() -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(CELL_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _stage_cache(job: FoldJob, dataset: EEGDataset) -> Path:
    """The stage cache of a (dataset, seed): shared work of a fold's methods, and the retrieval space."""
    return Path(job.runs_dir) / ".cache" / dataset.name / f"seed-{job.seed}"


def _cell_method(spec: MethodSpec, job: FoldJob, dataset: EEGDataset):
    """The cell's method, built as every cell builds it: global seeds set, the fold's stage cache attached."""
    import torch

    torch.manual_seed(job.seed)
    np.random.seed(job.seed)
    method = build_method(spec.name, seed=job.seed, **spec.params)
    method.cache_dir = _stage_cache(job, dataset)
    return method


def _wants_retrieval(job: FoldJob) -> bool:
    from metrics.vocabulary import RETRIEVAL_METRICS

    return any(m in RETRIEVAL_METRICS for m in job.metrics)


def _prefit(store: RunStore, dataset: EEGDataset, fold: Fold, job: FoldJob) -> None:
    train = dataset.subset(fold.train)
    val = dataset.subset(fold.val) if len(fold.val) else None
    with _cell_threads():
        for spec in job.methods:
            if not store.is_done(job.cell_key(spec)):
                _cell_method(spec, job, dataset).prefit(train, val)


def _run_cell(store: RunStore, key: CellKey, dataset: EEGDataset, fold: Fold, spec: MethodSpec, job: FoldJob) -> None:
    method = _cell_method(spec, job, dataset)
    record = _cell_provenance(key, dataset, fold, job)
    store.start(key, method.get_params(), method.is_oracle, record, inputs=job.inputs())
    train = dataset.subset(fold.train)
    val = dataset.subset(fold.val) if len(fold.val) else None
    test = dataset.subset(fold.test)
    done = store.finished_reconstructions(key)
    missing = [i for i, t in enumerate(test.trial_ids) if str(t) not in done]
    embed = (_wants_retrieval(job) and method.embedding_space is not None
             and store.load_embeddings(key, test.trial_ids) is None)
    if missing or embed:
        method.fit(train, val)
    if missing:
        todo = test.subset(missing)
        images = method.reconstruct(todo if method.is_oracle else todo.blind())
        _check_images(images, len(todo), spec.name)
        for trial_id, image in zip(todo.trial_ids, images):
            store.save_reconstruction(key, str(trial_id), image)
    if embed:
        embedding = method.embed(test if method.is_oracle else test.blind())
        _check_embedding(embedding, len(test), spec.name)
        store.save_embeddings(key, test.trial_ids, embedding, method.embedding_space)
    _evaluate_and_finish(store, key, dataset, test, job, record, getattr(method, "weights_sha256", {}), train)


def score_submitted_cell(store: RunStore, key: CellKey, job: FoldJob, images: dict[str, np.ndarray],
                         is_oracle: bool, submission: dict) -> None:
    """A submitted fold as a cell: its images saved as the reconstructions, scored as every built-in cell is."""
    dataset, fold = job_data(job, fix="rerun `eeg2img run`, then submit")
    test = dataset.subset(fold.test)
    record = {**_cell_provenance(key, dataset, fold, job), "submission": submission}
    store.start(key, {}, is_oracle, record, inputs=job.inputs(), submission=submission)
    for trial_id in test.trial_ids.astype(str):
        store.save_reconstruction(key, trial_id, images[trial_id])
    with _cell_threads():  # the backbone's features with the thread count of every built-in cell
        _evaluate_and_finish(store, key, dataset, test, job, record, {}, dataset.subset(fold.train))


def _cell_provenance(key: CellKey, dataset: EEGDataset, fold: Fold, job: FoldJob) -> dict:
    return provenance(
        config_hash=key.config_hash,
        split_fingerprint=fold.fingerprint,
        dataset_fingerprint=dataset.fingerprint,
        # how the loader read the source (segments dropped by reason, ATM-style files) and, for an official
        # split file, how its indices were read: the fingerprints say what was used, these say why
        dataset_reading=dict(dataset.provenance) or None,
        split_reading=fold.options.get("official_split"),
        dataset_path=str(dataset.source) if dataset.source else None,
        image_root=str(dataset.image_root) if dataset.image_root else None,
        weights={},
        substitute_backbones=[job.backbone] if job.backbone in SUBSTITUTE_BACKBONES and _uses_backbone(job.metrics) else [],
        torch_threads=CELL_THREADS,
        torch_threads_override=os.environ.get("EEG2IMG_TORCH_THREADS") or None,
    )


def _evaluate_and_finish(store: RunStore, key: CellKey, dataset: EEGDataset, test: EEGDataset, job: FoldJob,
                         record: dict, method_weights: dict, train: EEGDataset) -> None:
    """The one scoring path: the saved reconstructions (and embeddings) → the engine and the retrieval
    metrics → the cell's tables, then DONE."""
    pred = store.load_reconstructions(key, test.trial_ids)
    size = pred.shape[1]
    ref = test.load_images(size=size)
    report = evaluate_cell(pred, ref, test, dataset, job)
    samples = _plain_metric_names(report.per_sample)
    labels = dict(report.labels)
    record["weights"] = {**report.provenance["weights_sha256"], **method_weights}
    if _wants_retrieval(job):
        found, space_weights = _retrieval_samples(store, key, test, train, job, dataset, pred, labels)
        samples = pd.concat([samples, found], ignore_index=True) if len(samples) else found
        record["weights"].update(space_weights)
    rows = _tidy_rows(samples, labels, key)
    trials = pd.DataFrame(
        {
            "trial_id": test.trial_ids.astype(str),
            "subject": test.subjects.astype(int),
            "image_id": test.image_ids.astype(str),
            "label": test.labels.astype(int),
        }
    )
    store.finish(key, trials, samples, rows, record, set_inputs=report.set_inputs)


def _retrieval_samples(store: RunStore, key: CellKey, test: EEGDataset, train: EEGDataset, job: FoldJob,
                       dataset: EEGDataset, pred: np.ndarray, labels: dict) -> tuple[pd.DataFrame, dict]:
    """Zero-shot retrieval per trial: the method's saved embeddings — or, for a method without ``embed``, its
    reconstructions embedded in the grid's space — against the fold's distinct test images in the same space."""
    from metrics.embedding_spaces import FOLD_TRAIN_CNN, image_embedder
    from metrics.retrieval import retrieval_metrics

    saved = store.load_embeddings(key, test.trial_ids)
    space, source = (saved[1], "embedding") if saved is not None else (FOLD_TRAIN_CNN, "reconstruction")
    embedder = image_embedder(space, train, cache_dir=_stage_cache(job, dataset))
    embedding = saved[0] if saved is not None else embedder.embed(pred)
    candidates = test.unique_image_ids()
    row = {c: i for i, c in enumerate(candidates)}
    target = np.array([row[str(i)] for i in test.image_ids], dtype=np.int64)
    found = retrieval_metrics(embedding, embedder.embed(test.load_images(candidates)), target, job.metrics,
                              seed=job.seed)
    frames = []
    for metric, (label, values) in found.items():
        labels[f"{metric}@{space}"] = f"{label}, from {source}"
        frames.append(pd.DataFrame({"trial_id": test.trial_ids.astype(str), "subject": test.subjects.astype(int),
                                    "metric": metric, "backbone": space, "value": values}))
    columns = ["trial_id", "subject", "metric", "backbone", "value"]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)), \
        {space: embedder.weights_sha256}


def _check_embedding(embedding, n: int, name: str) -> None:
    if not isinstance(embedding, np.ndarray) or embedding.ndim != 2 or len(embedding) != n:
        raise TypeError(f"method {name} must return a float (N, D) embedding for its {n} trials, got "
                        f"{getattr(embedding, 'shape', type(embedding))}")
    if not np.issubdtype(embedding.dtype, np.floating) or not np.isfinite(embedding).all():
        raise ValueError(f"method {name} returned a non-finite or non-float embedding")


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
    from metrics.vocabulary import RETRIEVAL_METRICS

    return evaluate_for_runner(
        pred,
        ref,
        metrics=[m for m in job.metrics if m not in RETRIEVAL_METRICS],  # scored from embeddings, not images
        trial_ids=test.trial_ids.astype(str),
        subjects=test.subjects.astype(int),
        captions=test.label_captions(),
        dataset=dataset,
        backbone=job.backbone,
        backbone_options={"weights": job.backbone_weights} if job.backbone_weights else None,
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
    for k, v in (("dataset", key.dataset), ("protocol", key.protocol), ("fold", key.fold), ("method", key.method),
                 ("seed", key.seed), ("config_hash", key.config_hash)):
        rows[k] = v
    return rows[RESULT_COLUMNS]


def pool_set_level(store: RunStore, options: dict | None = None, keys: list[CellKey] | None = None) -> pd.DataFrame:
    """FID, KID and IS over the pooled test trials of all folds of each (dataset, protocol, method, seed).

    Per-subject and LOSO folds test each trial exactly once, so the folds' trials together are the
    whole test set. Folds are concatenated in fold-name order, each in its trials.parquet order — the
    order the value depends on (KID subsets and the IS shuffle are seeded) — and :mod:`metrics.set_level`
    computes each metric once, for the whole set and for each subject whose trials reach the minimum N.
    """
    from metrics.set_level import SetLevelOptions, set_level_rows

    groups: dict[tuple, list[tuple[str, Path]]] = {}
    for d in store.finished_cells(keys):
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
def metric_spec(config: GridConfig, where: str = "config") -> dict:
    """What decides the metric values of a cell besides its images: metrics, their versions, the backbone.

    Checked before any work: an official backbone's weights must be found (offline or not), and the
    backbone must serve every requested metric. For the official backbones the spec holds the weights'
    sha256, so other weights make other cells.
    """
    from metrics.vocabulary import spec

    needs_backbone = _uses_backbone(config.metrics)
    metrics = {m: spec(m).version for m in config.metrics}
    if not needs_backbone:
        return {"metrics": metrics}
    if config.backbone in ("synth-cnn", "proxy"):
        if "clip" in config.metrics:
            raise UserError(f"{where}: metric clip needs a CLIP model, which backbone = {config.backbone!r} is not; "
                            "remove \"clip\" from metrics")
        from metrics.backbones.indomain import SynthCNNConfig

        backbone = {"name": config.backbone, "config": asdict(SynthCNNConfig())}
    else:
        backbone = _official_backbone(config, where).fingerprint()
    return {"metrics": metrics, "backbone": backbone}


def _official_backbone(config: GridConfig, where: str):
    from eeg2img.errors import WeightsNotFoundError
    from metrics.backbones.registry import build_backbone
    from metrics.engine import MetricsEngine

    try:
        backbone = build_backbone(config.backbone, weights=config.backbone_weights)
    except WeightsNotFoundError as err:
        found = str(err).split(";")[0]
        raise UserError(f"{where}: backbone = {config.backbone!r} needs its official weights ({found}); set "
                        f"backbone_weights = \"PATH\" in the config, put the file in $EEG2IMG_WEIGHTS, or use "
                        f"backbone = \"synth-cnn\"") from None
    try:
        MetricsEngine([m for m in config.metrics if _uses_backbone([m])], backbones=[backbone], use_cache=False)
    except UserError as err:
        raise UserError(f"{where}: {str(err).split(';')[0]}; choose a backbone that serves it, or remove the metric") from None
    return backbone


def plan(config: GridConfig, runs_dir: str | Path, spec_of_metrics: dict | None = None) -> list[FoldJob]:
    """Every fold job of the grid, shared stages first (see :func:`_shared_stages_first`)."""
    methods = tuple(MethodSpec(name, dict(params)) for name, params in config.methods.items())
    metrics_json = json.dumps(spec_of_metrics if spec_of_metrics is not None else metric_spec(config), sort_keys=True)
    jobs = []
    for spec in config.datasets:
        options = tuple(sorted((k, v) for k, v in spec.options.items() if k != "split_file"))
        dataset = _load(spec.path, options)
        for protocol in config.protocols:
            for seed in config.seeds:
                split_options = {"subjects": spec.subjects}
                if protocol == "loso":
                    split_options["allow_test_images_in_train"] = config.allow_test_images_in_train
                if protocol == "official" and "split_file" in spec.options:
                    split_options["split_file"] = spec.options["split_file"]
                split_key = tuple(sorted(split_options.items()))
                for fold_name, fold in _folds(spec.path, options, protocol, seed, split_key).items():
                    for group in _by_shared_stage(methods):
                        jobs.append(FoldJob(str(runs_dir), spec.path, options, protocol, fold_name, seed, group,
                                            config.metrics, config.backbone, split_key, dataset.name,
                                            dataset.fingerprint, fold.fingerprint, metrics_json,
                                            config.backbone_weights))
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
    then every job that needs no shared stage, then a prefit job for each job that needs a stage (what
    its methods can train without it: NeuroImagen's encoder and GAN), then the remaining jobs, which
    find the stage built (or wait for it on its build lock). The order changes no result: every cell
    is seeded on its own, and prefit work is found by ``fit`` in the stage cache.
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
    return first + free + [replace(job, prefit=True) for job in first + rest if _has_prefit(job)] + rest


def _has_prefit(job: FoldJob) -> bool:
    from eeg2img.methods import Method

    return any(type(build_method(spec.name, seed=job.seed, **spec.params)).prefit is not Method.prefit
               for spec in job.methods)


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


def make_executor(name: str, workers: int = 1, address: str | None = None):
    if name == "ray":
        from eeg2img.grid.ray_executor import RayExecutor, import_ray

        import_ray()  # without the extra: one line with the install hint, before anything is written
        return RayExecutor(address, threads=CELL_THREADS)
    return ProcessExecutor(workers) if name == "process" else InlineExecutor()


def check_runs_dir(runs_dir: str | Path) -> Path:
    """The runs directory, created if missing; one line when it cannot be (a file, read-only, under a file)."""
    from eeg2img.atomic import check_output
    from eeg2img.errors import path_error

    root = check_output(runs_dir, "folder", "pass another --out")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise path_error(err, "pass another --out") from None
    return root


def prune(store: RunStore, keep: list[CellKey]) -> list[Path]:
    """Delete every cell folder of the store that ``keep`` (the current config's cells) does not name."""
    import shutil

    wanted = {store.cell_dir(k) for k in keep}
    removed = [d for d in store.all_cells() if d not in wanted]
    for d in removed:
        shutil.rmtree(d)
    return removed


def run_grid(config: GridConfig, runs_dir: str | Path, executor=None, progress: bool = True,
             prune_others: bool = False) -> pd.DataFrame:
    """Run every unfinished cell of ``config``, then write and return the tidy results table of its cells.

    Everything is checked before any work (the backbone's weights, the dataset's subjects, the runs
    directory); one process writes a store at a time (``RUNS/.lock``). The results table and the pooled
    set-level table hold only the cells of this config and the submissions to its benchmark
    (``eeg2img submit``), whatever else the store holds.
    """
    from tqdm.auto import tqdm

    spec_of_metrics = metric_spec(config)
    jobs = plan(config, runs_dir, spec_of_metrics)  # checks the datasets, subjects and splits, writes nothing
    store = RunStore(check_runs_dir(runs_dir))
    with store.lock():
        keys = [k for job in jobs for k in job.cell_keys()]
        identity = benchmark_identity(jobs)
        submitted = _kept_submissions(store, identity["benchmark_id"], progress)
        if prune_others:
            removed = prune(store, keys + submitted)
            if progress:
                print(f"pruned {len(removed)} cell(s) the config does not refer to")
        store.write_current(keys, submitted)
        store.write_benchmark({**identity, "sources": benchmark_sources(jobs)})
        executor = executor or make_executor(config.executor, config.workers, config.address)
        with tqdm(total=len(keys), desc="grid", unit="cell", disable=not progress) as bar:

            def tick(o: CellOutcome) -> None:
                status = "skip" if o.skipped else f"{o.seconds:.1f}s"
                bar.set_postfix_str(f"{o.protocol}/{o.fold}/{o.method} {status}")
                bar.update(1)

            for _ in executor.map(run_fold_job, jobs, tick):
                pass
        store.write_set_level(pool_set_level(store, keys=keys + submitted))
        return store.write_results(keys + submitted)


def _kept_submissions(store: RunStore, benchmark_id: str, progress: bool) -> list[CellKey]:
    """The submitted cells to keep listed beside a new run's: all of them while the benchmark is the same."""
    try:
        previous = store.read_benchmark()
    except UserError:
        previous = None
    submitted = store.current_submissions() if previous is not None else []
    if submitted and previous["benchmark_id"] != benchmark_id:
        if progress:
            print(f"{len(submitted)} submitted cell(s) belong to another benchmark than this config's and leave the "
                  "results (their folders stay; `eeg2img run --prune` deletes them)")
        return []
    return submitted
