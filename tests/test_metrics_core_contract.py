"""Bad input becomes a one-line UserError naming the value and the fix; results serialise; import is weight-free."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from eeg2img.errors import UserError
from metrics.accuracy import nway_topk_accuracy
from metrics.base import MetricResult
from metrics.clip_score import CLIPScore, aggregate_clip_score, clip_score_from_embeddings
from metrics.fid import FID, fid_from_features, frechet_distance
from metrics.identification import nway_identification
from metrics.inception_score import inception_score_from_logits
from metrics.kid import kid_from_features
from metrics.pixcorr import pixcorr
from metrics.ssim import SSIM, ssim
from metrics.stats import bootstrap_ci, bootstrap_set_metric, paired_comparison, per_subject

RNG = np.random.default_rng(0)
F10 = RNG.normal(size=(10, 4))
F12 = RNG.normal(size=(12, 4))
NAN = F10.copy()
NAN[3, 1] = np.nan
IMAGES = RNG.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)

BAD_CALLS = {
    "fid-nan": (lambda: fid_from_features(NAN, F10), "NaN"),
    "fid-1d": (lambda: fid_from_features(F10[:, 0], F10[:, 0]), "(N, D)"),
    "fid-dims": (lambda: fid_from_features(F10, F10[:, :3]), "feature shape"),
    "frechet-shapes": (lambda: frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4)), "sigma2"),
    "frechet-nan": (lambda: frechet_distance(np.zeros(2), np.eye(2) * np.nan, np.zeros(2), np.eye(2)), "NaN"),
    "kid-nan": (lambda: kid_from_features(F10, NAN, subsets=2), "NaN"),
    "kid-one-sample": (lambda: kid_from_features(F10[:1], F10, subsets=2), "at least 2"),
    "is-nan": (lambda: inception_score_from_logits(NAN, splits=2), "NaN"),
    "is-splits": (lambda: inception_score_from_logits(F10, splits=20), "splits"),
    "ssim-count": (lambda: ssim(IMAGES, IMAGES[:2], size=None), "same trial order"),
    "ssim-3d": (lambda: ssim(IMAGES[0], IMAGES[0], size=None), "batch of images"),
    "ssim-range": (lambda: ssim(IMAGES / 1.0, IMAGES / 1.0, size=None), "divide by 255"),
    "ssim-protocol": (lambda: ssim(IMAGES, IMAGES, protocol="grey"), "mindeye"),
    "ssim-tiny": (lambda: ssim(IMAGES[:, :8, :8], IMAGES[:, :8, :8], size=None), "window"),
    "ssim-sizes": (lambda: ssim(IMAGES, IMAGES[:, :12], size=None), "after resizing"),
    "pixcorr-count": (lambda: pixcorr(IMAGES[:1], IMAGES, size=None), "same trial order"),
    "pixcorr-nan": (lambda: pixcorr(np.full((1, 16, 16, 3), np.nan), IMAGES[:1], size=None), "NaN"),
    "ident-count": (lambda: nway_identification(F10, F12), "same trial order"),
    "ident-nan": (lambda: nway_identification(NAN, F10), "NaN"),
    "ident-nway": (lambda: nway_identification(F10, F10, n_way=11), "n_way"),
    "acc-count": (lambda: nway_topk_accuracy(F10, np.zeros(9, dtype=int), n_way=2), "same trial order"),
    "acc-class-range": (lambda: nway_topk_accuracy(F10, np.full(10, 4), n_way=2), "class indices"),
    "acc-non-integer": (lambda: nway_topk_accuracy(F10, np.full(10, 0.5), n_way=2), "class indices"),
    "acc-topk": (lambda: nway_topk_accuracy(F10, np.zeros(10, dtype=int), n_way=2, top_k=3), "top_k"),
    "clip-count": (lambda: clip_score_from_embeddings(F10, F12), "same trial order"),
    "clip-zero": (lambda: clip_score_from_embeddings(np.zeros((10, 4)), F10), "all zeros"),
    "clip-variant": (lambda: aggregate_clip_score([1.0], "openai"), "hessel"),
    "bootstrap-nan": (lambda: bootstrap_ci([1.0, np.nan]), "NaN"),
    "bootstrap-2d": (lambda: bootstrap_ci(F10), "1-D"),
    "paired-count": (lambda: paired_comparison([1.0, 2.0], [1.0]), "same trials"),
    "subjects-shape": (lambda: per_subject([1.0, 2.0], [1]), "one subject per trial"),
    "set-rows": (lambda: bootstrap_set_metric(fid_from_features, F10, F12), "one row per trial"),
    "compute-empty": (lambda: FID().compute(), "update"),
    "ssim-empty": (lambda: SSIM().compute(), "update"),
    "strings": (lambda: fid_from_features(np.array([["a", "b"], ["c", "d"]]), F10), "numeric"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_input_raises_one_line_user_error(case):
    call, fragment = BAD_CALLS[case]
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message and ";" in message  # "<value>: <problem>; <fix>"


def test_metric_result_to_dict_is_json_ready():
    result = MetricResult(name="ssim", value=np.float64(0.25), ci95=(np.float64(0.2), 0.3), backbone=None,
                          protocol="mindeye-425px-gray", n=np.int64(12), per_sample=np.zeros(12))
    d = result.to_dict()
    assert d == {"value": 0.25, "ci95": [0.2, 0.3], "backbone": None, "protocol": "mindeye-425px-gray", "n": 12,
                 "label": "", "status": "ok"}
    assert json.loads(json.dumps(d)) == d
    below = MetricResult(name="is", value=float("nan"), n=5, status="N < min").to_dict()
    assert below["value"] is None and below["status"] == "N < min" and json.loads(json.dumps(below)) == below


def test_torchmetrics_clip_variant_result_and_reset():
    metric = CLIPScore(variant="torchmetrics")
    metric.update(F10, -F10)
    assert metric.compute() == 0.0 and metric.per_sample.tolist() == pytest.approx([-100.0] * 10)
    metric.reset()
    with pytest.raises(UserError):
        metric.compute()


def test_importing_metrics_loads_no_model_code():
    code = ("import sys, metrics; heavy = [m for m in ('torchvision', 'open_clip', 'transformers', 'diffusers', "
            "'torch_fidelity', 'cleanfid', 'torchmetrics') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
