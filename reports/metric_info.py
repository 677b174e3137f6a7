"""How each metric is shown: display name, which direction is better, the protocol behind the number,
and whether a backbone is a substitute (an in-domain or proxy network standing in for the published one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    display: str
    higher_is_better: bool
    protocol: str = ""  # how the number is computed, e.g. the MindEye 425 px grey-scale SSIM


_KNOWN = {
    "ssim": MetricInfo("SSIM", True, "mindeye-425px"),
    "pixcorr": MetricInfo("PixCorr", True, "mindeye-425px"),
    "fid": MetricInfo("FID", False),
    "kid": MetricInfo("KID", False),
    "is": MetricInfo("IS", True, "10 splits"),
    "nway": MetricInfo("N-way", True, "2-way"),
    "acc": MetricInfo("ACC", True, "50-way top-1"),
    "clip": MetricInfo("CLIP", True, "w=2.5"),
    "lpips": MetricInfo("LPIPS", False),
    "mse": MetricInfo("MSE", False),
}
_LOWER_WORDS = ("fid", "kid", "lpips", "mse", "mae", "loss", "dist", "error", "rank")

# Names of the published networks; anything matching SUBSTITUTE_PATTERN is a stand-in for one of them.
SUBSTITUTE_PATTERN = re.compile(r"(synth|proxy|in-domain|indomain|substitute|random|toy|tiny|dummy)", re.IGNORECASE)
SUBSTITUTE_NOTE = "substitute backbone (in-domain/proxy network, not the published one): not comparable with published numbers"


def metric_info(metric: str) -> MetricInfo:
    key = metric.lower()
    if key in _KNOWN:
        return _KNOWN[key]
    lower = any(w in key for w in _LOWER_WORDS)
    return MetricInfo(metric.upper() if len(metric) <= 4 else metric, not lower)


def is_substitute(backbone: str, declared: frozenset[str] | set[str] = frozenset()) -> bool:
    """A backbone is a substitute when its name says so or a cell's provenance declares it one."""
    return bool(backbone) and (backbone in declared or bool(SUBSTITUTE_PATTERN.search(backbone)))


def column_label(metric: str, backbone: str, substitute: bool) -> str:
    """``SSIM ↑ [pixels, mindeye-425px]``; a substitute backbone reads ``[synth-cnn (substitute)]``."""
    info = metric_info(metric)
    arrow = "↑" if info.higher_is_better else "↓"
    parts = []
    if backbone:
        parts.append(f"{backbone} (substitute)" if substitute else backbone)
    if info.protocol:
        parts.append(info.protocol)
    return f"{info.display} {arrow} [{', '.join(parts)}]" if parts else f"{info.display} {arrow}"
