"""Conditioning the shared diffusion model on something other than a caption, tuned with its own loss.

Two methods put their own input into the U-Net's cross-attention in place of the caption's prompt embedding:
``dreamdiffusion`` (EEG features) and the zero-shot track's embedding decoder (an image embedding,
:mod:`baselines.embedding_decoder`). Both map the input through a :class:`TokenMLP` to a token sequence of
the prompt embedding's shape and train it — with the U-Net's cross-attention projections, on a copy of the
shared model — on Stable Diffusion's noise-prediction loss over the training stimuli (:func:`tune_tokens`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from eeg2img.devices import optimizer_options

TUNE_CHOICES = ("cross-attention", "none", "all")


class TokenMLP(nn.Module):
    """Features ``(B, F)`` → cross-attention tokens ``(B, L, D)``."""

    def __init__(self, n_features: int, seq_len: int, dim: int, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.seq_len, self.dim = seq_len, dim
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, seq_len * dim))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f).view(len(f), self.seq_len, self.dim)

    def start_at(self, tokens: torch.Tensor) -> TokenMLP:
        """Output ``tokens`` (L, D) for every input at first: the U-Net sees a familiar condition from step one."""
        with torch.no_grad():
            self.net[-1].bias.copy_(tokens.flatten())
        return self


def tuned_parameter_names(unet: nn.Module, tune: str) -> set[str]:
    """The U-Net parameters ``tune`` names: its cross-attention ("attn2", diffusers' name), all, or none."""
    if tune == "none":
        return set()
    return {n for n, _ in unet.named_parameters() if tune == "all" or ".attn2." in n}


def trainable_unet_params(unet: nn.Module, tune: str) -> list[nn.Parameter]:
    """Freeze ``unet`` except the parameters ``tune`` names (:func:`tuned_parameter_names`)."""
    unet.requires_grad_(False)
    names = tuned_parameter_names(unet, tune)
    params = [p for n, p in unet.named_parameters() if n in names]
    for p in params:
        p.requires_grad_(True)
    return params


def tune_tokens(stage, tokenizer: TokenMLP, inputs: torch.Tensor, latents: torch.Tensor, *, steps: int,
                batch_size: int, lr: float, unet_lr: float, tune: str, uncond_prob: float, seed: int,
                align: torch.Tensor | None = None, align_weight: float = 0.0, desc: str = "tuning"):
    """Train ``tokenizer`` (and the tuned part of a copy of ``stage``'s U-Net) on the noise-prediction loss.

    Row ``i`` pairs ``inputs[i]`` with the scaled VAE latent ``latents[i]`` of its stimulus; with probability
    ``uncond_prob`` a row is trained with the empty caption's embedding, so the tuned U-Net keeps the
    unconditional prediction classifier-free guidance needs. ``align`` (``(N, L, D)``, optional) pulls the
    tokens towards a target with weight ``align_weight``. Batches are drawn from a generator seeded with
    ``seed``; the tokenizer's dropout uses torch's global RNG, which the caller seeds. Returns the tuned U-Net
    copy (eval mode, frozen, in the shared model's dtype) and the loss per step.
    """
    from diffusers import DDPMScheduler

    device = stage.device
    uncond = torch.from_numpy(stage.unconditional())
    noise_sched = DDPMScheduler.from_config(stage.scheduler_config)
    t_max = int(noise_sched.config.num_train_timesteps)
    unet = copy.deepcopy(stage.unet).to(device)
    shared_dtype = unet.dtype
    if shared_dtype != torch.float32:  # fp16 inference weights are tuned in fp32
        unet = unet.float()
    tokenizer.to(device).train()
    unet.train()
    groups = [{"params": tokenizer.parameters(), "lr": lr}]
    unet_params = trainable_unet_params(unet, tune)
    if unet_params:
        groups.append({"params": unet_params, "lr": unet_lr})
    opt = torch.optim.AdamW(groups, weight_decay=1e-4, **optimizer_options(device))
    gen = torch.Generator().manual_seed(seed)
    bs = min(batch_size, len(inputs))
    history: list[float] = []
    for _ in tqdm(range(steps), desc=desc, disable=None, leave=False):
        idx = torch.randint(0, len(inputs), (bs,), generator=gen)
        z = latents[idx]
        noise = torch.randn(z.shape, generator=gen)
        t = torch.randint(0, t_max, (bs,), generator=gen)
        noisy = noise_sched.add_noise(z, noise, t)
        tokens = tokenizer(inputs[idx].to(device))
        drop = (torch.rand(bs, generator=gen) < uncond_prob).to(device)
        cond = torch.where(drop[:, None, None], uncond.to(device).expand_as(tokens), tokens)
        pred = unet(noisy.to(device), t.to(device), encoder_hidden_states=cond).sample
        loss = F.mse_loss(pred, noise.to(device))
        if align is not None and align_weight:
            loss = loss + align_weight * F.mse_loss(tokens, align[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(loss.item())
    tokenizer.eval()
    unet.requires_grad_(False).eval()
    return (unet if shared_dtype == torch.float32 else unet.to(shared_dtype)), history
