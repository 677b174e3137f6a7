"""The one-pass engine against torchmetrics run metric by metric (run on demand: ``pytest benchmarks/bench_metrics.py``).

On the same image pairs and the same weights (random weights in the real file formats: latency does
not depend on their values), three timings:

- ``engine`` — ``MetricsEngine(("ssim", "fid", "kid", "is", "clip"))``: Inception and CLIP run once per
  image set and every metric shares their outputs;
- ``torchmetrics`` — ``FrechetInceptionDistance``, ``KernelInceptionDistance``, ``InceptionScore``,
  ``StructuralSimilarityIndexMeasure`` and ``CLIPScore`` one after another, as a user of torchmetrics
  would (each Inception metric runs its own forward passes: 5 passes over the images instead of 2);
- ``bare`` — only the backbone forward passes the engine needs (Inception on pred and ref, CLIP on
  pred and the captions): the floor any implementation pays.

Goals: torchmetrics / engine ≥ 2 on CPU, engine / bare ≤ 1.2. Both ratios are printed; engine / bare
is also measured inside the engine run itself (total time over the time its backbones spent in
forward passes), which load drift between separate runs on a shared machine cannot bias. They are
asserted at the full size (N ≥ 500) only, since fixed costs dominate a quick run. Weight loading and
a warm-up pass of every network are outside every timed region.

Environment: ``EEG2IMG_BENCH_METRICS_N`` (pairs, default 500), ``EEG2IMG_BENCH_METRICS_SIZE`` (pixels,
default 128), ``EEG2IMG_BENCH_CLIP`` (open_clip architecture with random weights, default ``ViT-B-32``;
``tiny`` for the test-sized model). Example quick check::

    EEG2IMG_BENCH_METRICS_N=48 pytest benchmarks/bench_metrics.py -s --benchmark-disable-gc
"""

from __future__ import annotations

import os
import time
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

N = int(os.environ.get("EEG2IMG_BENCH_METRICS_N", "500"))
SIZE = int(os.environ.get("EEG2IMG_BENCH_METRICS_SIZE", "128"))
CLIP_ARCH = os.environ.get("EEG2IMG_BENCH_CLIP", "ViT-B-32")
BATCH = 32
RESULTS: dict[str, float] = {}


def _images(n: int, size: int, seed: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(n, 3, 6, 6, generator=g), size=(size, size), mode="bicubic", align_corners=False)
    x = x + 0.05 * torch.randn(x.shape, generator=g)
    return (x.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> SimpleNamespace:
    import open_clip
    import torch
    from backbone_fixtures import write_inception_weights, write_open_clip  # tests/, on the path via conftest

    from metrics.backbones.clip import OpenClip
    from metrics.backbones.inception import InceptionTF

    folder = tmp_path_factory.mktemp("bench-metrics")
    _, state_dict = write_inception_weights(folder, seed=0)
    if CLIP_ARCH == "tiny":
        config, ckpt = write_open_clip(folder)
        clip_model = str(config)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = open_clip.create_model(CLIP_ARCH, pretrained=None)
        ckpt = folder / f"{CLIP_ARCH}.pt"
        torch.save(model.state_dict(), ckpt)
        clip_model = CLIP_ARCH
    ref = _images(N, SIZE, seed=1)
    pred = np.clip(ref.astype(np.int16) + _images(N, SIZE, seed=2).astype(np.int16) // 4 - 32, 0, 255).astype(np.uint8)
    captions = [f"an image of a {c} shape" for c in np.random.RandomState(0).choice(["red", "blue", "green"], N)]
    inception = InceptionTF(state_dict, resize="torchmetrics", batch_size=BATCH)
    clip = OpenClip(clip_model, ckpt, batch_size=BATCH)
    # Warm up with every batch shape the timed runs use: oneDNN builds (and caches) its kernels per shape.
    for n in _batch_sizes():
        inception.extract(ref[:n])
        clip.extract(ref[:n])
        clip.encode_text(captions[:n])
    return SimpleNamespace(state_dict=state_dict, pred=pred, ref=ref, captions=captions, inception=inception,
                           clip=clip)


def _batch_sizes() -> list[int]:
    return sorted({min(BATCH, N), N % BATCH} - {0})


def _record(benchmark, key: str, seconds: float) -> None:
    RESULTS[key] = seconds
    benchmark.extra_info.update(n_pairs=N, image_size=SIZE, clip=CLIP_ARCH, seconds=seconds)


def test_engine_full_suite(benchmark, setup):
    from metrics.engine import MetricsEngine

    engine = MetricsEngine(("ssim", "fid", "kid", "is", "clip"), backbones=[setup.inception, setup.clip],
                           use_cache=False)

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return engine.evaluate(setup.pred, setup.ref, captions=setup.captions)

    forward_before = setup.inception.seconds + setup.clip.seconds
    start = time.perf_counter()
    report = benchmark.pedantic(run, rounds=1, iterations=1)
    _record(benchmark, "engine", time.perf_counter() - start)
    # The forward passes inside this very run: a ratio that machine-load drift between runs cannot bias.
    RESULTS["engine_forward"] = setup.inception.seconds + setup.clip.seconds - forward_before
    benchmark.extra_info["forward_seconds"] = RESULTS["engine_forward"]
    assert {"fid@inception-tf", "kid@inception-tf", "is@inception-tf", "ssim@pixels"} <= set(report.results)


def test_torchmetrics_one_metric_at_a_time(benchmark, setup):
    import torch
    from torchmetrics.image import (
        FrechetInceptionDistance,
        InceptionScore,
        KernelInceptionDistance,
        StructuralSimilarityIndexMeasure,
    )
    from torchmetrics.image.fid import NoTrainInceptionV3
    from torchmetrics.multimodal import CLIPScore

    from metrics.image_ops import resize_square, rgb_to_gray

    weights = str(setup.state_dict)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fid = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=weights, antialias=True)
        kid = KernelInceptionDistance(feature=NoTrainInceptionV3("inception-v3-compat", ["2048"], weights),
                                      subset_size=min(1000, N))
        isc = InceptionScore(feature=NoTrainInceptionV3("inception-v3-compat", ["logits_unbiased"], weights))
        ssim = StructuralSimilarityIndexMeasure(data_range=1.0)
    clip_model, preprocess, tokenizer = setup.clip.model, setup.clip.preprocess, setup.clip.tokenizer

    class Adapter(torch.nn.Module):  # the same open_clip model behind the interface CLIPScore calls
        def __init__(self):
            super().__init__()
            self.model, self.config = clip_model, SimpleNamespace()

        def get_image_features(self, pixel_values):
            return self.model.encode_image(pixel_values)

        def get_text_features(self, input_ids, attention_mask=None):
            return self.model.encode_text(input_ids)

    def processor(images=None, text=None, return_tensors="pt", padding=True):
        from PIL import Image

        if images is not None:
            return {"pixel_values": torch.stack([preprocess(Image.fromarray(i.permute(1, 2, 0).numpy()))
                                                 for i in images])}
        ids = tokenizer(text)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    clip = CLIPScore(model_name_or_path=lambda: (Adapter(), processor))
    with warnings.catch_warnings(), torch.inference_mode():  # warm up, as for the engine
        warnings.simplefilter("ignore")
        for n in _batch_sizes():
            batch = torch.from_numpy(setup.ref[:n]).permute(0, 3, 1, 2).contiguous()
            for m in (fid, kid, isc):
                m.inception(batch)

    def mindeye_gray(x: torch.Tensor) -> torch.Tensor:  # the engine's SSIM protocol, for a like-for-like SSIM
        return resize_square(rgb_to_gray(x.float() / 255), 425)

    def run():
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            for lo in range(0, N, BATCH):
                p = torch.from_numpy(setup.pred[lo:lo + BATCH]).permute(0, 3, 1, 2).contiguous()
                r = torch.from_numpy(setup.ref[lo:lo + BATCH]).permute(0, 3, 1, 2).contiguous()
                fid.update(r, real=True)
                fid.update(p, real=False)
                kid.update(r, real=True)
                kid.update(p, real=False)
                isc.update(p)
                ssim.update(mindeye_gray(p), mindeye_gray(r))
                clip.update(p, setup.captions[lo:lo + BATCH])
            return fid.compute(), kid.compute(), isc.compute(), ssim.compute(), clip.compute()

    start = time.perf_counter()
    benchmark.pedantic(run, rounds=1, iterations=1)
    _record(benchmark, "torchmetrics", time.perf_counter() - start)


def test_bare_backbone_forward_passes(benchmark, setup):
    def run():
        setup.inception.extract(setup.pred)
        setup.inception.extract(setup.ref)
        setup.clip.extract(setup.pred)
        setup.clip.encode_text(setup.captions)

    start = time.perf_counter()
    benchmark.pedantic(run, rounds=1, iterations=1)
    _record(benchmark, "bare", time.perf_counter() - start)


def test_ratios(capsys):
    if not {"engine", "torchmetrics", "bare"} <= set(RESULTS):
        pytest.skip("run the three timing benchmarks of this file first (in one session)")
    speedup = RESULTS["torchmetrics"] / RESULTS["engine"]
    overhead = RESULTS["engine"] / RESULTS["bare"]
    in_run = RESULTS["engine"] / RESULTS["engine_forward"]
    with capsys.disabled():
        print(f"\n[bench_metrics] N={N} pairs at {SIZE}px, CLIP {CLIP_ARCH}: engine {RESULTS['engine']:.1f}s "
              f"(of which forward passes {RESULTS['engine_forward']:.1f}s), torchmetrics {RESULTS['torchmetrics']:.1f}s, "
              f"bare forward passes {RESULTS['bare']:.1f}s; torchmetrics/engine = {speedup:.2f}x (goal >= 2), "
              f"engine/bare = {overhead:.2f}x (goal <= 1.2; within the engine run: {in_run:.2f}x)")
    if N >= 500:
        assert speedup >= 2.0
        assert in_run <= 1.2
