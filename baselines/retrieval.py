"""Retrieval baselines: answer each trial with the nearest *training* stimulus in a learned embedding.

- ``retrieval-ridge``: ridge regression from EEG features (:mod:`baselines.features`) to the stimulus's
  image features (z-scored pixels at ``feature_size`` px), then the training stimulus whose features
  correlate best with the prediction.
- ``retrieval-triplet``: the triplet-trained EEG encoder of the reference pipeline
  (:class:`reconstruct.encoder.TripletEEGEncoder`); each training stimulus is represented by the mean
  embedding of the trials that showed it, and a test trial gets the stimulus with the highest cosine.

A retrieval can only return images it has seen, so on a by-image split its pixel scores are capped by
how alike same-class images are — that is the point of the baseline.
"""

from __future__ import annotations

import numpy as np

from baselines._common import (
    SeededMethod,
    cache_root,
    check_fitted,
    check_test_eeg,
    distinct_training_images,
    resize_images,
    trial_image_rows,
    unit_rows,
)
from baselines.embedding_decoder import QUICK_DECODER, DecoderSettings
from baselines.features import EEGFeatures
from baselines.ridge import RidgeMap, check_alpha
from baselines.shared_stages import DiffusionStage, shared_encoder
from eeg2img.datasets.base import EEGDataset
from eeg2img.errors import UserError
from eeg2img.methods import register
from eeg2img.params import check_int, settings_of, takes_settings
from eeg2img.seeding import torch_seeded, trial_seeds
from reconstruct.stages import QUICK_DIFFUSION, QUICK_ENCODER, DiffusionSettings, EncoderSettings, StageCache

# The embedding methods take the diffusion settings but strength: the decoder's tokens give text-to-image,
# with no init image to re-noise. (The contrastive encoders' own ``device`` sets the diffusion's too.)
EMBEDDING_EXCLUDED = ("strength",)
QUICK_EMBEDDING = {**QUICK_DIFFUSION, **QUICK_DECODER}


def pixel_features(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` → float ``(N, size*size*3)`` in [0, 1]: the image side of retrieval-ridge."""
    return resize_images(images, size).reshape(len(images), -1).astype(np.float64) / 255.0


class _Retrieval(SeededMethod):
    """Keeps the gallery (distinct training stimuli) and answers with the best-scoring entry."""

    def _set_gallery(self, train: EEGDataset) -> np.ndarray:
        self.gallery_ids_, self.gallery_ = distinct_training_images(train, self.image_size)
        return trial_image_rows(train, self.gallery_ids_)

    def _answer(self, scores: np.ndarray) -> np.ndarray:
        # Ties (e.g. duplicate gallery rows) go to the first-seen stimulus: argmax is deterministic.
        best = np.argmax(scores, axis=1)
        self.retrieved_ids_ = [self.gallery_ids_[b] for b in best]
        return self.gallery_[best].copy()


class _EmbeddingMethod(_Retrieval):
    """A zero-shot-track method: predicts each trial's embedding in ``space`` (``embed``), and reconstructs
    through it — with the embedding decoder (``decode="diffusion"``, :mod:`baselines.embedding_decoder`:
    the shared demo diffusion model conditioned on the space's embeddings) or as the training stimulus
    nearest to it (``decode="nearest"``). Subclasses store ``space``, learn the embedding in
    ``_fit_embedding`` and implement ``embed``; registered ones take the diffusion and decoder settings
    (``@takes_settings(DiffusionSettings, DecoderSettings, exclude=EMBEDDING_EXCLUDED)``)."""

    track = "zero-shot"
    shared_stage = "diffusion"  # the decoder's demo model: the runner starts the first job needing it early

    @property
    def embedding_space(self) -> str:
        return self.space

    def check_params(self) -> None:
        from metrics.embedding_spaces import check_space

        super().check_params()
        check_space(self.name, self.space)
        settings_of(DecoderSettings, self).check(self.name)
        self._diffusion_settings().check(self.name)

    def _diffusion_settings(self) -> DiffusionSettings:
        return settings_of(DiffusionSettings, self)

    def fit(self, train: EEGDataset, val: EEGDataset | None = None) -> _EmbeddingMethod:
        self._fit_embedding(train, val)
        if settings_of(DecoderSettings, self).decode == "diffusion":
            self._fit_decoder(train)
        return self

    def _fit_embedding(self, train: EEGDataset, val: EEGDataset | None) -> None:
        raise NotImplementedError

    def _fit_space(self, train: EEGDataset) -> tuple[np.ndarray, np.ndarray]:
        """Build the space's embedder for this fold; return each training trial's gallery row and the
        gallery's embeddings (float64)."""
        from metrics.embedding_spaces import image_embedder

        self._check_fit(train)
        rows = self._set_gallery(train)
        self.embedder_ = image_embedder(self.space, train, cache_dir=self.cache_dir)
        self.weights_sha256 = {self.space: self.embedder_.weights_sha256}
        gallery_emb = self.embedder_.embed(self.gallery_).astype(np.float64)
        self.gallery_unit_ = unit_rows(gallery_emb)
        self.gallery_emb_ = gallery_emb
        return rows, gallery_emb

    def _fit_decoder(self, train: EEGDataset) -> None:
        from baselines.embedding_decoder import cached_decoder

        stage = DiffusionStage(self, train, private=True, settings=self._diffusion_settings())
        label_of = dict(zip(map(str, train.image_ids), train.labels))  # one label per stimulus
        captions = [train.label_caption(label_of[i]) for i in self.gallery_ids_]
        with torch_seeded(self.seed):
            self.decoder_ = cached_decoder(stage, StageCache(cache_root(self)), self.gallery_, self.gallery_emb_,
                                           captions, self.embedder_.weights_sha256,
                                           settings_of(DecoderSettings, self), self.seed)
        stage.with_unet(self.decoder_.unet_for(stage))
        self.stage_ = stage

    def reconstruct(self, test: EEGDataset) -> np.ndarray:
        pred = self.embed(test)
        if settings_of(DecoderSettings, self).decode == "nearest":
            return self._answer(unit_rows(pred) @ self.gallery_unit_.T)
        check_fitted(self.name, hasattr(self, "decoder_"))
        # NeuroImagen's per-trial seeds: every method starts each trial from the same noise.
        images = self.stage_.generate(self.decoder_.tokens(pred), None, trial_seeds(self.seed, test.trial_ids))
        return resize_images(images, self.gallery_.shape[1])

    def _validation_scorer(self, val: EEGDataset | None):
        """``score(pred_emb) -> float``: the exact 2-way identification of the validation stimuli in the
        space (no random numbers), or None without two distinct validation images to tell apart."""
        from metrics.retrieval import retrieval_topk

        if val is None or len(val.unique_image_ids()) < 2:
            return None
        ids = val.unique_image_ids()
        candidates = self.embedder_.embed(val.load_images(ids))
        target = trial_image_rows(val, ids)
        return lambda pred: float(retrieval_topk(pred, candidates, target, n_way=2, draws=None).mean())


@register("retrieval-ridge")
class RidgeRetrieval(_Retrieval):
    """Ridge from EEG features to stimulus pixel features, then the nearest training stimulus."""

    name = "retrieval-ridge"

    def __init__(self, seed: int = 0, image_size: int | None = None, n_bins: int = 10, alpha: float | None = None,
                 feature_size: int = 16):
        self.seed = seed  # ridge is deterministic; kept for the common interface
        self.image_size = image_size
        self.n_bins = n_bins
        self.alpha = alpha
        self.feature_size = feature_size

    def check_params(self) -> None:
        super().check_params()
        check_int(self.name, "n_bins", self.n_bins)
        check_alpha(self.name, self.alpha)
        check_int(self.name, "feature_size", self.feature_size, minimum=2)

    def fit(self, train: EEGDataset, val: EEGDataset | None = None) -> RidgeRetrieval:
        self._check_fit(train)
        rows = self._set_gallery(train)
        targets = pixel_features(self.gallery_, self.feature_size)
        # z-scoring the targets makes every pixel count equally in the match, not just the high-variance ones.
        self.target_mean_ = targets.mean(axis=0)
        self.target_scale_ = np.maximum(targets.std(axis=0), 1e-3)
        gallery_z = (targets - self.target_mean_) / self.target_scale_
        self.features_ = EEGFeatures(self.n_bins)
        x = self.features_.fit_transform(train.eeg)
        self.ridge_ = RidgeMap(self.alpha).fit(x, gallery_z[rows])
        self.gallery_unit_ = unit_rows(gallery_z - gallery_z.mean(axis=1, keepdims=True))
        self.eeg_shape_ = train.eeg.shape[1:]
        return self

    def reconstruct(self, test: EEGDataset) -> np.ndarray:
        check_fitted(self.name, hasattr(self, "ridge_"))
        eeg = check_test_eeg(self.name, test, *self.eeg_shape_)
        pred = self.ridge_.predict(self.features_.transform(eeg)).astype(np.float64)
        pred = unit_rows(pred - pred.mean(axis=1, keepdims=True))  # Pearson r = cosine of centred rows
        return self._answer(pred @ self.gallery_unit_.T)


@register("retrieval-triplet", quick=QUICK_ENCODER)
@takes_settings(EncoderSettings)
class TripletRetrieval(_Retrieval):
    """Nearest training stimulus in NeuroImagen's triplet-encoder embedding (the encoder is shared and cached)."""

    name = "retrieval-triplet"

    def __init__(self, seed: int = 0, image_size: int | None = None):
        self.seed = seed
        self.image_size = image_size

    def check_params(self) -> None:
        super().check_params()
        settings_of(EncoderSettings, self).check(self.name)

    def fit(self, train: EEGDataset, val: EEGDataset | None = None) -> TripletRetrieval:
        self._check_fit(train, need_classes=2)
        rows = self._set_gallery(train)
        self.encoder_ = shared_encoder(self, train)
        emb = self.encoder_.encode(train.eeg).astype(np.float64)
        # A stimulus shown several times (subjects, repetitions) is represented by its trials' mean embedding.
        sums = np.zeros((len(self.gallery_ids_), emb.shape[1]))
        np.add.at(sums, rows, emb)
        self.gallery_unit_ = unit_rows(sums / np.bincount(rows, minlength=len(sums))[:, None])
        self.eeg_shape_ = train.eeg.shape[1:]
        return self

    def reconstruct(self, test: EEGDataset) -> np.ndarray:
        check_fitted(self.name, hasattr(self, "encoder_"))
        eeg = check_test_eeg(self.name, test, *self.eeg_shape_)
        return self._answer(unit_rows(self.encoder_.encode(eeg)) @ self.gallery_unit_.T)


@register("embedding-ridge", quick=QUICK_EMBEDDING)
@takes_settings(DiffusionSettings, DecoderSettings, exclude=EMBEDDING_EXCLUDED)
class EmbeddingRidge(_EmbeddingMethod):
    """Ridge from EEG features to an image embedding (the zero-shot track's linear baseline).

    ``embed`` predicts each trial's embedding in ``space`` (:mod:`metrics.embedding_spaces`); the runner
    scores zero-shot retrieval from it. The penalty is chosen on the validation trials when the fold has
    them — the exact 2-way identification of the validation stimuli, which on a zero-shot fold are
    concepts the ridge never trained on (ties: the larger penalty) — else by leave-one-out on training.
    ``reconstruct`` decodes the predicted embedding (``decode``, see :class:`_EmbeddingMethod`).
    """

    name = "embedding-ridge"

    def __init__(self, seed: int = 0, image_size: int | None = None, n_bins: int = 10, alpha: float | None = None,
                 space: str = "synth-cnn:fold-train"):
        self.seed = seed  # ridge is deterministic; kept for the common interface
        self.image_size = image_size
        self.n_bins = n_bins
        self.alpha = alpha
        self.space = space

    def check_params(self) -> None:
        super().check_params()
        check_int(self.name, "n_bins", self.n_bins)
        check_alpha(self.name, self.alpha)

    def _fit_embedding(self, train: EEGDataset, val: EEGDataset | None) -> None:
        rows, gallery_emb = self._fit_space(train)
        self.features_ = EEGFeatures(self.n_bins)
        x = self.features_.fit_transform(train.eeg)
        alpha = self.alpha if self.alpha is not None else self._alpha_on_validation(x, gallery_emb[rows], val)
        self.ridge_ = RidgeMap(alpha).fit(x, gallery_emb[rows])
        self.eeg_shape_ = train.eeg.shape[1:]

    def _alpha_on_validation(self, x: np.ndarray, y: np.ndarray, val: EEGDataset | None) -> float | None:
        from baselines.ridge import DEFAULT_ALPHAS

        self.val_scores_: dict[float, float] = {}
        score = self._validation_scorer(val)
        if score is None:
            return None  # leave-one-out on training (RidgeMap's default)
        xv = self.features_.transform(check_test_eeg(self.name, val, *val.eeg.shape[1:]))  # NaN: one line
        for alpha in DEFAULT_ALPHAS:
            self.val_scores_[alpha] = score(RidgeMap(alpha).fit(x, y).predict(xv))
        best = max(self.val_scores_.values())
        return max(a for a, v in self.val_scores_.items() if v == best)

    def embed(self, test: EEGDataset) -> np.ndarray:
        check_fitted(self.name, hasattr(self, "ridge_"))
        eeg = check_test_eeg(self.name, test, *self.eeg_shape_)
        return self.ridge_.predict(self.features_.transform(eeg)).astype(np.float32)


@register("oracle-embedding", quick=QUICK_EMBEDDING)
@takes_settings(DiffusionSettings, DecoderSettings, exclude=EMBEDDING_EXCLUDED)
class EmbeddingOracle(_EmbeddingMethod):
    """The zero-shot track's ceiling: the true stimulus's own embedding as the prediction (``is_oracle``).

    Its retrieval scores are what the space allows (1.0 unless two candidate images embed alike); its
    reconstruction is what the embedding decoder makes of the true embedding — the decoder's own ceiling —
    (or, with ``decode="nearest"``, the training stimulus nearest to the true stimulus in the space).
    """

    name = "oracle-embedding"
    is_oracle = True

    def __init__(self, seed: int = 0, image_size: int | None = None, space: str = "synth-cnn:fold-train"):
        self.seed, self.image_size, self.space = seed, image_size, space

    def _fit_embedding(self, train: EEGDataset, val: EEGDataset | None) -> None:
        self._fit_space(train)

    def embed(self, test: EEGDataset) -> np.ndarray:
        check_fitted(self.name, hasattr(self, "embedder_"))
        if test.blinded:
            raise UserError(f"{self.name}: an oracle needs the unblinded test view (it reads the true stimuli); "
                            "the runner passes it for methods with is_oracle=True")
        return self.embedder_.embed(test.load_images())
