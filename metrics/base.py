"""What every metric shares: the result record, the small-sample warning, input checks, the metric object.

The metric objects follow torchmetrics: states are declared once with :meth:`Metric.add_state`,
``update`` appends, ``compute`` reduces, ``reset`` restores the declared defaults. Unlike
torchmetrics they keep every per-sample value, so a confidence interval (and a paired test between
two methods) can be computed over trials afterwards.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from eeg2img.errors import UserError
from metrics.vocabulary import VOCABULARY

# Below this many samples FID's 2048×2048 covariance is rank deficient and FID is strongly biased.
FID_MIN_SAMPLES = VOCABULARY["fid"].warn_n


class SmallSampleWarning(UserWarning):
    """A set-level metric computed on fewer samples than it needs to be unbiased (report N, prefer KID)."""


@dataclass
class MetricResult:
    """One reported number with everything needed to interpret it."""

    name: str
    value: float
    ci95: tuple[float, float] | None = None
    backbone: str | None = None
    protocol: str = ""
    n: int = 0
    per_sample: np.ndarray | None = None
    label: str = ""  # the short protocol label a table shows beside the metric ("5-way top-1")
    status: str = "ok"  # "N < min": too few samples for this metric, and no value is given

    def to_dict(self) -> dict[str, Any]:
        ci = None if self.ci95 is None else [float(self.ci95[0]), float(self.ci95[1])]
        value = float(self.value) if self.status == "ok" else None
        return {"value": value, "ci95": ci, "backbone": self.backbone, "protocol": self.protocol,
                "label": self.label, "status": self.status, "n": int(self.n)}


# ----------------------------------------------------------------------------------------------- input checks


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in x.shape)


def as_tensor(x: Any, name: str, dtype: torch.dtype | None = torch.float64) -> torch.Tensor:
    """Any array-like as a tensor of ``dtype`` (kept on its device); a UserError if it is not numeric.

    ``dtype=None`` keeps a floating dtype as it is (integers become float64), for callers that
    promote chunk by chunk to bound memory.
    """
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError, RuntimeError) as exc:
            raise UserError(f"{name}: not a numeric array ({exc}); pass a numpy array or a torch tensor") from None
    if t.dtype == torch.bool or t.is_complex() or not (t.is_floating_point() or t.dtype in _INT_DTYPES):
        raise UserError(f"{name}: dtype {t.dtype} is not a real number type; pass float or integer values")
    if dtype is None:
        return t if t.is_floating_point() else t.to(torch.float64)
    return t.to(dtype)


_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def check_finite(t: torch.Tensor, name: str) -> torch.Tensor:
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).any(dim=tuple(range(1, t.ndim))).sum()) if t.ndim > 1 else 1
        raise UserError(f"{name}: contains NaN or inf ({bad} of {len(t)} rows); "
                        "check the feature extractor or the images it was given")
    return t


def as_features(x: Any, name: str, dtype: torch.dtype | None = torch.float64, min_rows: int = 1) -> torch.Tensor:
    """A finite ``(N, D)`` feature matrix (a ``(N, ...)`` array is flattened per row, as MindEye does)."""
    t = as_tensor(x, name, dtype)
    if t.ndim < 2:
        raise UserError(f"{name}: expected a (N, D) feature matrix, got shape {_shape(t)}; "
                        "pass one feature row per sample")
    t = t.reshape(len(t), -1)
    if len(t) < min_rows:
        raise UserError(f"{name}: {len(t)} samples, at least {min_rows} needed; evaluate more samples")
    return check_finite(t, name)


def check_same_length(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise UserError(f"{name_a}: {len(a)} samples but {name_b} has {len(b)}; "
                        "pass one reconstruction per stimulus, in the same trial order")


def check_same_dim(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape[1:] != b.shape[1:]:
        raise UserError(f"{name_a}: feature shape {_shape(a)[1:]} differs from {name_b} {_shape(b)[1:]}; "
                        "extract both with the same backbone and layer")


# ----------------------------------------------------------------------------------------------- metric object


class Metric:
    """Minimal torchmetrics-style accumulator that keeps per-sample values.

    Subclasses declare their states in ``__init__`` with :meth:`add_state` (a list, appended to in
    ``update``, or a tensor) and implement ``update``, ``compute`` and ``per_sample``.
    """

    name: str = "metric"
    protocol: str = ""
    higher_is_better: bool = True
    # Per-sample metrics bootstrap their CI cheaply; set-level ones recompute the whole metric per resample.
    default_n_boot: int = 1000

    def __init__(self) -> None:
        self._defaults: dict[str, Any] = {}

    def add_state(self, name: str, default: Any) -> None:
        self._defaults[name] = default
        setattr(self, name, copy.deepcopy(default))

    def reset(self) -> None:
        for name, default in self._defaults.items():
            setattr(self, name, copy.deepcopy(default))

    def update(self, *args: Any, **kwargs: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def per_sample(self) -> np.ndarray | None:
        return None

    @property
    def n(self) -> int:
        ps = self.per_sample
        return 0 if ps is None else len(ps)

    def _set_ci(self, n_boot: int, seed: int) -> tuple[float, float] | None:
        return None

    def result(self, backbone: str | None = None, n_boot: int | None = None, seed: int = 0) -> MetricResult:
        """The computed value as a :class:`MetricResult`; ``n_boot=0`` skips the confidence interval."""
        from metrics.stats import bootstrap_ci

        value = self.compute()
        value = value[0] if isinstance(value, tuple) else value
        n_boot = self.default_n_boot if n_boot is None else n_boot
        ps = self.per_sample
        ci = None
        if n_boot > 0:
            ci = bootstrap_ci(ps, n_boot=n_boot, seed=seed) if ps is not None else self._set_ci(n_boot, seed)
        return MetricResult(name=self.name, value=float(value), ci95=ci, backbone=backbone, protocol=self.protocol,
                            n=self.n, per_sample=ps)


def cat_state(chunks: list[torch.Tensor], name: str) -> torch.Tensor:
    if not chunks:
        raise UserError(f"{name}: compute() called before any update(); feed samples first")
    return torch.cat(chunks)

