"""Images from an image embedding: how the zero-shot track's methods reconstruct through what they predict.

ATM, UBP and CognitionCapturer turn the CLIP embedding predicted from EEG into an image with a generator
conditioned on image embeddings (IP-Adapter on SDXL). At demo scale the generator is the shared demo
diffusion model (NeuroImagen's stage: the tiny SD trained on the fold's training stimuli and captions),
and the conditioning is a :class:`~baselines.conditioning.TokenMLP` from the space's embedding to
cross-attention tokens, tuned as ``dreamdiffusion`` tunes its EEG tokens (noise-prediction loss, the
U-Net's cross-attention, tokens pulled towards the stimulus's label-caption embedding) — on the training
stimuli and *their own* embeddings, never on EEG. So the decoder depends on the fold's training stimuli,
the space's network and its settings, not on the method: every embedding method of a fold decodes through
the same one (trained once, cached like the other stages), and their images differ only by the embeddings
they predict. ``oracle-embedding`` (the true embedding) shows what the decoder itself can do.

Embeddings enter L2-normalised: retrieval ranks by cosine, and a contrastive encoder's output has no scale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from baselines._common import unit_rows
from baselines.conditioning import TUNE_CHOICES, TokenMLP, tune_tokens, tuned_parameter_names
from eeg2img.errors import UserError
from eeg2img.params import check_choice, check_float, check_int
from eeg2img.seeding import torch_seeded

DECODE_CHOICES = ("diffusion", "nearest")


@dataclass(frozen=True)
class DecoderSettings:
    """``decode``: "diffusion" (through the embedding decoder) or "nearest" (the training stimulus nearest to
    the predicted embedding); the ``decoder_*`` fields set the decoder's tuning."""

    decode: str = "diffusion"
    decoder_steps: int = 400
    decoder_batch_size: int = 16
    decoder_hidden: int = 256
    decoder_lr: float = 1e-3
    decoder_unet_lr: float = 1e-4
    decoder_tune: str = "cross-attention"
    decoder_uncond_prob: float = 0.1
    decoder_align_weight: float = 1.0

    def check(self, owner: str) -> DecoderSettings:
        check_choice(owner, "decode", self.decode, DECODE_CHOICES)
        check_int(owner, "decoder_steps", self.decoder_steps, minimum=0)
        check_int(owner, "decoder_batch_size", self.decoder_batch_size)
        check_int(owner, "decoder_hidden", self.decoder_hidden)
        check_float(owner, "decoder_lr", self.decoder_lr)
        check_float(owner, "decoder_unet_lr", self.decoder_unet_lr)
        check_choice(owner, "decoder_tune", self.decoder_tune, TUNE_CHOICES)
        check_float(owner, "decoder_uncond_prob", self.decoder_uncond_prob, low=0.0, high=1.0, low_open=False)
        check_float(owner, "decoder_align_weight", self.decoder_align_weight, low=0.0, low_open=False)
        return self


# ``eeg2img demo --track things --quick``
QUICK_DECODER = {"decoder_steps": 150}


class EmbeddingDecoder:
    """The tuned token MLP and the tuned part of the U-Net; ``tokens`` and ``unet_for`` decode with them."""

    what = "embedding decoder"

    def __init__(self, tokenizer: TokenMLP, unet_state: dict[str, torch.Tensor], history: list[float], meta: dict):
        self.tokenizer = tokenizer.eval()
        self.unet_state = unet_state
        self.history = history
        self.meta = meta

    @classmethod
    def train(cls, stage, images: np.ndarray, embeddings: np.ndarray, captions: list[str],
              settings: DecoderSettings, seed: int) -> EmbeddingDecoder:
        """Tune on ``images`` (uint8, one per training stimulus), their ``embeddings`` and label ``captions``."""
        latents = torch.from_numpy(stage.encode_latents(images))
        inputs = torch.from_numpy(unit_rows(embeddings, np.float32))
        align = stage.embed(captions)
        meta = {"n_features": int(inputs.shape[1]), "seq_len": int(align.shape[1]), "dim": int(align.shape[2]),
                "settings": asdict(settings), "seed": int(seed), "n_images": len(images)}
        with torch_seeded(seed):
            tokenizer = TokenMLP(meta["n_features"], meta["seq_len"], meta["dim"], settings.decoder_hidden)
            tokenizer.start_at(torch.from_numpy(align.mean(0)))
            unet, history = tune_tokens(
                stage, tokenizer, inputs, latents, steps=settings.decoder_steps,
                batch_size=settings.decoder_batch_size, lr=settings.decoder_lr, unet_lr=settings.decoder_unet_lr,
                tune=settings.decoder_tune, uncond_prob=settings.decoder_uncond_prob, seed=seed,
                align=torch.from_numpy(align), align_weight=settings.decoder_align_weight, desc="embedding decoder")
        tuned = tuned_parameter_names(unet, settings.decoder_tune)
        unet_state = {n: t.detach().float().cpu().clone() for n, t in unet.state_dict().items() if n in tuned}
        return cls(tokenizer.cpu(), unet_state, history, meta)

    @torch.no_grad()
    def tokens(self, embeddings: np.ndarray) -> np.ndarray:
        """Cross-attention tokens ``(N, L, D)`` for embeddings ``(N, D)`` of the decoder's space."""
        emb = np.asarray(embeddings)
        if emb.ndim != 2 or emb.shape[1] != self.meta["n_features"]:
            raise UserError(f"{self.what}: embeddings of shape {emb.shape}; it decodes (N, {self.meta['n_features']}) "
                            "embeddings of the space it was tuned in")
        return self.tokenizer(torch.from_numpy(unit_rows(emb, np.float32))).numpy()

    def unet_for(self, stage):
        """A copy of ``stage``'s U-Net with the tuned parameters in place (the shared U-Net is left alone)."""
        import copy

        unet = copy.deepcopy(stage.unet)
        missing = set(self.unet_state) - set(unet.state_dict())
        if missing:
            raise UserError(f"{self.what}: tuned for another U-Net ({sorted(missing)[0]} not found); delete the "
                            "cache entry to retune it")
        unet.load_state_dict(self.unet_state, strict=False)
        return unet.requires_grad_(False).eval()

    # --- the stage cache's save / load -----------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        from reconstruct.stages import save_stage

        state = {f"tokenizer.{k}": v for k, v in self.tokenizer.state_dict().items()}
        state.update({f"unet.{k}": v for k, v in self.unet_state.items()})
        return save_stage(directory, state, {**self.meta, "history": self.history})

    @classmethod
    def load(cls, directory: str | Path) -> EmbeddingDecoder:
        from reconstruct.stages import load_stage

        state, meta = load_stage(directory, cls.what)
        try:
            with torch.random.fork_rng(devices=[]):  # initial weights, replaced below: keep the caller's RNG
                tokenizer = TokenMLP(meta["n_features"], meta["seq_len"], meta["dim"], meta["settings"]["decoder_hidden"])
            tokenizer.load_state_dict({k[len("tokenizer."):]: v for k, v in state.items() if k.startswith("tokenizer.")})
        except (KeyError, TypeError, RuntimeError) as err:
            raise UserError(f"{directory}: {cls.what} files do not match ({str(err)[:80]}); delete the entry to "
                            "retune it") from None
        unet_state = {k[len("unet."):]: v for k, v in state.items() if k.startswith("unet.")}
        return cls(tokenizer, unet_state, list(meta.get("history", [])), meta)


def cached_decoder(stage, cache, images: np.ndarray, embeddings: np.ndarray, captions: list[str],
                   space_sha256: str, settings: DecoderSettings, seed: int) -> EmbeddingDecoder:
    """The decoder for these training stimuli in this space, from ``cache`` (a StageCache) or tuned now."""
    from reconstruct.stages import stage_key
    from reconstruct.tiny_sd import INFO_FILE

    # A demo model's folder is named by its content key; a Stable Diffusion folder of the user's by its path.
    source = Path(stage.source)
    source_id = source.name if (source / INFO_FILE).is_file() else str(source.resolve())
    key = stage_key("embedding-decoder", source_id, space_sha256, np.asarray(images), list(captions),
                      asdict(settings), int(seed))[:24]
    return cache.get(key, "embedding-decoder", EmbeddingDecoder.load,
                     lambda: EmbeddingDecoder.train(stage, images, embeddings, captions, settings, seed))
