"""``dreamdiffusion``: EEG tokens in the U-Net's cross-attention, tuned with the diffusion loss
(after DreamDiffusion, Bai et al. 2023; kept tiny for the demo scale).

The shared EEG features (:mod:`baselines.features`) go through an MLP that emits a ``(L, D)`` token
sequence — the shape of a caption's prompt embeddings, so the sequence replaces the caption in the
U-Net's cross-attention. The MLP (and, by default, the U-Net's cross-attention projections) is trained
on the training stimuli with Stable Diffusion's noise-prediction loss, starting from a copy of the shared
diffusion model. DreamDiffusion aligns its EEG embedding with CLIP *image* embeddings; the analogue here
is an L2 pull of the tokens towards the stimulus caption's embedding (``align_weight``; 0 disables it).
With probability ``uncond_prob`` a trial is trained with the empty-caption embedding, so the tuned U-Net
keeps the unconditional prediction that classifier-free guidance needs. Reconstruction is text-to-image
from noise with the tuned copy; the shared model is not modified.

Not reproduced: DreamDiffusion's masked-signal-modelling pre-training of the EEG encoder on large
unlabelled EEG corpora (there is none at demo scale; the MLP on binned features stands in for it).
"""

from __future__ import annotations

import numpy as np
import torch

from baselines._common import check_test_eeg
from baselines.conditioning import TUNE_CHOICES, TokenMLP, tune_tokens
from baselines.features import EEGFeatures
from baselines.shared_stages import DiffusionBaseline
from eeg2img.datasets.base import EEGDataset
from eeg2img.methods import register
from eeg2img.params import check_choice, check_float, check_int, check_optional_int, takes_settings
from eeg2img.seeding import torch_seeded
from reconstruct.stages import QUICK_DIFFUSION, DiffusionSettings


@register("dreamdiffusion", quick={**QUICK_DIFFUSION, "tune_steps": 40})
@takes_settings(DiffusionSettings, exclude=("strength",))  # text-to-image: no init image to re-noise
class DreamDiffusion(DiffusionBaseline):
    """EEG → projected cross-attention tokens, tuned with the diffusion loss through the shared U-Net."""

    name = "dreamdiffusion"
    version = "2"  # 2: the tuning steps use torch's fused AdamW (same maths, other rounding)

    def __init__(self, seed: int = 0, image_size: int | None = None, n_bins: int = 10, n_components: int | None = 64,
                 hidden: int = 256, tune: str = "cross-attention", align_weight: float = 1.0,
                 uncond_prob: float = 0.1, tune_steps: int = 200, tune_batch_size: int = 16, lr: float = 1e-3,
                 unet_lr: float = 1e-4):
        self.seed = seed
        self.image_size = image_size
        self.n_bins = n_bins
        self.n_components = n_components
        self.hidden = hidden
        self.tune = tune
        self.align_weight = align_weight
        self.uncond_prob = uncond_prob
        self.tune_steps = tune_steps
        self.tune_batch_size = tune_batch_size
        self.lr = lr
        self.unet_lr = unet_lr

    def check_params(self) -> None:
        super().check_params()
        name = self.name
        check_int(name, "n_bins", self.n_bins)
        check_optional_int(name, "n_components", self.n_components)
        check_int(name, "hidden", self.hidden)
        check_choice(name, "tune", self.tune, TUNE_CHOICES)
        check_float(name, "align_weight", self.align_weight, low=0.0, low_open=False)
        check_float(name, "uncond_prob", self.uncond_prob, low=0.0, high=1.0, low_open=False)
        check_int(name, "tune_steps", self.tune_steps, minimum=0)
        check_int(name, "tune_batch_size", self.tune_batch_size)
        check_float(name, "lr", self.lr)
        check_float(name, "unet_lr", self.unet_lr)

    def fit(self, train: EEGDataset, val: EEGDataset | None = None) -> DreamDiffusion:
        from eeg2img.devices import cpu_threads

        stage = self._fit_stage(train, private=True)
        # The tuning steps are demo-scale U-Net passes like the shared model's own training: on a busy CPU
        # torch's default thread count made them several times slower than $EEG2IMG_TORCH_THREADS=1.
        with cpu_threads(stage.device):
            return self._tune(stage, train)

    def _tune(self, stage, train: EEGDataset) -> DreamDiffusion:
        ids = train.unique_image_ids()
        latents = torch.from_numpy(stage.encode_latents(train.load_images(ids, size=self.image_size)))
        row = {k: n for n, k in enumerate(ids)}
        trial_rows = torch.tensor([row[str(i)] for i in train.image_ids])
        captions = stage.embed(train.label_captions())
        self.features_ = EEGFeatures(self.n_bins, self.n_components)
        feats = torch.from_numpy(self.features_.fit_transform(train.eeg))
        with torch_seeded(self.seed):
            start = torch.from_numpy(captions.mean(0))
            tokenizer = TokenMLP(feats.shape[1], *captions.shape[1:], self.hidden).start_at(start)
            unet, self.history_ = tune_tokens(
                stage, tokenizer, feats, latents[trial_rows], steps=self.tune_steps, batch_size=self.tune_batch_size,
                lr=self.lr, unet_lr=self.unet_lr, tune=self.tune, uncond_prob=self.uncond_prob, seed=self.seed,
                align=torch.from_numpy(captions), align_weight=self.align_weight, desc=self.name)
        self.tokenizer_ = tokenizer
        stage.with_unet(unet)
        return self

    @torch.no_grad()
    def tokens(self, test: EEGDataset) -> np.ndarray:
        """The cross-attention tokens ``(N, L, D)`` for ``test``'s EEG."""
        stage = self._check_fitted()
        x = self.features_.transform(check_test_eeg(self.name, test, *self.eeg_shape_))
        return self.tokenizer_(torch.from_numpy(x).to(stage.device)).float().cpu().numpy()

    def reconstruct(self, test: EEGDataset) -> np.ndarray:
        stage = self._check_fitted()
        return self._to_stimulus_size(stage.generate(self.tokens(test), None, self._seeds(test)))
