"""Latency of every pipeline stage, every baseline's ``reconstruct`` and the metrics per 100 images.

CPU benchmarks use tiny configurations (a regression check that runs anywhere); ``@pytest.mark.gpu``
benchmarks use the full configuration — Stable Diffusion 1.5 architecture at 512², fp16 — built from
its published configuration with random weights (latency does not depend on the weight values, and no
download is needed). Imports stay inside each benchmark so a missing component fails only its own.
Only inference is timed; the ``fit`` calls that prepare a component use the fewest epochs possible.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# --- configurations -------------------------------------------------------------------------------------
TINY_UNET = dict(sample_size=8, block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=32,
                 norm_num_groups=8, attention_head_dim=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
TINY_VAE = dict(block_out_channels=(16, 32, 32), layers_per_block=1, latent_channels=4, norm_num_groups=8,
                sample_size=32, down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3)
# Stable Diffusion 1.5 (runwayml/stable-diffusion-v1-5 unet/ and vae/ config.json).
SD15_UNET = dict(sample_size=64, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
                 cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
SD15_VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, norm_num_groups=32,
                sample_size=512, down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
SD_SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                    set_alpha_to_one=False, steps_offset=1, num_train_timesteps=1000)
TEXT_TOKENS = 77

# Baselines and the tiny constructor arguments that keep their fit short; names registered later are
# picked up from the method registry and run with their defaults.
TINY_BASELINES: dict[str, dict] = {
    "floor-random": {},
    "floor-mean": {},
    "floor-class-mean": {},
    "retrieval-ridge": {},
    "latent-ridge": {},
    "brain2image-vae": {"steps": 2, "width": 8, "batch_size": 8},
    "brain2image-gan": {"steps": 2, "width": 8, "batch_size": 8},
    "dreamdiffusion": {},
}


def _registered_baselines() -> list[str]:
    names = dict.fromkeys(TINY_BASELINES)
    try:
        from eeg2img.methods import available_methods

        # NeuroImagen variants are the pipeline benchmarked stage by stage below.
        names.update(dict.fromkeys(m for m in available_methods() if not m.startswith("neuroimagen")))
    except Exception:  # noqa: BLE001 - a broken method package must not stop collection of the other benchmarks
        pass
    return list(names)


def pytest_generate_tests(metafunc):
    if "baseline" in metafunc.fixturenames:
        metafunc.parametrize("baseline", _registered_baselines())


# --- shared builders ----------------------------------------------------------------------------------------
def _torch_dtype(name: str):
    import torch

    return {"float16": torch.float16, "float32": torch.float32}[name]


def build_sd_components(unet_cfg: dict, vae_cfg: dict, device: str, dtype: str, seed: int = 0):
    """UNet2DConditionModel, AutoencoderKL and DDIMScheduler from configs, random weights, on ``device``."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    torch.manual_seed(seed)
    with torch.device(device):  # initialise in place: SD 1.5's 860M U-Net parameters are slow to build on CPU
        unet = UNet2DConditionModel(in_channels=4, out_channels=4, **unet_cfg)
        vae = AutoencoderKL(in_channels=3, out_channels=3, **vae_cfg)
    scheduler = DDIMScheduler(**SD_SCHEDULER)
    return unet.to(dtype=_torch_dtype(dtype)).eval(), vae.to(dtype=_torch_dtype(dtype)).eval(), scheduler


def save_sd_directory(path: Path, unet, vae, scheduler) -> Path:
    """A diffusers Stable-Diffusion directory (model_index.json, unet/, vae/, scheduler/) without text parts."""
    from diffusers import StableDiffusionImg2ImgPipeline

    pipe = StableDiffusionImg2ImgPipeline(vae=vae, unet=unet, scheduler=scheduler, text_encoder=None, tokenizer=None,
                                          safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(path)
    return path


def one_diffusion_step(unet, scheduler, batch: int, device: str, dtype: str, guidance: float = 7.5):
    """Closure: one classifier-free-guided U-Net evaluation (batch 2×) and the scheduler update."""
    import torch

    scheduler.set_timesteps(50)
    t = scheduler.timesteps[len(scheduler.timesteps) // 2]
    size = unet.config.sample_size
    gen = torch.Generator("cpu").manual_seed(0)
    latents = torch.randn(batch, 4, size, size, generator=gen).to(device, _torch_dtype(dtype))
    text = torch.randn(2 * batch, TEXT_TOKENS, unet.config.cross_attention_dim, generator=gen).to(
        device, _torch_dtype(dtype))

    @torch.inference_mode()
    def step():
        noise = unet(torch.cat([latents, latents]), t, encoder_hidden_states=text).sample
        uncond, cond = noise.chunk(2)
        return scheduler.step(uncond + guidance * (cond - uncond), t, latents).prev_sample

    return step


# --- pipeline stages, CPU (tiny) -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_encoder(tiny_data):
    from reconstruct.encoder import TripletEEGEncoder

    enc = TripletEEGEncoder(kind="lstm", embed_dim=16, hidden_size=32, epochs=1, batch_size=16, device="cpu")
    return enc.fit(tiny_data.train.eeg, tiny_data.train.labels)


def test_encoder_cpu(latency, tiny_data, tiny_encoder):
    eeg = tiny_data.test.eeg
    out = latency(lambda: tiny_encoder.encode(eeg), items=len(eeg), rounds=20)
    assert out.shape == (len(eeg), 16)


def test_saliency_gan_cpu(latency, tiny_data, tiny_encoder):
    from reconstruct.saliency_gan import SaliencyGAN

    feats_train = tiny_encoder.encode(tiny_data.train.eeg)
    gan = SaliencyGAN(image_size=32, z_dim=8, base_channels=8, epochs=1, batch_size=16, device="cpu")
    gan.fit(feats_train, tiny_data.train.load_images(size=tiny_data.image_size))
    feats = tiny_encoder.encode(tiny_data.test.eeg)
    out = latency(lambda: gan.generate(feats), items=len(feats), rounds=20)
    assert out.shape == (len(feats), 32, 32, 3) and out.dtype == np.uint8


def test_text_regressor_cpu(latency, tiny_data, tiny_encoder):
    from reconstruct.text_regressor import TextEmbeddingRegressor

    feats_train = tiny_encoder.encode(tiny_data.train.eeg)
    targets = np.random.default_rng(0).standard_normal((len(feats_train), 8, 32)).astype(np.float32)
    reg = TextEmbeddingRegressor(hidden=32, epochs=1, device="cpu").fit(feats_train, targets)
    feats = tiny_encoder.encode(tiny_data.test.eeg)
    out = latency(lambda: reg.predict(feats), items=len(feats), rounds=20)
    assert out.shape == (len(feats), 8, 32)


def test_diffusion_step_cpu(latency):
    unet, _, scheduler = build_sd_components(TINY_UNET, TINY_VAE, "cpu", "float32")
    step = one_diffusion_step(unet, scheduler, batch=1, device="cpu", dtype="float32")
    out = latency(step, items=1, rounds=20)
    assert out.shape == (1, 4, 8, 8)


@pytest.fixture(scope="module")
def tiny_sd_dir(tmp_path_factory):
    unet, vae, scheduler = build_sd_components(TINY_UNET, TINY_VAE, "cpu", "float32")
    return save_sd_directory(tmp_path_factory.mktemp("tiny-sd"), unet, vae, scheduler)


def test_full_image_cpu(latency, tiny_sd_dir):
    from reconstruct.diffusion import Img2ImgDiffusion

    steps, strength = 10, 0.6
    diff = Img2ImgDiffusion(tiny_sd_dir, steps=steps, strength=strength, guidance_scale=3.0, batch_size=1,
                            device="cpu", dtype="float32")
    length, dim = diff.embed_shape
    rng = np.random.default_rng(0)
    embeds = rng.standard_normal((1, length, dim)).astype(np.float32)
    init = rng.integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    out = latency(lambda: diff.generate(embeds, init_images=init, seeds=[0]), items=1, rounds=5, warmup_rounds=1)
    latency.benchmark.extra_info.update(steps_run=int(steps * strength), resolution=diff.image_size)
    assert out.shape[0] == 1 and out.dtype == np.uint8


# --- baselines, CPU (tiny) -------------------------------------------------------------------------------------
def test_baseline_reconstruct_cpu(latency, tiny_data, baseline):
    from eeg2img.methods import build_method

    method = build_method(baseline, seed=0, **TINY_BASELINES.get(baseline, {}))
    method.fit(tiny_data.train, None)
    test = tiny_data.test if method.is_oracle else tiny_data.test.blind()
    out = latency(lambda: method.reconstruct(test), items=len(test), rounds=10)
    assert out.dtype == np.uint8 and out.shape[0] == len(test) and out.shape[-1] == 3


# --- metrics per 100 images, CPU ------------------------------------------------------------------------------
def test_metrics_per_100_images_cpu(latency):
    """SSIM and PixCorr (MindEye, 425 px), backbone features, FID, KID and 2-way identification for 100 pairs."""
    from metrics import fid_from_features, kid_from_features, nway_identification
    from metrics.backbones.indomain import RandomProxy
    from metrics.pixcorr import pixcorr
    from metrics.ssim import ssim

    rng = np.random.default_rng(0)
    pred = rng.integers(0, 256, (100, 64, 64, 3), dtype=np.uint8)
    ref = rng.integers(0, 256, (100, 64, 64, 3), dtype=np.uint8)
    backbone = RandomProxy(n_classes=10, seed=0, device="cpu")

    def evaluate():
        out = {"ssim": ssim(pred, ref).mean(), "pixcorr": pixcorr(pred, ref).mean()}
        fp, fr = backbone.extract(pred)["features"], backbone.extract(ref)["features"]
        out["fid"] = fid_from_features(fp, fr, warn_small=False)
        out["kid"] = kid_from_features(fp, fr, subsets=10, subset_size=50)
        out["nway"] = nway_identification(fp, fr).mean()
        return out

    out = latency(evaluate, items=100, rounds=3, warmup_rounds=1)
    assert np.isfinite(out["ssim"]) and np.isfinite(out["fid"])


# --- full configurations, CUDA ---------------------------------------------------------------------------------
GPU_BATCH = int(os.environ.get("EEG2IMG_BENCH_GPU_BATCH", "64"))


@pytest.mark.gpu
def test_encoder_gpu(gpu_latency, tiny_data):
    from reconstruct.encoder import TripletEEGEncoder

    enc = TripletEEGEncoder(epochs=1, device="cuda").fit(tiny_data.train.eeg, tiny_data.train.labels)
    eeg = np.repeat(tiny_data.test.eeg, int(np.ceil(GPU_BATCH / len(tiny_data.test))), axis=0)[:GPU_BATCH]
    out = gpu_latency(lambda: enc.encode(eeg, batch_size=GPU_BATCH), items=len(eeg), rounds=50, warmup_rounds=5)
    assert out.shape[0] == len(eeg)


@pytest.mark.gpu
def test_saliency_gan_gpu(gpu_latency, tiny_data):
    from reconstruct.saliency_gan import SaliencyGAN

    rng = np.random.default_rng(0)
    feats_train = rng.standard_normal((len(tiny_data.train), 64)).astype(np.float32)
    gan = SaliencyGAN(epochs=1, device="cuda").fit(feats_train, tiny_data.train.load_images(size=tiny_data.image_size))
    feats = rng.standard_normal((GPU_BATCH, 64)).astype(np.float32)
    out = gpu_latency(lambda: gan.generate(feats), items=GPU_BATCH, rounds=50, warmup_rounds=5)
    assert out.shape[0] == GPU_BATCH


@pytest.mark.gpu
def test_text_regressor_gpu(gpu_latency):
    from reconstruct.text_regressor import TextEmbeddingRegressor

    rng = np.random.default_rng(0)
    feats_train = rng.standard_normal((256, 64)).astype(np.float32)
    targets = rng.standard_normal((256, TEXT_TOKENS, 768)).astype(np.float32)
    reg = TextEmbeddingRegressor(epochs=1, device="cuda").fit(feats_train, targets)
    feats = rng.standard_normal((GPU_BATCH, 64)).astype(np.float32)
    out = gpu_latency(lambda: reg.predict(feats), items=GPU_BATCH, rounds=50, warmup_rounds=5)
    assert out.shape == (GPU_BATCH, TEXT_TOKENS, 768)


@pytest.fixture(scope="module")
def sd15_components():
    return build_sd_components(SD15_UNET, SD15_VAE, "cuda", "float16")


@pytest.mark.gpu
def test_diffusion_step_gpu(gpu_latency, sd15_components):
    """One guided SD 1.5 U-Net step at 512² (64² latents), fp16, batch 1 (2× with guidance)."""
    unet, _, scheduler = sd15_components
    step = one_diffusion_step(unet, scheduler, batch=1, device="cuda", dtype="float16")
    out = gpu_latency(step, items=1, rounds=50, warmup_rounds=5, dtype="float16")
    # REFERENCE.md §4: plain PyTorch SD 1.5 on an H100 runs 54.5 it/s.
    gpu_latency.benchmark.extra_info["it_per_s"] = gpu_latency.benchmark.extra_info.get("images_per_s")
    assert out.shape == (1, 4, 64, 64)


@pytest.mark.gpu
def test_full_image_gpu(gpu_latency, sd15_components, tmp_path_factory):
    """One 512² image through the project's Img2ImgDiffusion: 50 steps at strength 1.0, fp16, guidance 7.5."""
    from reconstruct.diffusion import Img2ImgDiffusion

    sd_dir = save_sd_directory(tmp_path_factory.mktemp("sd15"), *sd15_components)
    steps = 50
    diff = Img2ImgDiffusion(sd_dir, steps=steps, strength=1.0, guidance_scale=7.5, batch_size=1, device="cuda",
                            dtype="float16")
    rng = np.random.default_rng(0)
    embeds = rng.standard_normal((1, TEXT_TOKENS, 768)).astype(np.float32)
    init = rng.integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    out = gpu_latency(lambda: diff.generate(embeds, init_images=init, seeds=[0]), items=1, rounds=5,
                      warmup_rounds=1, dtype="float16")
    gpu_latency.benchmark.extra_info.update(steps_run=steps, resolution=512)
    assert out.shape == (1, 512, 512, 3)


@pytest.mark.gpu
def test_full_image_diffusers_reference_gpu(gpu_latency, sd15_components):
    """The same image with diffusers' own pipeline: the wrapper's overhead is the difference to the above."""
    import torch
    from diffusers import StableDiffusionImg2ImgPipeline

    unet, vae, scheduler = sd15_components
    pipe = StableDiffusionImg2ImgPipeline(vae=vae, unet=unet, scheduler=scheduler, text_encoder=None, tokenizer=None,
                                          safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    embeds = torch.randn(1, TEXT_TOKENS, 768, device="cuda", dtype=torch.float16)
    init = torch.rand(1, 3, 512, 512, device="cuda", dtype=torch.float16)

    def run():
        return pipe(prompt_embeds=embeds, negative_prompt_embeds=torch.zeros_like(embeds), image=init, strength=1.0,
                    num_inference_steps=50, guidance_scale=7.5, output_type="np",
                    generator=torch.Generator("cuda").manual_seed(0)).images

    out = gpu_latency(run, items=1, rounds=5, warmup_rounds=1, dtype="float16")
    gpu_latency.benchmark.extra_info.update(steps_run=50, resolution=512)
    assert out.shape == (1, 512, 512, 3)
