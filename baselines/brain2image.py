"""Brain2Image-style generators (after Kavasidis et al., ACM MM 2017): small convnets conditioned on EEG features.

- ``brain2image-vae``: a conditional VAE (Sohn et al. 2015). The encoder sees the stimulus and the EEG
  condition, a prior network the condition alone, the decoder rebuilds the stimulus from the latent and the
  condition; at test time the latent is the conditional prior's mean, so the image comes from the EEG alone.
  ``prior_weight`` weights the reconstruction from that prior mean during training (Sohn's hybrid objective).
- ``brain2image-gan``: a conditional GAN with a projection discriminator (Miyato & Koyama 2018) on the EEG
  condition, hinge or BCE loss, purely adversarial as in Brain2Image by default (``l1_weight`` adds a
  pix2pix-style pixel term). DiffAugment on the discriminator's inputs keeps it from memorising the few
  dozen stimuli of a demo fold within a few steps; the generator used for reconstruction is an exponential
  moving average of the trained one (``ema``). Adversarial training does not converge to a point, so which
  step's generator to keep is model selection: with ``select="val"`` (the default) the fit scores the
  averaged generator every ``val_every`` steps on the fold's *validation* trials — MindEye's all-pairs
  2-way identification in pixel space (:func:`metrics.identification.nway_identification`) — and keeps
  the best; the test trials are never seen. ``select="last"``, or a fold without validation trials, keeps
  the last step's. Scoring draws no random numbers, so it never changes the training trajectory.

The condition starts from the shared feature extractor (:mod:`baselines.features`: binned channel means,
z-scored, leading principal components). Brain2Image conditioned on features of an EEG encoder trained to
classify; the linear counterpart here is a shrinkage LDA fitted on the training labels, projecting the
features on the class-discriminant subspace. ``condition`` picks what the nets see: ``"lda"`` (that
subspace; the GAN's default), ``"lda+pca"`` (it, next to the principal components that also carry
layout; the VAE's default) or ``"pca"``. The defaults gave the most reliable held-out class accuracy
across seeds on the demo-scale synthetic data. A learned linear layer maps the condition into the nets.

Both nets work at a power-of-two resolution near the stimulus size (capped at 64 px); their output is
resized to the stimulus resolution.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from baselines._common import check_fitted, check_test_eeg, check_trainable
from baselines.convnets import (
    ImageDecoder,
    ImageEncoder,
    check_power_of_two,
    work_resolution,
)
from baselines.features import DiscriminantProjection, EEGFeatures
from eeg2img.datasets.base import EEGDataset
from eeg2img.devices import resolve_device
from eeg2img.errors import UserError
from eeg2img.methods import Method, register
from eeg2img.params import check_choice, check_device, check_float, check_int, check_optional_int, check_seed
from eeg2img.seeding import torch_seeded, trial_seeds
from metrics.image_ops import images_to_tensor, tensor_to_images


class _ConditionalImageModel(Method):
    """Shared plumbing: features, stimuli as tensors, minibatches, test-time generation."""

    uses_cuda = True  # with device = "cuda" (the default is "cpu")

    def check_params(self) -> None:
        name = self.name
        check_choice(name, "condition", self.condition, ("lda+pca", "lda", "pca"))
        check_seed(name, self.seed)
        check_optional_int(name, "image_size", self.image_size, minimum=1)
        if self.work_size is not None:
            check_power_of_two(name, "work_size", check_int(name, "work_size", self.work_size))
        check_int(name, "n_bins", self.n_bins)
        check_optional_int(name, "n_components", self.n_components)
        check_int(name, "cond_dim", self.cond_dim)
        check_int(name, "z_dim", self.z_dim)
        check_int(name, "width", self.width, minimum=4)
        check_int(name, "steps", self.steps)
        check_int(name, "batch_size", self.batch_size)
        check_float(name, "lr", self.lr)
        check_device(name, self.device)

    def _prepare(self, train: EEGDataset) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_params()
        check_trainable(self.name, train)
        self.features_ = EEGFeatures(self.n_bins, self.n_components)
        x = self.features_.fit_transform(train.eeg)
        self.projection_ = DiscriminantProjection().fit(x, train.labels) if "lda" in self.condition else None
        feats = torch.from_numpy(self._condition(x))
        images = train.load_images(size=self.image_size)
        self.out_size_ = int(images.shape[1])
        self.size_ = self.work_size or work_resolution(self.out_size_)
        self.eeg_shape_ = train.eeg.shape[1:]
        return feats, images_to_tensor(images, self.size_)

    def _batches(self, n: int, generator: torch.Generator):
        # Sampling with replacement keeps the step count fixed whatever the fold size.
        bs = min(self.batch_size, n)
        for _ in tqdm(range(self.steps), desc=self.name, disable=None, leave=False):
            yield torch.randint(0, n, (bs,), generator=generator)

    def _test_features(self, test: EEGDataset) -> torch.Tensor:
        check_fitted(self.name, hasattr(self, "features_"))
        eeg = check_test_eeg(self.name, test, *self.eeg_shape_)
        return torch.from_numpy(self._condition(self.features_.transform(eeg)))

    def _condition(self, x: np.ndarray) -> np.ndarray:
        if self.condition == "pca":
            return x
        lda = self.projection_.transform(x)
        return lda if self.condition == "lda" else np.concatenate([lda, x], axis=1)

    def _trial_noise(self, test: EEGDataset, dim: int) -> torch.Tensor:
        # One noise vector per trial id, so a trial's image does not depend on the batch it comes in.
        seeds = trial_seeds(self.seed, test.trial_ids)
        rows = [torch.randn(dim, generator=torch.Generator().manual_seed(s)) for s in seeds]
        return torch.stack(rows) if rows else torch.zeros(0, dim)


@register("brain2image-vae", quick={"steps": 120})
class Brain2ImageVAE(_ConditionalImageModel):
    """Conditional VAE on EEG features; reconstructs with the latent at the prior mean."""

    name = "brain2image-vae"

    def __init__(self, seed: int = 0, image_size: int | None = None, work_size: int | None = None, n_bins: int = 10,
                 n_components: int | None = 64, condition: str = "lda+pca", cond_dim: int = 32, z_dim: int = 8,
                 beta: float = 1.0, prior_weight: float = 0.5, width: int = 16, steps: int = 300,
                 batch_size: int = 32, lr: float = 2e-3, weight_decay: float = 1e-4, device: str = "cpu"):
        self.seed, self.image_size, self.work_size = seed, image_size, work_size
        self.n_bins, self.n_components, self.condition, self.cond_dim = n_bins, n_components, condition, cond_dim
        self.z_dim, self.beta, self.prior_weight, self.width = z_dim, beta, prior_weight, width
        self.steps, self.batch_size, self.lr, self.weight_decay = steps, batch_size, lr, weight_decay
        self.device = device

    def check_params(self) -> None:
        super().check_params()
        check_float(self.name, "beta", self.beta, low=0.0, low_open=False)
        check_float(self.name, "prior_weight", self.prior_weight, low=0.0, high=1.0, low_open=False)
        check_float(self.name, "weight_decay", self.weight_decay, low=0.0, low_open=False)

    def _build(self, n_features: int) -> None:
        self.cond_ = nn.Sequential(nn.Linear(n_features, self.cond_dim), nn.LeakyReLU(0.2))
        self.encoder_ = ImageEncoder(self.size_, 2 * self.z_dim, self.width)
        self.merge_ = nn.Linear(2 * self.z_dim + self.cond_dim, 2 * self.z_dim)
        self.prior_ = nn.Linear(self.cond_dim, 2 * self.z_dim)
        self.decoder_ = ImageDecoder(self.z_dim + self.cond_dim, self.size_, self.width)

    def _modules(self) -> list[nn.Module]:
        return [self.cond_, self.encoder_, self.merge_, self.prior_, self.decoder_]

    def fit(self, train: EEGDataset, val: EEGDataset | None = None) -> Brain2ImageVAE:
        feats, images = self._prepare(train)
        device = resolve_device(self.device, self.name)
        with torch_seeded(self.seed):
            self._build(feats.shape[1])
            for m in self._modules():
                m.to(device).train()
            params = [p for m in self._modules() for p in m.parameters()]
            opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay, foreach=True)
            gen = torch.Generator().manual_seed(self.seed)
            self.history_: list[float] = []
            for idx in self._batches(len(feats), gen):
                f, x = feats[idx].to(device), images[idx].to(device)
                c = self.cond_(f)
                mu, logvar = self.merge_(torch.cat([self.encoder_(x), c], 1)).chunk(2, dim=1)
                logvar = logvar.clamp(-10, 10)
                mu_p, logvar_p = self.prior_(c).chunk(2, dim=1)
                logvar_p = logvar_p.clamp(-10, 10)
                eps = torch.randn(mu.shape, generator=gen).to(device)
                z = mu + eps * torch.exp(0.5 * logvar)
                # Decode the posterior sample and, as at test time, the prior mean in one batch (BatchNorm sees
                # both): Sohn et al.'s hybrid objective. Without the prior path the decoder reads the stimulus
                # from z, ignores the EEG, and gives every test trial the same image.
                x_hat = self.decoder_(torch.cat([torch.cat([z, c], 1), torch.cat([mu_p, c], 1)]))
                err = ((x_hat - torch.cat([x, x])) ** 2).flatten(1).sum(1)
                recon = (1 - self.prior_weight) * err[: len(x)].mean() + self.prior_weight * err[len(x):].mean()
                # KL(q(z | x, c) ‖ p(z | c)): a conditional prior (Sohn et al. 2015), so the EEG predicts z too
                kl = 0.5 * (logvar_p - logvar + (logvar.exp() + (mu - mu_p) ** 2) / logvar_p.exp() - 1).sum(1).mean()
                loss = recon + self.beta * kl
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                self.history_.append(loss.item())
        for m in self._modules():
            m.cpu().eval()
        return self

    @torch.no_grad()
    def reconstruct(self, test: EEGDataset) -> np.ndarray:
        feats = self._test_features(test)
        c = self.cond_(feats)
        x_hat = self.decoder_(torch.cat([self.prior_(c).chunk(2, dim=1)[0], c], 1))
        return tensor_to_images(x_hat, self.out_size_)


class _ProjectionDiscriminator(nn.Module):
    def __init__(self, size: int, n_features: int, width: int, feat_dim: int = 128):
        super().__init__()
        self.body = ImageEncoder(size, feat_dim, width, spectral=True)
        self.out = nn.utils.spectral_norm(nn.Linear(feat_dim, 1))
        self.embed = nn.utils.spectral_norm(nn.Linear(n_features, feat_dim, bias=False))

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.body(x), 0.2)
        return self.out(h).squeeze(1) + (h * self.embed(f)).sum(1)


@register("brain2image-gan", quick={"steps": 120})
class Brain2ImageGAN(_ConditionalImageModel):
    """Conditional GAN on EEG features (projection discriminator; hinge or BCE loss)."""

    name = "brain2image-gan"

    def __init__(self, seed: int = 0, image_size: int | None = None, work_size: int | None = None, n_bins: int = 10,
                 n_components: int | None = 64, condition: str = "lda", cond_dim: int = 32, z_dim: int = 8,
                 loss: str = "hinge", l1_weight: float = 0.0, diffaugment: str = "color,translation,cutout",
                 width: int = 8, steps: int = 300, batch_size: int = 32, lr: float = 1e-3, ema: float = 0.98,
                 select: str = "val", val_every: int = 25, device: str = "cpu"):
        self.seed, self.image_size, self.work_size = seed, image_size, work_size
        self.n_bins, self.n_components, self.condition, self.cond_dim = n_bins, n_components, condition, cond_dim
        self.z_dim, self.loss, self.l1_weight, self.diffaugment = z_dim, loss, l1_weight, diffaugment
        self.width, self.steps, self.batch_size, self.lr, self.ema = width, steps, batch_size, lr, ema
        self.select, self.val_every, self.device = select, val_every, device

    def check_params(self) -> None:
        super().check_params()
        name = self.name
        check_float(name, "ema", self.ema, low=0.0, high=1.0, low_open=False)
        if self.ema == 1.0:
            raise UserError(f"{name}: ema=1.0 never leaves the initial weights; pass a decay < 1, or 0 for off")
        check_choice(name, "loss", self.loss, ("hinge", "bce"))
        check_choice(name, "select", self.select, ("val", "last"))
        check_int(name, "val_every", self.val_every)
        check_float(name, "l1_weight", self.l1_weight, low=0.0, low_open=False)
        if not isinstance(self.diffaugment, str):
            raise UserError(f"{name}: diffaugment={self.diffaugment!r} is invalid; pass e.g. 'color,translation,cutout' or ''")
        for part in (p.strip() for p in self.diffaugment.split(",") if p.strip()):
            check_choice(name, "diffaugment part", part, ("color", "translation", "cutout"))

    def _d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.loss == "hinge":
            return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
        return F.softplus(-real).mean() + F.softplus(fake).mean()

    def _g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean() if self.loss == "hinge" else F.softplus(-fake).mean()

    def _augment(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        # DiffAugment (Zhao et al. 2020): with a few dozen stimuli the discriminator memorises them within
        # a few steps unless both its real and fake inputs are augmented the same way.
        from reconstruct.saliency_gan import diff_augment

        return diff_augment(x, self.diffaugment, gen) if self.diffaugment else x

    def fit(self, train: EEGDataset, val: EEGDataset | None = None) -> Brain2ImageGAN:
        feats, images = self._prepare(train)
        device = resolve_device(self.device, self.name)
        with torch_seeded(self.seed):
            self.cond_ = nn.Sequential(nn.Linear(feats.shape[1], self.cond_dim), nn.LeakyReLU(0.2)).to(device)
            self.generator_ = ImageDecoder(self.z_dim + self.cond_dim, self.size_, self.width).to(device)
            disc = _ProjectionDiscriminator(self.size_, feats.shape[1], self.width).to(device)
            g_params = list(self.cond_.parameters()) + list(self.generator_.parameters())
            opt_g = torch.optim.Adam(g_params, lr=self.lr, betas=(0.5, 0.999), foreach=True)
            opt_d = torch.optim.Adam(disc.parameters(), lr=self.lr, betas=(0.5, 0.999), foreach=True)
            g_modules = nn.ModuleDict({"cond": self.cond_, "generator": self.generator_})
            # An exponential moving average of the generator (Karras et al.; Yazıcı et al. 2019): a few hundred
            # adversarial steps leave the raw weights wherever the last oscillation put them.
            averaged = AveragedModel(g_modules, multi_avg_fn=get_ema_multi_avg_fn(self.ema), use_buffers=True) \
                if self.ema else None
            gen = torch.Generator().manual_seed(self.seed)
            self.history_: list[tuple[float, float]] = []
            selector = _ValidationSelector(self, val) if self.select == "val" and averaged is not None else None
            for step, idx in enumerate(self._batches(len(feats), gen), start=1):
                f, x = feats[idx].to(device), images[idx].to(device)
                z = torch.randn(len(idx), self.z_dim, generator=gen).to(device)
                fake = self.generator_(torch.cat([z, self.cond_(f)], 1))
                # Real and fake in one pass: per-step overhead, not arithmetic, dominates these tiny nets on a CPU.
                scores = disc(self._augment(torch.cat([x, fake.detach()]), gen), torch.cat([f, f]))
                loss_d = self._d_loss(*scores.chunk(2))
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                loss_g = self._g_loss(disc(self._augment(fake, gen), f))
                if self.l1_weight:
                    loss_g = loss_g + self.l1_weight * (fake - x).abs().mean()
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                if averaged is not None:
                    averaged.update_parameters(g_modules)
                self.history_.append((loss_d.item(), loss_g.item()))
                if selector is not None and (step % self.val_every == 0 or step == self.steps):
                    selector.score(step, averaged.module)
        final = averaged.module if averaged is not None else g_modules
        if selector is not None:
            final = selector.best(final)
        self.selected_step_ = selector.best_step if selector is not None else self.steps
        self.val_scores_ = dict(selector.scores) if selector is not None else {}
        self.cond_ = final["cond"].cpu().eval()
        self.generator_ = final["generator"].cpu().eval()
        return self

    @torch.no_grad()
    def reconstruct(self, test: EEGDataset) -> np.ndarray:
        feats = self._test_features(test)
        z = self._trial_noise(test, self.z_dim)
        return tensor_to_images(self.generator_(torch.cat([z, self.cond_(feats)], 1)), self.out_size_)


class _ValidationSelector:
    """Keeps the averaged generator's checkpoint that identifies the validation stimuli best (pixel 2-way).

    Needs validation trials of at least two distinct images; without them it keeps the last checkpoint.
    """

    def __init__(self, model: Brain2ImageGAN, val: EEGDataset | None):
        self.scores: dict[int, float] = {}
        self.best_step: int = model.steps
        self._state: dict[str, torch.Tensor] | None = None
        self._usable = val is not None and len(val) >= 2 and len(val.unique_image_ids()) >= 2
        if self._usable:
            self._feats = model._test_features(val)
            self._noise = model._trial_noise(val, model.z_dim)
            self._stimuli = images_to_tensor(val.load_images(size=model.image_size), model.size_).flatten(1)

    @torch.no_grad()
    def score(self, step: int, modules: nn.ModuleDict) -> None:
        if not self._usable:
            return
        from metrics.identification import nway_identification

        device = next(modules.parameters()).device
        was_training = modules.training
        modules.eval()
        cond = modules["cond"](self._feats.to(device))
        images = modules["generator"](torch.cat([self._noise.to(device), cond], 1)).flatten(1).cpu()
        modules.train(was_training)
        value = float(nway_identification(images, self._stimuli, n_way=None).mean())
        self.scores[step] = value
        # Ties go to the later step: at equal validation identification, the longer-trained generator.
        if self._state is None or value >= max(self.scores.values()):
            self.best_step = step
            self._state = {k: v.detach().clone() for k, v in modules.state_dict().items()}

    def best(self, modules: nn.ModuleDict) -> nn.ModuleDict:
        if self._state is not None:
            modules.load_state_dict(self._state)
        return modules
