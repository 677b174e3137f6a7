"""Metrics for image reconstruction, proven equal to the reference libraries (torch-fidelity, torchmetrics,
clean-fid, skimage, MindEye, MinD-Vis).

This package's numerical core works on features, logits, embeddings and images that are already
computed: importing it loads no network weights. Each metric has a functional form and a small
torchmetrics-style object (``update`` / ``compute`` / ``reset`` / ``result``) that keeps per-sample
values for confidence intervals and paired comparisons.

The per-sample image functions are reached through their modules (``metrics.ssim.ssim``,
``metrics.pixcorr.pixcorr``) so that the package attributes ``metrics.ssim`` and ``metrics.pixcorr``
stay the modules.
"""

from metrics.accuracy import NWayAccuracy, nway_topk_accuracy
from metrics.base import FID_MIN_SAMPLES, Metric, MetricResult, SmallSampleWarning
from metrics.clip_score import CLIPScore, aggregate_clip_score, clip_score_from_embeddings
from metrics.fid import FID, feature_statistics, fid_from_features, frechet_distance
from metrics.identification import Identification, nway_identification
from metrics.inception_score import InceptionScore, inception_score_from_logits, inception_score_per_split
from metrics.kid import KID, kid_from_features, kid_subset_values
from metrics.pixcorr import PixCorr, pearson_rows
from metrics.ssim import SSIM, structural_similarity
from metrics.stats import bootstrap_ci, bootstrap_set_metric, paired_comparison, per_subject

__all__ = [
    "FID",
    "FID_MIN_SAMPLES",
    "KID",
    "SSIM",
    "CLIPScore",
    "Identification",
    "InceptionScore",
    "Metric",
    "MetricResult",
    "NWayAccuracy",
    "PixCorr",
    "SmallSampleWarning",
    "aggregate_clip_score",
    "bootstrap_ci",
    "bootstrap_set_metric",
    "clip_score_from_embeddings",
    "feature_statistics",
    "fid_from_features",
    "frechet_distance",
    "inception_score_from_logits",
    "inception_score_per_split",
    "kid_from_features",
    "kid_subset_values",
    "nway_identification",
    "nway_topk_accuracy",
    "paired_comparison",
    "per_subject",
    "pearson_rows",
    "structural_similarity",
]
