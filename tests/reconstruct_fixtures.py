"""Builders shared by the NeuroImagen tests: a random tiny SD 1.x directory in the real on-disk format; and how
the diffusion baselines' tests read what a method learnt in caption-embedding space."""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import torch

TINY_MAX_LENGTH = 8
TINY_TEXT_DIM = 16


def write_clip_tokenizer_files(directory: Path) -> None:
    """A CLIP tokenizer's ``vocab.json`` + ``merges.txt`` (the files a real SD download holds)."""
    letters = list(string.ascii_lowercase)
    vocab_list = letters + [c + "</w>" for c in letters]
    merges = [("a", "n</w>"), ("o", "f</w>"), ("i", "m"), ("im", "a"), ("ima", "g"), ("imag", "e</w>")]
    vocab_list += ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab_list)}))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    (directory / "tokenizer_config.json").write_text(json.dumps({"model_max_length": TINY_MAX_LENGTH}))


def write_random_sd_directory(root: Path, image_size: int = 16, seed: int = 0) -> Path:
    """Random tiny VAE/U-Net/CLIP text encoder + tokenizer, saved with ``save_pretrained`` like SD 1.x."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                        latent_channels=4, norm_num_groups=8, sample_size=image_size)
    unet = UNet2DConditionModel(sample_size=image_size // 2, in_channels=4, out_channels=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), block_out_channels=(16, 32),
                                layers_per_block=1, cross_attention_dim=TINY_TEXT_DIM, attention_head_dim=8,
                                norm_num_groups=8)
    tok_dir = root / "_tokenizer_src"
    write_clip_tokenizer_files(tok_dir)
    tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir))
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TINY_TEXT_DIM, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=TINY_MAX_LENGTH, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                              steps_offset=1, set_alpha_to_one=False)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    out = root / "sd"
    pipe.save_pretrained(out)
    return out


def nearest_caption_accuracy(pred: np.ndarray, caption_embeds: np.ndarray, target: np.ndarray) -> float:
    """Fraction of predicted embeddings (or token sequences) whose most similar (cosine) caption embedding is
    the target's."""
    a = pred.reshape(len(pred), -1)
    b = caption_embeds.reshape(len(caption_embeds), -1)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.mean(np.argmax(a @ b.T, axis=1) == target))
