"""Latency harness for the benchmarks (pytest-benchmark).

- ``bench_*.py`` files are collected as test modules (functions named ``test_*``).
- ``--gpu`` (or ``EEG2IMG_BENCH_GPU=1``) turns on the ``@pytest.mark.gpu`` benchmarks: the full
  configurations (SD 1.5 at 512², fp16) on CUDA; without the flag, or without CUDA, they are skipped.
- The :func:`latency` fixture runs a callable in pedantic mode — warm-up rounds first, the device
  synchronised after every call so the timer sees the kernels finish — and records in
  ``benchmark.extra_info``: ``p50_ms``, ``p95_ms``, ``items`` and ``images_per_s`` (items per median
  call), ``peak_mem_mb`` (CUDA: ``torch.cuda.max_memory_allocated`` over the timed rounds; CPU: the
  process' peak resident set, reset before the rounds where Linux allows), ``device``, ``dtype``,
  ``rounds``, ``warmup_rounds``, ``torch``.
- ``EEG2IMG_BENCH_ROUNDS`` scales every round count (e.g. ``0.2`` for a quick smoke run).
"""

from __future__ import annotations

import math
import os
import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# The benchmarks build their inputs with the test suite's helpers (random weights in the real formats),
# which live under tests/ and are not part of the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

GPU_ENV = "EEG2IMG_BENCH_GPU"
ROUNDS_ENV = "EEG2IMG_BENCH_ROUNDS"


def pytest_addoption(parser):
    parser.addoption("--gpu", action="store_true", default=False,
                     help=f"run the full-size CUDA benchmarks (also: {GPU_ENV}=1)")


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: full configuration on CUDA; needs --gpu (or EEG2IMG_BENCH_GPU=1) and CUDA")


def pytest_collect_file(file_path: Path, parent):
    # pytest collects only test_*.py by default; files it collects itself (named on the command line, or
    # matched by a python_files setting) are left to it so nothing is collected twice.
    if file_path.suffix != ".py" or not file_path.name.startswith("bench_"):
        return None
    if parent.session.isinitpath(file_path):
        return None
    if any(fnmatch(file_path.name, pattern) for pattern in parent.config.getini("python_files")):
        return None
    return pytest.Module.from_parent(parent, path=file_path)


def gpu_requested(config) -> bool:
    return bool(config.getoption("--gpu")) or os.environ.get(GPU_ENV, "").strip() not in ("", "0", "false")


def pytest_collection_modifyitems(config, items):
    requested = gpu_requested(config)
    cuda = None
    for item in items:
        if "gpu" not in item.keywords:
            continue
        if not requested:
            item.add_marker(pytest.mark.skip(reason=f"full GPU configuration: pass --gpu or set {GPU_ENV}=1"))
            continue
        if cuda is None:
            try:
                import torch

                cuda = torch.cuda.is_available()
            except ImportError:
                cuda = False
        if not cuda:
            item.add_marker(pytest.mark.skip(reason="CUDA is not available on this machine"))


# --- memory -----------------------------------------------------------------------------------------------
def _reset_rss_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_peak_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0  # bytes on macOS, KiB on Linux


# --- the harness --------------------------------------------------------------------------------------------
def scaled_rounds(rounds: int) -> int:
    factor = float(os.environ.get(ROUNDS_ENV, "1") or 1)
    return max(1, math.ceil(rounds * factor))


def percentile_ms(data: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(data, dtype=np.float64), q) * 1e3)


@dataclass
class Latency:
    """Measure one callable; see the module docstring for what lands in ``extra_info``."""

    benchmark: Any
    device: str

    def _sync(self) -> Callable[[], None]:
        if self.device.startswith("cuda"):
            import torch

            return torch.cuda.synchronize
        return lambda: None

    def __call__(self, fn: Callable[[], Any], *, items: int = 1, rounds: int = 10, warmup_rounds: int = 2,
                 dtype: str = "float32") -> Any:
        sync = self._sync()

        def timed():
            out = fn()
            sync()  # CUDA launches are asynchronous: stop the clock only when the work is done
            return out

        rounds, warmup_rounds = scaled_rounds(rounds), scaled_rounds(warmup_rounds) if warmup_rounds else 0
        cuda = self.device.startswith("cuda")
        if cuda:
            import torch

            # Warm up outside the memory window, so one-off allocations (cuDNN autotuning) are not counted twice.
            for _ in range(warmup_rounds):
                timed()
            torch.cuda.reset_peak_memory_stats()
            warmup_rounds = 0
            resettable = True
        else:
            resettable = _reset_rss_peak()
        result = self.benchmark.pedantic(timed, rounds=rounds, warmup_rounds=warmup_rounds, iterations=1)
        info = self.benchmark.extra_info
        if cuda:
            import torch

            info["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
            info["peak_mem_kind"] = "cuda max_memory_allocated"
        else:
            info["peak_mem_mb"] = _rss_peak_mb()
            info["peak_mem_kind"] = "peak RSS during rounds" if resettable else "peak RSS of the process"
        stats = getattr(self.benchmark, "stats", None)
        data = list(getattr(getattr(stats, "stats", None), "data", []) or [])
        if data:  # absent with --benchmark-disable
            median_s = float(np.median(data))
            info["p50_ms"] = percentile_ms(data, 50)
            info["p95_ms"] = percentile_ms(data, 95)
            info["images_per_s"] = items / median_s if median_s > 0 else float("inf")
        try:
            import torch

            info["torch"] = torch.__version__
            if cuda:
                info["gpu"] = torch.cuda.get_device_name(0)
        except ImportError:
            pass
        info.update(items=items, device=self.device, dtype=dtype, rounds=rounds)
        return result


@pytest.fixture
def latency(benchmark) -> Latency:
    """CPU latency probe (tiny configurations)."""
    return Latency(benchmark, "cpu")


@pytest.fixture
def gpu_latency(benchmark) -> Latency:
    """CUDA latency probe (full configurations); use with ``@pytest.mark.gpu``."""
    return Latency(benchmark, "cuda")


# --- inputs --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TinyData:
    train: Any  # EEGDataset
    test: Any  # EEGDataset
    image_size: int


def make_tiny_dataset(root: Path, subjects: int = 2, classes: int = 6, images_per_class: int = 4,
                      channels: int = 128, samples: int = 440, image_size: int = 32, seed: int = 0):
    """An EEG-CVPR40-shaped dataset (128 channels × 440 samples) over random PNG stimuli, split by image."""
    from PIL import Image

    from eeg2img.datasets.base import EEGDataset

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    image_ids, labels = [], []
    for k in range(classes):
        for j in range(images_per_class):
            stem = f"n{k:08d}_{j}"
            colour = rng.integers(0, 256, 3)
            pixels = np.clip(colour + rng.normal(0, 40, (image_size, image_size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / f"{stem}.png")
            image_ids.append(stem)
            labels.append(k)
    n = subjects * len(image_ids)
    dataset = EEGDataset(
        eeg=rng.standard_normal((n, channels, samples)).astype(np.float32),
        labels_=np.tile(np.asarray(labels, dtype=np.int64), subjects),
        image_ids_=np.tile(np.asarray(image_ids), subjects),
        subjects=np.repeat(np.arange(1, subjects + 1, dtype=np.int64), len(image_ids)),
        trial_ids=np.asarray([f"t{i:05d}" for i in range(n)]),
        class_names=tuple(f"class{k}" for k in range(classes)),
        name="bench-tiny",
        image_root=root,
        fingerprint=f"bench-tiny-{seed}",
    )
    is_test = np.isin(dataset.image_ids_, [i for i in image_ids if i.endswith("_0")])
    return TinyData(dataset.subset(np.flatnonzero(~is_test)), dataset.subset(np.flatnonzero(is_test)), image_size)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> TinyData:
    return make_tiny_dataset(tmp_path_factory.mktemp("bench-data"))
