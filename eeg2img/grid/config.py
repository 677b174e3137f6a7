"""Grid configuration files (TOML), validated completely before any work starts.

Example::

    seeds = [0]
    protocols = ["per-subject", "loso"]
    metrics = ["ssim", "pixcorr", "fid", "is", "nway", "acc"]
    executor = "inline"          # or "process" (a pool across folds), or "ray" (docs/runs.md: on a cluster)
    workers = 2
    runs_dir = "runs"            # relative to the config file; `eeg2img run --out` overrides it
    backbone = "synth-cnn"       # or "inception-tf", "alexnet", "classifier" (official weights), "proxy"
    # backbone_weights = "weights/inception-2015-12-05.pt"   # optional: the official backbone's file

    [[datasets]]
    path = "data/eeg_synth.pth"  # relative paths are relative to the config file
    subjects = [1, 2, 3]         # optional

    [methods."floor-mean"]
    [methods.neuroimagen]
    steps = 10

Every value is checked for its type and range here (booleans are booleans, lists are lists, seeds lie in
``[0, 2**32)``), and every method parameter against the method's constructor: its name and, where the
constructor has a default, its type. A problem is one line naming the key and the TOML that fixes it.
Whether a backbone's weights can be found and whether a dataset's subjects exist is checked by
:func:`eeg2img.grid.runner.preflight`, still before any work.
"""

from __future__ import annotations

import inspect
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eeg2img.errors import UserError, path_error
from eeg2img.splits import PROTOCOLS

EXECUTORS = ("inline", "process", "ray")
GRID_BACKBONES = ("synth-cnn", "proxy", "inception-tf", "alexnet", "inception-tv", "effnet-b1", "swav", "classifier")
SEED_LIMIT = 2**32  # numpy's seed range
_TOP_KEYS = {"seeds", "protocols", "metrics", "executor", "workers", "address", "datasets", "methods", "runs_dir",
             "allow_test_images_in_train", "backbone", "backbone_weights"}
_DATASET_KEYS = {"path", "subjects", "images", "captions", "split_file"}
_DATASET_PATHS = ("images", "captions", "split_file")


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
    address: str | None = None  # executor = "ray": "auto", "ray://host:port"; None starts a local instance
    runs_dir: str | None = None
    allow_test_images_in_train: bool = False
    backbone: str = "synth-cnn"
    backbone_weights: str | None = None


def load_config(path: str | Path) -> GridConfig:
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
        raw = tomllib.loads(text)
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder; pass the TOML config file") from None
    except PermissionError as err:
        raise path_error(err, "check the config file's permissions") from None
    except OSError as err:
        raise UserError(f"{path}: config file unreadable ({err.strerror or err.__class__.__name__})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid TOML ({err})") from None
    return parse_config(raw, base=path.parent, where=str(path))


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


class _Checker:
    """Type checks that name the key and the TOML that fixes it."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, msg: str):
        raise UserError(f"{self.where}: {msg}")

    def boolean(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            self.fail(f"{key} must be true or false, not {_type_name(value)} ({value!r}); write {key} = true")
        return value

    def string(self, key: str, value: Any, example: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(f"{key} must be a non-empty string, not {_type_name(value)} ({value!r}); write {key} = {example}")
        return value

    def integer(self, key: str, value: Any, lo: int, hi: int | None, example: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value >= hi):
            span = f"in [{lo}, {hi})" if hi is not None else f"≥ {lo}"
            self.fail(f"{key} must be an integer {span}, got {value!r}; write {key} = {example}")
        return value

    def int_list(self, key: str, value: Any, lo: int, hi: int | None, example: str) -> tuple[int, ...]:
        if not isinstance(value, list) or not value:
            self.fail(f"{key} must be a non-empty list of integers, not {_type_name(value)} ({value!r}); write {key} = {example}")
        for v in value:
            self.integer(f"{key} entry", v, lo, hi, example)
        if len(set(value)) != len(value):
            self.fail(f"{key} lists a value twice ({value!r}); write each once")
        return tuple(value)

    def choices(self, key: str, value: Any, allowed, example: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            self.fail(f"{key} must be a non-empty list of strings, not {_type_name(value)} ({value!r}); write {key} = {example}")
        for v in value:
            if not isinstance(v, str):
                self.fail(f"{key} entries must be strings, got {v!r}; write {key} = {example}")
            if v not in allowed:
                self.fail(f"{key}: unknown {key.rstrip('s')} {v!r}; choose from {', '.join(allowed)}")
        if len(set(value)) != len(value):
            self.fail(f"{key} lists a value twice ({value!r}); write each once")
        return tuple(value)


def parse_config(raw: dict, base: Path = Path("."), where: str = "config") -> GridConfig:
    from eeg2img.methods import available_methods
    from metrics.vocabulary import ALL_METRICS, RETRIEVAL_METRICS  # the one list of metric names

    check = _Checker(where)
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        check.fail(f"unknown key {sorted(unknown)[0]!r}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    datasets = _datasets(raw.get("datasets"), base, check)
    methods = raw.get("methods")
    if not isinstance(methods, dict) or not methods:
        check.fail('no methods given; add a table per method, e.g. [methods."floor-mean"]')
    known = available_methods()
    for name, params in methods.items():
        if name not in known:
            check.fail(f"unknown method {name!r}; known methods: {', '.join(known)}")
        if not isinstance(params, dict):
            check.fail(f"methods.{name} must be a table of parameters; write [methods.{name}] and its parameters below it")
        check_method_params(name, params, check)
    protocols = check.choices("protocols", raw.get("protocols", ["per-subject", "loso"]), PROTOCOLS, '["per-subject", "loso"]')
    metrics = check.choices("metrics", raw.get("metrics", ["ssim", "pixcorr"]), ALL_METRICS, '["ssim", "pixcorr"]')
    if metrics and all(m in RETRIEVAL_METRICS for m in metrics):
        check.fail(f"metrics = {list(metrics)!r}: the retrieval metrics are scored beside the image metrics; add "
                   'one, e.g. metrics = ["ssim", "top1", "top5"]')
    executor = check.string("executor", raw.get("executor", "inline"), '"inline"')
    if executor not in EXECUTORS:
        check.fail(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    seeds = check.int_list("seeds", raw.get("seeds", [0]), 0, SEED_LIMIT, "[0, 1, 2]")
    workers = check.integer("workers", raw.get("workers", 1), 1, None, "2")
    address = raw.get("address")
    if address is not None:
        address = check.string("address", address, '"auto"')
        if executor != "ray":
            check.fail('address is for executor = "ray" (the Ray cluster to join); remove it or set executor = "ray"')
    runs_dir = raw.get("runs_dir")
    if runs_dir is not None:
        runs_dir = str(_resolve(check.string("runs_dir", runs_dir, '"runs"'), base))
    backbone = check.string("backbone", raw.get("backbone", "synth-cnn"), '"synth-cnn"')
    if backbone not in GRID_BACKBONES:
        check.fail(f"unknown backbone {backbone!r}; choose from {', '.join(GRID_BACKBONES)}")
    backbone_weights = raw.get("backbone_weights")
    if backbone_weights is not None:
        backbone_weights = str(_resolve(check.string("backbone_weights", backbone_weights, '"weights/file.pt"'), base))
        if backbone in ("synth-cnn", "proxy"):
            check.fail(f"backbone_weights is for the official backbones; {backbone} has none — remove the key")
    return GridConfig(
        datasets=datasets,
        methods={k: dict(v) for k, v in methods.items()},
        protocols=protocols,
        seeds=seeds,
        metrics=metrics,
        executor=executor,
        workers=workers,
        address=address,
        runs_dir=runs_dir,
        allow_test_images_in_train=check.boolean("allow_test_images_in_train", raw.get("allow_test_images_in_train", False)),
        backbone=backbone,
        backbone_weights=backbone_weights,
    )


def _resolve(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _datasets(entries: Any, base: Path, check: _Checker) -> tuple[DatasetSpec, ...]:
    if not entries:
        check.fail('no datasets given; add [[datasets]] with path = "data/eeg_synth.pth"')
    if not isinstance(entries, list):
        check.fail('datasets must be an array of tables; write [[datasets]] with path = "..." below it')
    out = []
    for d in entries:
        if not isinstance(d, dict) or "path" not in d:
            check.fail('each [[datasets]] entry needs a path; write path = "data/eeg_synth.pth"')
        bad = set(d) - _DATASET_KEYS
        if bad:
            check.fail(f"unknown dataset option {sorted(bad)[0]!r}; allowed: {', '.join(sorted(_DATASET_KEYS))}")
        p = _resolve(check.string("datasets.path", d["path"], '"data/eeg_synth.pth"'), base)
        if not p.exists():
            check.fail(f"dataset {p} not found; create it with `eeg2img data synth --out {p.parent}` or fix the path")
        if not os.access(p, os.R_OK) or (p.is_dir() and not os.access(p, os.X_OK)):
            check.fail(f"dataset {p} is not readable (permission denied); check its permissions")
        options = {}
        for k in sorted(set(d) - {"path", "subjects"}):
            options[k] = str(_resolve(check.string(f"datasets.{k}", d[k], '"path/to/it"'), base))
        subjects = d.get("subjects")
        if subjects is not None:
            subjects = check.int_list("datasets.subjects", subjects, 1, None, "[1, 2, 3]")
        out.append(DatasetSpec(str(p), subjects, options))
    return tuple(out)


# Parameters the runner sets itself: a config may not override them.
RUNNER_PARAMS = ("seed",)


def check_method_params(name: str, params: dict, check: _Checker | None = None) -> None:
    """Every parameter is one the method's constructor takes, with the type of its default."""
    from eeg2img.methods import method_signature

    check = check or _Checker("config")
    signature = method_signature(name)
    if signature is None:
        return  # a plain factory without a readable signature: the constructor checks its arguments
    accepted = {p.name: p for p in signature.parameters.values()
                if p.name != "self" and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    takes_any = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    for key, value in params.items():
        if key in RUNNER_PARAMS:
            check.fail(f"methods.{name}.{key}: set by the runner from the top-level seeds; remove it and write seeds = [{value}]")
        if key not in accepted:
            if takes_any:
                continue
            check.fail(f"methods.{name}: unknown parameter {key!r}; its parameters: {', '.join(sorted(k for k in accepted if k not in RUNNER_PARAMS))}")
        default = accepted[key].default
        if default is inspect.Parameter.empty or default is None:
            continue
        if not _same_kind(value, default):
            check.fail(f"methods.{name}.{key} must be {_type_name(default)} like its default, not "
                       f"{_type_name(value)} ({value!r}); write {key} = {_toml(default)}")
    # The values themselves (ranges, choices): the method's own check_params, before any work.
    from eeg2img.methods import build_method

    try:
        build_method(name, **params)
    except UserError as err:
        check.fail(f"methods.{name}: {err}")


def _toml(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _same_kind(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, (tuple, list)):
        return isinstance(value, list)
    return True
