"""The EEG feature extractor shared by the ridge, VAE and GAN baselines.

Time-binned means per channel (a low-pass + downsample that keeps the evoked response's time course),
z-scored per feature with the training trials' statistics, optionally projected on the leading principal
components (one common rescaling, no whitening). Deliberately
simple and fast: the baselines measure how far a plain linear read-out of the EEG gets.
"""

from __future__ import annotations

import numpy as np

from eeg2img.errors import UserError
from eeg2img.params import check_int, check_optional_int

_NAME = "EEGFeatures"


def binned_means(eeg: np.ndarray, n_bins: int) -> np.ndarray:
    """``(N, C, T)`` → ``(N, C * n_bins)``: the mean of each channel over ``n_bins`` near-equal time bins."""
    n, c, t = eeg.shape
    if n_bins > t:
        raise UserError(f"{_NAME}: n_bins={n_bins} exceeds the {t} samples per trial; pass n_bins ≤ {t}")
    # Bins are at least one sample wide (n_bins ≤ t), so the rounded edges strictly increase.
    edges = np.linspace(0, t, n_bins + 1).round().astype(np.int64)
    sums = np.add.reduceat(eeg, edges[:-1], axis=2, dtype=np.float64)
    return (sums / np.diff(edges)).reshape(n, c * n_bins)


class EEGFeatures:
    """``fit(eeg)`` learns the standardisation (and PCA); ``transform(eeg)`` → float32 ``(N, F)``."""

    def __init__(self, n_bins: int = 10, n_components: int | None = None):
        self.n_bins = n_bins
        self.n_components = n_components
        self.shape_: tuple[int, int] | None = None

    def fit(self, eeg: np.ndarray) -> EEGFeatures:
        check_int(_NAME, "n_bins", self.n_bins)
        check_optional_int(_NAME, "n_components", self.n_components)
        eeg = self._check(eeg, fitting=True)
        x = binned_means(eeg, self.n_bins)
        self.mean_ = x.mean(axis=0)
        # A floor on the scale keeps flat (dead) channels from being blown up into noise.
        std = x.std(axis=0)
        self.scale_ = np.maximum(std, 1e-6 * max(float(std.max()), 1e-12))
        z = (x - self.mean_) / self.scale_
        if self.n_components is not None:
            # Centred data of N trials has rank ≤ N − 1: a further component is numerical noise that the
            # training trials do not vary along, and the LDA downstream blew test features along it up to 1e13.
            k = min(self.n_components, max(z.shape[0] - 1, 1), z.shape[1])
            # SVD of the centred data: deterministic (no randomized solver), sign-fixed below.
            _, s, vt = np.linalg.svd(z, full_matrices=False)
            signs = np.sign(vt[:k, np.argmax(np.abs(vt[:k]), axis=1)].diagonal())
            self.components_ = vt[:k] * signs[:, None]
            # One common scale (not whitening): whitening would blow the many noise components up to the
            # size of the few that carry the evoked response.
            self.whiten_ = float(np.sqrt(np.mean(s[:k] ** 2) / max(len(z) - 1, 1))) or 1.0
        self.shape_ = eeg.shape[1:]
        return self

    def transform(self, eeg: np.ndarray) -> np.ndarray:
        if self.shape_ is None:
            raise UserError(f"{_NAME}: transform() called before fit(); call fit(train_eeg) first")
        eeg = self._check(eeg)
        z = (binned_means(eeg, self.n_bins) - self.mean_) / self.scale_
        if self.n_components is not None:
            z = (z @ self.components_.T) / self.whiten_
        return z.astype(np.float32)

    def fit_transform(self, eeg: np.ndarray) -> np.ndarray:
        return self.fit(eeg).transform(eeg)

    @property
    def n_features(self) -> int:
        if self.shape_ is None:
            raise UserError(f"{_NAME}: not fitted; call fit(train_eeg) first")
        return len(self.components_) if self.n_components is not None else self.shape_[0] * self.n_bins

    def _check(self, eeg: np.ndarray, fitting: bool = False) -> np.ndarray:
        eeg = np.asarray(eeg)
        if eeg.ndim != 3 or eeg.shape[0] == 0:
            raise UserError(f"{_NAME}: EEG must be a non-empty trials × channels × samples array, got {eeg.shape}")
        if not fitting and eeg.shape[1:] != self.shape_:
            raise UserError(f"{_NAME}: EEG is {eeg.shape[1]}×{eeg.shape[2]} (channels×samples) but the features "
                            f"were fitted on {self.shape_[0]}×{self.shape_[1]}; use the same preprocessing")
        if not np.all(np.isfinite(eeg)):
            raise UserError(f"{_NAME}: EEG contains NaN or inf; clean or drop those trials")
        return eeg


class DiscriminantProjection:
    """Features → the class-discriminant subspace (shrinkage LDA, ``n_classes − 1`` dims), z-scored.

    Brain2Image conditioned its generators on EEG features from an encoder trained to classify; this is
    the linear counterpart for the shared features. The Ledoit-Wolf shrinkage keeps the within-class
    covariance invertible with fewer trials than features.
    """

    def fit(self, x: np.ndarray, labels: np.ndarray) -> DiscriminantProjection:
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        labels = np.asarray(labels)
        if len(np.unique(labels)) < 2:
            raise UserError("DiscriminantProjection: needs ≥ 2 classes in the training set; widen the split "
                            "or use condition='pca'")
        n_classes = len(np.unique(labels))
        if len(labels) <= n_classes:
            raise UserError(f"DiscriminantProjection: {len(labels)} training trials for {n_classes} classes; LDA needs "
                            "more trials than classes — use a dataset with more images per class, or condition='pca'")
        self.lda_ = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(x, labels)
        y = self.lda_.transform(x)
        self.mean_, self.scale_ = y.mean(0), np.maximum(y.std(0), 1e-8)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((self.lda_.transform(x) - self.mean_) / self.scale_).astype(np.float32)
