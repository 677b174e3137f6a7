"""Plumbing shared by the NeuroImagen components: devices, seeding, atomic weight files, image tensors."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from eeg2img.atomic import replace_directory, staging_directory
from eeg2img.devices import cpu_threads
from eeg2img.errors import UserError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"

C = TypeVar("C")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """:func:`eeg2img.devices.resolve_device` (``"auto"``/``None`` picks CUDA when present)."""
    from eeg2img.devices import resolve_device as resolve

    return resolve(device, "NeuroImagen")


def on_config_device_threads(method):
    """Decorator: run an estimator method under :func:`cpu_threads` for ``self.config.device``."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with cpu_threads(resolve_device(self.config.device)):
            return method(self, *args, **kwargs)

    return wrapper


def make_config(cls: type[C], config: C | dict | None, overrides: dict[str, Any]) -> C:
    """Build a config dataclass from an instance/dict plus keyword overrides, rejecting unknown keys."""
    base = {} if config is None else (dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config))
    base.update(overrides)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(base) - known)
    if unknown:
        raise UserError(f"{cls.__name__}: unknown option(s) {unknown}; known options are {sorted(known)}")
    return cls(**base)


def fingerprint(*parts: Any) -> str:
    """A stable sha256 over JSON-able values and numpy arrays (cache keys)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            arr = np.ascontiguousarray(part)
            h.update(f"{arr.dtype.str}{arr.shape}".encode())
            h.update(arr.tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()


def save_component(directory: str | Path, state: dict[str, torch.Tensor], config: dict[str, Any]) -> Path:
    """Write ``model.safetensors`` + ``config.json`` atomically into ``directory``."""
    from safetensors.torch import save_file

    target = Path(directory)
    tmp = staging_directory(target)
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp / WEIGHTS_FILE))
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True, default=_jsonable))
        return replace_directory(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_component(directory: str | Path, what: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read what :func:`save_component` wrote; missing or corrupt files become a one-line UserError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    weights, config = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    for path in (weights, config):
        if not path.is_file():
            raise UserError(f"{path}: missing {what} file; re-run fit() and save() to write it")
    try:
        cfg = json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{config}: corrupt {what} config ({err.__class__.__name__}); re-save the component") from None
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"{weights}: corrupt {what} weights ({err.__class__.__name__}); re-save the component") from None
    return state, cfg


class Component:
    """A trained NeuroImagen stage: a config dataclass, one torch module, and save/load written once.

    Subclasses set ``config_class`` and ``what`` (the name in error messages), keep the fitted module
    in ``module_``, and say what else a saved copy needs: :meth:`_meta` (the sizes learned in ``fit``),
    :meth:`_restore` (set them back) and :meth:`_rebuild` (the empty module for those sizes).
    """

    config_class: type
    what: str = "component"
    empty_history: Any = list

    def __init__(self, config: Any = None, **overrides: Any):
        self.config = make_config(self.config_class, config, overrides)
        self.module_: torch.nn.Module | None = None
        self.history_ = self.empty_history()

    def _check_fitted(self) -> torch.nn.Module:
        if self.module_ is None:
            raise UserError(f"{type(self).__name__}: not fitted; call fit() or load() first")
        return self.module_

    def _meta(self) -> dict[str, Any]:
        return {}

    def _restore(self, meta: dict[str, Any]) -> None:
        pass

    def _rebuild(self, meta: dict[str, Any]) -> torch.nn.Module:
        raise NotImplementedError

    @staticmethod
    def _upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
        """A saved config from an older version, brought up to date (default: unchanged)."""
        return config

    def save(self, directory: str | Path) -> Path:
        module = self._check_fitted()
        meta = {"config": dataclasses.asdict(self.config), **self._meta(), "history": self.history_}
        return save_component(directory, module.state_dict(), meta)

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None):
        state, meta = load_component(directory, cls.what)
        config = cls._upgrade_config(dict(meta["config"]))
        if device is not None:
            config["device"] = device
        obj = cls(config)
        obj._restore(meta)
        module = obj._rebuild(meta)
        try:
            module.load_state_dict(state)
        except RuntimeError as err:
            raise UserError(f"{directory}: {cls.what} weights do not match its config ({str(err)[:80]}); "
                            "re-save") from None
        obj.module_ = module.to(resolve_device(obj.config.device)).eval()
        history = meta.get("history")
        obj.history_ = obj.empty_history() if history is None else history
        return obj


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def check_finite(name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise UserError(f"{name}: contains NaN or infinite values; clean or re-preprocess the input")
    return array


def check_eeg(eeg: np.ndarray, n_channels: int | None = None) -> np.ndarray:
    eeg = np.asarray(eeg)
    if eeg.ndim != 3:
        raise UserError(f"eeg: expected trials × channels × samples, got shape {eeg.shape}; pass dataset.eeg")
    if n_channels is not None and eeg.shape[1] != n_channels:
        raise UserError(f"eeg: {eeg.shape[1]} channels but the encoder was fitted on {n_channels}; use the same montage")
    return check_finite("eeg", eeg)


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed) % (2**63))
    return g


def batches(n: int, size: int) -> Iterable[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))
