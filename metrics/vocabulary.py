"""The metric vocabulary: what each metric is called, which direction is better, and at which N it means something.

This is the one place that says so. The config validates metric names against it, the engine and the
runner compute what it lists, and the report reads display names and directions from it. What a number
was computed *with* (N of N-way, top-k, IS splits, feature dimension, resize policy, image size) is not
declared here: the engine writes that label next to every value it computes (``label`` in the results),
because only the computation knows it — a 5-class dataset's accuracy is 5-way however the table was set up.

Set-level metrics (FID, KID, IS) summarise a whole image set, so they have a minimum N below which the
suite refuses to show a number (``min_n``) and, for FID, an N below which the number is shown but flagged
as biased (``warn_n``). The floors and why:

- **IS**: at least ``IS_IMAGES_PER_SPLIT`` = 10 images per split and at least 2 splits (N ≥ 20). With one
  image per split KL(p(y|x) ‖ p(y)) is 0 and IS is exactly 1 whatever the images; fewer, fuller splits
  are used rather than degenerate ones (splits = min(10, N // 10)).
- **FID**: refused below N = 50 — below that the 2-moment fit of a few points is dominated by the
  covariance's rank deficiency (values in the thousands with CIs spanning an order of magnitude).
  Flagged below 2048 (or below the feature dimension if larger): the covariance is rank deficient and
  FID is biased upwards, so compare only at equal N.
- **KID**: unbiased at any N, but its subset variance explodes for small sets (and goes negative);
  refused below N = 20.
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE = "sample"  # one value per trial; the table shows the mean over trials
SET = "set"  # one value per image set
# One value per trial, computed from embeddings rather than images: zero-shot identification of the
# trial's stimulus among the fold's test images (:mod:`metrics.retrieval`), scored by the grid runner.
RETRIEVAL = "retrieval"
RETRIEVAL_WAYS = (2, 4, 10, 50, 100)  # ATM's k-way top-1 (seeded draws here)

IS_IMAGES_PER_SPLIT = 10
IS_MIN_SPLITS = 2


@dataclass(frozen=True)
class MetricSpec:
    name: str
    display: str
    higher_is_better: bool
    level: str = SAMPLE
    min_n: int = 1  # below this no value is shown ("N < min")
    warn_n: int = 0  # below this the value is shown, flagged as biased
    # Raised whenever what the metric computes changes: part of every run-store cell key, so results
    # computed by an older definition are never served for the new one.
    version: int = 1

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


VOCABULARY: dict[str, MetricSpec] = {
    "ssim": MetricSpec("ssim", "SSIM", True),
    "pixcorr": MetricSpec("pixcorr", "PixCorr", True),
    "clip": MetricSpec("clip", "CLIP score", True),
    "nway": MetricSpec("nway", "N-way ident.", True, min_n=2),
    "acc": MetricSpec("acc", "ACC", True),
    "corrdist": MetricSpec("corrdist", "Corr. dist.", False),
    "is": MetricSpec("is", "IS", True, SET, min_n=IS_IMAGES_PER_SPLIT * IS_MIN_SPLITS),
    "fid": MetricSpec("fid", "FID", False, SET, min_n=50, warn_n=2048),
    "kid": MetricSpec("kid", "KID", False, SET, min_n=20),
    "top1": MetricSpec("top1", "Top-1", True, RETRIEVAL),
    "top5": MetricSpec("top5", "Top-5", True, RETRIEVAL),
    **{f"top1-{k}way": MetricSpec(f"top1-{k}way", f"Top-1 {k}-way", True, RETRIEVAL) for k in RETRIEVAL_WAYS},
}
ALL_METRICS = tuple(VOCABULARY)
SET_METRICS = tuple(m for m, s in VOCABULARY.items() if s.level == SET)
SAMPLE_METRICS = tuple(m for m, s in VOCABULARY.items() if s.level == SAMPLE)
RETRIEVAL_METRICS = tuple(m for m, s in VOCABULARY.items() if s.level == RETRIEVAL)
IMAGE_METRICS = tuple(m for m in ALL_METRICS if m not in RETRIEVAL_METRICS)  # what the engine computes from images
PIXEL_METRICS = ("ssim", "pixcorr")

STATUS_OK = "ok"
STATUS_BELOW_MIN = "N < min"


def spec(metric: str) -> MetricSpec:
    """The metric's entry; a name outside the vocabulary (a column from elsewhere) gets a neutral one."""
    key = str(metric).lower()
    if key in VOCABULARY:
        return VOCABULARY[key]
    lower = any(w in key for w in ("fid", "kid", "lpips", "mse", "mae", "loss", "dist", "error", "rank"))
    return MetricSpec(key, metric.upper() if len(metric) <= 4 else metric, not lower)


def is_splits_for(n: int, requested: int = 10) -> int:
    """IS splits used on ``n`` images: at most ``requested``, each holding at least 10 images (0 = too few)."""
    return min(int(requested), int(n) // IS_IMAGES_PER_SPLIT)


def below_minimum_text(metric: str, n: int) -> str:
    s = spec(metric)
    return f"N < min ({n} < {s.min_n})"
