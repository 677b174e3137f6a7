"""Grid configuration files (TOML), validated before any work starts.

Example::

    seeds = [0]
    protocols = ["per-subject", "loso"]
    metrics = ["ssim", "pixcorr", "fid", "is", "nway", "acc"]
    executor = "inline"          # or "process" (a pool across folds)
    workers = 2

    [[datasets]]
    path = "data/eeg_synth.pth"  # relative paths are relative to the config file
    subjects = [1, 2, 3]         # optional

    [methods."floor-mean"]
    [methods.neuroimagen]
    steps = 10
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eeg2img.errors import UserError
from eeg2img.splits import PROTOCOLS

EXECUTORS = ("inline", "process")
_TOP_KEYS = {"seeds", "protocols", "metrics", "executor", "workers", "datasets", "methods", "runs_dir", "allow_test_images_in_train", "backbone"}
_DATASET_KEYS = {"path", "subjects", "images", "captions", "split_file"}


@dataclass(frozen=True)
class DatasetSpec:
    path: str
    subjects: tuple[int, ...] | None = None
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class GridConfig:
    datasets: tuple[DatasetSpec, ...]
    methods: dict[str, dict[str, Any]]
    protocols: tuple[str, ...] = ("per-subject", "loso")
    seeds: tuple[int, ...] = (0,)
    metrics: tuple[str, ...] = ("ssim", "pixcorr")
    executor: str = "inline"
    workers: int = 1
    runs_dir: str | None = None
    allow_test_images_in_train: bool = False
    backbone: str = "synth-cnn"


def load_config(path: str | Path) -> GridConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid TOML ({err})") from None
    return parse_config(raw, base=path.parent, where=str(path))


def parse_config(raw: dict, base: Path = Path("."), where: str = "config") -> GridConfig:
    from eeg2img.methods import available_methods

    def fail(msg: str):
        raise UserError(f"{where}: {msg}")

    unknown = set(raw) - _TOP_KEYS
    if unknown:
        fail(f"unknown key {sorted(unknown)[0]!r}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    datasets = []
    for d in raw.get("datasets") or fail("no [[datasets]] given"):
        if not isinstance(d, dict) or "path" not in d:
            fail("each [[datasets]] entry needs a path")
        bad = set(d) - _DATASET_KEYS
        if bad:
            fail(f"unknown dataset option {sorted(bad)[0]!r}; allowed: {', '.join(sorted(_DATASET_KEYS))}")
        p = Path(d["path"])
        p = p if p.is_absolute() else (base / p)
        if not p.exists():
            fail(f"dataset {p} not found; create it with `eeg2img data synth --out {p.parent}` or fix the path")
        options = {k: str(base / v) if k in ("images", "captions", "split_file") else v for k, v in d.items() if k not in ("path", "subjects")}
        subjects = d.get("subjects")
        datasets.append(DatasetSpec(str(p), tuple(int(s) for s in subjects) if subjects else None, options))
    methods = raw.get("methods") or fail("no [methods.<name>] given")
    known = available_methods()
    for name, params in methods.items():
        if name not in known:
            fail(f"unknown method {name!r}; known methods: {', '.join(known)}")
        if not isinstance(params, dict):
            fail(f"[methods.{name}] must be a table of parameters")
    protocols = tuple(raw.get("protocols", ("per-subject", "loso")))
    for p in protocols:
        if p not in PROTOCOLS:
            fail(f"unknown protocol {p!r}; choose from {', '.join(PROTOCOLS)}")
    from metrics.vocabulary import ALL_METRICS  # the one list of metric names

    metrics = tuple(raw.get("metrics", ("ssim", "pixcorr")))
    for m in metrics:
        if m not in ALL_METRICS:
            fail(f"unknown metric {m!r}; choose from {', '.join(ALL_METRICS)}")
    executor = raw.get("executor", "inline")
    if executor not in EXECUTORS:
        fail(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    seeds = raw.get("seeds", [0])
    if not seeds or not all(isinstance(s, int) for s in seeds):
        fail("seeds must be a non-empty list of integers")
    workers = raw.get("workers", 1)
    if not isinstance(workers, int) or workers < 1:
        fail("workers must be a positive integer")
    return GridConfig(
        datasets=tuple(datasets),
        methods={k: dict(v) for k, v in methods.items()},
        protocols=protocols,
        seeds=tuple(seeds),
        metrics=metrics,
        executor=executor,
        workers=workers,
        runs_dir=raw.get("runs_dir"),
        allow_test_images_in_train=bool(raw.get("allow_test_images_in_train", False)),
        backbone=str(raw.get("backbone", "synth-cnn")),
    )
