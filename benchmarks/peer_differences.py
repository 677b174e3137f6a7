"""The suite's metric rules against the peers' code, measured on the same images.

``python -m benchmarks.peer_differences [--out DIR]`` builds a reproducible image set — the synthetic
dataset's stimuli at 512 px (``ensure_synthetic``: 20 classes × 4 images, seed 0) and imperfect
reconstructions of them (a seeded blur, colour shift, translation and noise; a third of them start from
another image of the same class, as a retrieval-like method's wrong guesses would) — and computes each
metric twice: with the suite's own functions (``metrics.pixcorr``, ``metrics.ssim``,
``metrics.image_ops``, ``metrics.accuracy``, ``metrics.nway``) and with a re-implementation of the peer's
rule written here from its documented behaviour. It prints a markdown table (difference, quantity, peer,
suite, Δ, N) and writes it to ``DIR/peer_differences.md`` (default ``DIR``: ``peer_differences_out``).

The peers' rules re-implemented here (each checked against its reference library in
``tests/test_peer_differences.py``):

- MindEye stores stimuli and reconstructions at 256 px and its metrics notebook resizes them to 425 px:
  :func:`peer_resize` to 256, then the suite's metric (which resizes to 425);
- MindEye's ``transforms.Resize(425)`` with an int keeps the aspect ratio (shorter side to 425):
  :func:`peer_resize_shorter` (= ``torchvision.transforms.Resize(425)``);
- torchvision ≤ 0.16 resized tensors without antialiasing: :func:`peer_resize` with
  ``antialias=False`` (= ``F.interpolate(..., antialias=False)``);
- mind-vis / DreamDiffusion ``ssim_metric``: skimage's ``structural_similarity(img1, img2, data_range=255,
  channel_axis=-1)`` on uint8 images, i.e. skimage's defaults — a uniform 7×7 window with the sample
  covariance — in colour: :func:`uniform_ssim`;
- mind-vis / DreamDiffusion ``n_way_top_k_acc``: softmax probabilities (float32), the target placed
  first among the drawn classes, torchmetrics' multiclass accuracy (top-1: ``argmax``, which returns the
  first maximum, so a tie goes to the target): :func:`peer_nway_top_k_acc` (the per-trial loop) and
  :func:`peer_nway_expectation` (its exact expectation over the draws, used in the table so that Δ is
  the tie rule alone and no sampling noise; the suite's side uses ``draws=None`` likewise);
- MindEye's Inception column: torchvision Inception-v3 at ``Resize(342, bilinear)`` + ImageNet
  normalisation (``transform_input=True`` makes that ``2x − 1``): :func:`peer_inception_tv_input`,
  against the suite's ``inception-tf`` input (clean-fid's PIL bicubic to 299, ``(x − 128)/128``);
- MindEye's CLIP: OpenAI ViT-L/14 on ``Resize(224, bilinear)`` tensors without a crop:
  :func:`peer_clip_input`, against open_clip's eval transform (PIL bicubic, centre crop), which the suite
  uses.

The two backbone rows compare the networks' *inputs* only: their effect on the metric needs the real
weights, which this script uses when given (``--inception-weights`` with ``--inception-tv-weights``;
``--clip-model`` with ``--clip-weights``). Numbers from random weights are not effect sizes.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

N_CLASSES, IMAGES_PER_CLASS, SIZE, SEED = 20, 4, 512, 0
N_WAY, TOP_K = 10, 1
CONFIDENT_SCALE = 20.0  # the synth-cnn logits × this: a classifier confident enough for float32 softmax to underflow
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
INCEPTION_COMMAND = ("eeg2img evaluate --pred RECON/ --ref STIMULI/ --metrics nway --backbone inception-tf,inception-tv "
                     "--inception-weights inception-2015-12-05.pt --inception-tv-weights inception_v3_google-0cc3c7bd.pth")
CLIP_COMMAND = ("python -m benchmarks.peer_differences --clip-model ViT-L-14-quickgelu --clip-weights ViT-L-14.pt "
                "(suite side alone: eeg2img evaluate --metrics nway --clip-model ViT-L-14-quickgelu "
                "--clip-weights ViT-L-14.pt)")


@dataclass
class Row:
    difference: str
    quantity: str
    peer: float | None
    suite: float | None
    delta: float
    n: int
    note: str = ""


# --- the image set ------------------------------------------------------------------------------------------
def build_image_set(data_dir: Path, n_classes: int = N_CLASSES, images_per_class: int = IMAGES_PER_CLASS,
                    size: int = SIZE, seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stimuli, reconstructions, labels): uint8 ``(N, size, size, 3)`` twice and the stimuli's classes."""
    from eeg2img.datasets import load_dataset
    from eeg2img.datasets.synthetic import ensure_synthetic

    path = ensure_synthetic(data_dir, progress=False, subjects=1, classes=n_classes,
                            images_per_class=images_per_class, seed=seed, image_size=size, n_channels=16,
                            n_samples=460)
    dataset = load_dataset(path)
    ids = dataset.unique_image_ids()
    first: dict[str, int] = {}
    for image_id, label in zip(dataset.image_ids, dataset.labels):
        first.setdefault(str(image_id), int(label))
    labels = np.array([first[i] for i in ids], dtype=np.int64)
    stimuli = dataset.load_images(ids)
    return stimuli, degrade(stimuli, labels, seed), labels


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).view(1, 1, 1, -1).repeat(x.shape[1], 1, 1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k, groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.transpose(2, 3), groups=x.shape[1])


def degrade(stimuli: np.ndarray, labels: np.ndarray, seed: int = SEED) -> np.ndarray:
    """Seeded imperfect reconstructions: a third from another image of the class; blur, colour, shift, noise."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(stimuli)
    size = stimuli.shape[1]
    for i in range(len(stimuli)):
        same = np.flatnonzero(labels == labels[i])
        source = i if rng.random() > 1 / 3 or len(same) < 2 else int(rng.choice(same[same != i]))
        x = torch.from_numpy(stimuli[source]).permute(2, 0, 1)[None].float() / 255
        x = _gaussian_blur(x, rng.uniform(1.0, 6.0) * size / 512)
        gain = torch.from_numpy(rng.uniform(0.8, 1.2, 3)).float().view(1, 3, 1, 1)
        offset = torch.from_numpy(rng.uniform(-0.08, 0.08, 3)).float().view(1, 3, 1, 1)
        x = x * gain + offset
        dy, dx = (int(v) for v in rng.integers(-size // 32, size // 32 + 1, 2))
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
        x = x + torch.from_numpy(rng.normal(0, rng.uniform(0.02, 0.10), x.shape).astype(np.float32))
        out[i] = (x.clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return out


def to_float(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` → float32 ``(N, 3, H, W)`` in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255


# --- the peers' rules -----------------------------------------------------------------------------------------
def peer_resize(x: torch.Tensor, size: int, antialias: bool = True) -> torch.Tensor:
    """torchvision's tensor ``Resize((size, size))``: bilinear, ``align_corners=False``; ≤ 0.16 had no antialias."""
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias).clamp(0, 1)


def peer_resize_shorter(x: torch.Tensor, size: int, antialias: bool = True) -> torch.Tensor:
    """torchvision's ``Resize(size)`` with an int: the shorter side to ``size``, the aspect ratio kept."""
    h, w = x.shape[-2:]
    short, long = min(h, w), max(h, w)
    new_long = int(size * long / short)
    out = (size, new_long) if h <= w else (new_long, size)
    return F.interpolate(x, size=out, mode="bilinear", align_corners=False, antialias=antialias).clamp(0, 1)


def _box_valid(t: torch.Tensor, win: int) -> torch.Tensor:
    """Mean over every ``win × win`` window that fits (a 'valid' uniform filter), by cumulative sums."""
    for dim in (-1, -2):
        c = F.pad(t.cumsum(dim), (1, 0) if dim == -1 else (0, 0, 1, 0))
        n = c.shape[dim]
        t = c.narrow(dim, win, n - win) - c.narrow(dim, 0, n - win)
    return t / (win * win)


def uniform_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float, win_size: int = 7,
                 k1: float = 0.01, k2: float = 0.03, batch_size: int = 8) -> np.ndarray:
    """skimage ``structural_similarity`` with its defaults (uniform window, sample covariance), per sample.

    ``(N, C, H, W)`` batches in the units of ``data_range``; the per-channel means are averaged as
    ``channel_axis`` does. Computed in float64 over the valid windows (skimage filters with reflection,
    then crops ``(win_size − 1) // 2`` pixels: only whole windows count).
    """
    cov_norm = win_size ** 2 / (win_size ** 2 - 1)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    out = []
    for a, b in zip(x.double().split(batch_size), y.double().split(batch_size)):
        ux, uy, uxx, uyy, uxy = (_box_valid(t, win_size) for t in (a, b, a * a, b * b, a * b))
        vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        out.append(s.mean(dim=(-1, -2)).mean(dim=1))
    return torch.cat(out).numpy()


def peer_softmax(logits: np.ndarray) -> np.ndarray:
    """The peers' scores: ``model(x).softmax(0)`` in the model's float32."""
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float32), dim=-1).numpy()


def peer_nway_top_k_acc(probs: np.ndarray, class_id: int, n_way: int, num_trials: int, top_k: int,
                        rng: np.random.Generator) -> float:
    """One sample's success rate under the peers' loop: target first, then ``n_way − 1`` drawn classes.

    torchmetrics ranks the ``n_way`` scores; for top-1 it takes ``argmax``, whose first maximum is the
    target whenever the target ties — ties go to the target. For top-k a stable descending order keeps
    that rule.
    """
    pick_range = [i for i in range(len(probs)) if i != class_id]
    hits = []
    for _ in range(num_trials):
        sampled = rng.choice(pick_range, n_way - 1, replace=False)
        picked = np.concatenate([[probs[class_id]], probs[sampled]])
        order = np.argsort(-picked, kind="stable")[:top_k]
        hits.append(float(0 in order))
    return float(np.mean(hits))


def peer_nway_expectation(probs: np.ndarray, target: np.ndarray, n_way: int, top_k: int) -> np.ndarray:
    """Exact expectation of :func:`peer_nway_top_k_acc` over the draws: only a strictly higher score beats the target."""
    from scipy.stats import hypergeom

    rows = np.arange(len(probs))
    above = (probs > probs[rows, target][:, None]).sum(axis=1)
    return hypergeom.cdf(top_k - 1, probs.shape[1] - 1, above, n_way - 1).astype(np.float64)


def peer_inception_tv_input(images: np.ndarray) -> torch.Tensor:
    """MindEye's Inception input: [0, 1] → Resize(342, bilinear) → ImageNet normalise → ``transform_input``."""
    mean = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
    x = (F.interpolate(to_float(images), size=(342, 342), mode="bilinear", align_corners=False, antialias=True)
         - mean) / std
    # torchvision's Inception3._transform_input (transform_input=True, what its IMAGENET1K_V1 weights use)
    return torch.cat([x[:, c:c + 1] * (std[0, c] / 0.5) + (mean[0, c] - 0.5) / 0.5 for c in range(3)], dim=1)


def peer_clip_input(images: np.ndarray) -> torch.Tensor:
    """MindEye's CLIP input: [0, 1] tensors → Resize(224, bilinear) (square images: no crop) → CLIP normalise."""
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    x = F.interpolate(to_float(images), size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
    return (x - mean) / std


def suite_clip_input(images: np.ndarray, preprocess=None) -> torch.Tensor:
    """The suite's CLIP input: the model's open_clip eval transform (ViT-L/14: PIL bicubic 224, centre crop)."""
    import open_clip
    from PIL import Image

    preprocess = preprocess or open_clip.image_transform(224, is_train=False, mean=CLIP_MEAN, std=CLIP_STD)
    return torch.stack([preprocess(Image.fromarray(img)) for img in images])


def suite_inception_tf_input(images: np.ndarray) -> torch.Tensor:
    """The suite's ``inception-tf`` input (clean policy): PIL bicubic to 299 in float, then ``(x − 128)/128``."""
    from metrics.backbones.resize import resize_batch

    return (resize_batch(images, "clean", 299) - 128) / 128


# --- the measurements ------------------------------------------------------------------------------------------
def _row(difference: str, quantity: str, peer: np.ndarray, suite: np.ndarray, note: str = "") -> Row:
    peer, suite = np.asarray(peer, dtype=np.float64), np.asarray(suite, dtype=np.float64)
    return Row(difference, quantity, float(peer.mean()), float(suite.mean()), float(peer.mean() - suite.mean()),
               len(suite), note)


def _input_row(difference: str, peer: torch.Tensor, suite: torch.Tensor, note: str) -> Row:
    a, b = peer.double().flatten(1), suite.double().flatten(1)
    a_c, b_c = a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True)
    r = (a_c * b_c).sum(dim=1) / (a_c.norm(dim=1) * b_c.norm(dim=1))
    mad = float((a - b).abs().mean())
    return Row(difference, "network input: mean |peer − suite| (input units)", None, None, mad, len(a),
               f"per-image r = {float(r.mean()):.4f} (min {float(r.min()):.4f}); {note}")


def measure(stimuli: np.ndarray, recons: np.ndarray, labels: np.ndarray, cache_dir: Path | None = None,
            inception_weights: Path | None = None, inception_tv_weights: Path | None = None,
            clip_model: str | None = None, clip_weights: Path | None = None, cnn_config=None) -> list[Row]:
    """Every row of the table for these (stimulus, reconstruction) pairs (uint8, same size, square).

    ``cnn_config``: the :class:`SynthCNNConfig` of the classifier behind the tie-rule rows (default: the suite's).
    """
    from metrics.accuracy import nway_topk_accuracy
    from metrics.backbones.indomain import InDomainCNN, SynthCNNConfig
    from metrics.image_ops import rgb_to_gray
    from metrics.pixcorr import pixcorr
    from metrics.ssim import ssim

    n, size = len(stimuli), stimuli.shape[1]
    rows: list[Row] = []
    pixcorr_suite, ssim_suite = pixcorr(recons, stimuli), ssim(recons, stimuli)
    pred, ref = to_float(recons), to_float(stimuli)

    # MindEye stores both image sets at 256 px; its metrics notebook resizes them to 425.
    p256, r256 = peer_resize(pred, 256), peer_resize(ref, 256)
    note = f"{size} px → 256 → 425 vs {size} → 425 (antialiased bilinear both)"
    rows.append(_row("MindEye: images stored at 256 px, then resized to 425", "PixCorr",
                     pixcorr(p256, r256), pixcorr_suite, note))
    rows.append(_row("MindEye: images stored at 256 px, then resized to 425", "SSIM (425 px, grey)",
                     ssim(p256, r256), ssim_suite, note))

    # Non-square images (4:3, as most ImageNet stimuli of EEG-CVPR40): Resize(425) keeps the aspect ratio.
    top = size // 8
    pred43, ref43 = pred[:, :, top:size - top], ref[:, :, top:size - top]
    p_keep, r_keep = peer_resize_shorter(pred43, 425), peer_resize_shorter(ref43, 425)
    h, w = pred43.shape[-2:]
    note = f"{w}×{h} crops of the same pairs: {p_keep.shape[-1]}×{p_keep.shape[-2]} vs the suite's 425×425"
    rows.append(_row("MindEye: Resize(425) keeps the aspect ratio (non-square images)", "PixCorr",
                     pixcorr(p_keep, r_keep, size=None), pixcorr(pred43, ref43), note))
    rows.append(_row("MindEye: Resize(425) keeps the aspect ratio (non-square images)", "SSIM (425 px, grey)",
                     ssim(p_keep, r_keep, size=None), ssim(pred43, ref43), note))

    # torchvision ≤ 0.16: tensor Resize without antialiasing (the default then).
    p_alias, r_alias = peer_resize(pred, 425, antialias=False), peer_resize(ref, 425, antialias=False)
    note = f"{size} → 425 px, bilinear, antialias=False vs True"
    rows.append(_row("torchvision ≤ 0.16: tensor resize without antialias", "PixCorr",
                     pixcorr(p_alias, r_alias, size=None), pixcorr_suite, note))
    rows.append(_row("torchvision ≤ 0.16: tensor resize without antialias", "SSIM (425 px, grey)",
                     ssim(p_alias, r_alias, size=None), ssim_suite, note))

    # DreamDiffusion / mind-vis SSIM: skimage defaults (uniform 7×7 window, sample covariance).
    g_pred, g_ref = (rgb_to_gray(peer_resize(t, 425)) for t in (pred, ref))
    rows.append(_row("DreamDiffusion / mind-vis SSIM: uniform 7×7 window", "SSIM (425 px, grey)",
                     uniform_ssim(g_pred, g_ref, data_range=1.0), ssim_suite,
                     "window only: the suite's grey 425-px images, uniform 7×7 + sample covariance vs Gaussian σ=1.5"))
    u_pred, u_ref = (torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).double() for a in (recons, stimuli))
    rows.append(_row("DreamDiffusion / mind-vis SSIM: their ssim_metric in full", "SSIM",
                     uniform_ssim(u_pred, u_ref, data_range=255.0), ssim_suite,
                     f"uint8 RGB at {size} px, uniform 7×7, data_range=255, mean over channels vs the suite's protocol"))

    # The tie rule of the N-way top-k accuracy, on a classifier trained on these stimuli (synth-cnn).
    cnn = InDomainCNN.train(stimuli, labels, [f"class{i}" for i in range(labels.max() + 1)],
                            cnn_config or SynthCNNConfig(), cache_dir=cache_dir)
    logits_pred = cnn.extract(recons)["logits"]
    target = cnn.extract(stimuli)["logits"].argmax(axis=1)
    for scale, label in ((1.0, "synth-cnn logits"), (CONFIDENT_SCALE, f"synth-cnn logits × {CONFIDENT_SCALE:g}")):
        logits = logits_pred * scale
        probs = peer_softmax(logits)
        ties = int((probs == probs[np.arange(n), target][:, None]).sum() - n)
        rows.append(_row("DreamDiffusion / mind-vis: n-way accuracy tie rule (ties to the target)",
                         f"{N_WAY}-way top-{TOP_K} accuracy, {label}",
                         peer_nway_expectation(probs, target, N_WAY, TOP_K),
                         nway_topk_accuracy(logits, target, n_way=N_WAY, top_k=TOP_K, draws=None),
                         f"{ties} of {n * (probs.shape[1] - 1)} (sample, class) scores tie the target's in float32 "
                         "softmax; exact expectations over the draws (draws=None), so Δ is the tie rule alone"))

    # Backbone preprocessing, on pixels only (the metric needs the real weights).
    peer_inc = F.interpolate(peer_inception_tv_input(recons), size=(299, 299), mode="bilinear", align_corners=False,
                             antialias=True)
    rows.append(_input_row("MindEye's Inception: torchvision Inception-v3 at 342 px (inception-tv) vs inception-tf",
                           peer_inc, suite_inception_tf_input(recons),
                           "342-px input brought to 299 (antialiased) to compare; the networks' weights differ too — "
                           f"effect on the metric needs the real weights: {INCEPTION_COMMAND}"))
    rows.append(_input_row("MindEye's CLIP: ViT-L/14 on Resize(224, bilinear), no crop vs open_clip's eval transform",
                           peer_clip_input(recons), suite_clip_input(recons),
                           "square images, so the centre crop removes nothing here; "
                           f"effect on the metric needs the real weights: {CLIP_COMMAND}"))

    if inception_weights is not None and inception_tv_weights is not None:
        rows.append(_weights_row_inception(recons, stimuli, inception_weights, inception_tv_weights))
    if clip_model is not None and clip_weights is not None:
        rows.append(_weights_row_clip(recons, stimuli, clip_model, clip_weights))
    return rows


def _weights_row_inception(recons, stimuli, weights_tf: Path, weights_tv: Path) -> Row:
    """Identification on the real networks (only with the official weights files given)."""
    from metrics.backbones import build_backbone
    from metrics.identification import nway_identification

    tf = build_backbone("inception-tf", weights=str(weights_tf))
    tv = build_backbone("inception-tv", weights=str(weights_tv))
    peer = nway_identification(tv.extract(recons)["avgpool"], tv.extract(stimuli)["avgpool"])
    suite = nway_identification(tf.extract(recons)["pool3"], tf.extract(stimuli)["pool3"])
    return _row("MindEye's Inception (inception-tv) vs inception-tf, real weights", "2-way identification",
                peer, suite, f"weights {Path(weights_tv).name} vs {Path(weights_tf).name}")


def _weights_row_clip(recons, stimuli, model: str, weights: Path) -> Row:
    """CLIP identification with the peer's input and with the suite's, on the same real network."""
    from metrics.backbones import build_backbone
    from metrics.identification import nway_identification

    clip = build_backbone("clip", model=model, weights=str(weights))

    @torch.inference_mode()
    def peer_embed(images):
        return torch.cat([clip.model.encode_image(peer_clip_input(images[i:i + 32]).to(clip.device)).float().cpu()
                          for i in range(0, len(images), 32)]).double().numpy()

    peer = nway_identification(peer_embed(recons), peer_embed(stimuli))
    suite = nway_identification(clip.extract(recons)["image"], clip.extract(stimuli)["image"])
    return _row(f"MindEye's CLIP preprocessing vs open_clip's, {clip.name}, real weights", "2-way identification",
                peer, suite, f"weights {Path(weights).name}")


# --- output --------------------------------------------------------------------------------------------------------
def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.4f}"


def markdown_table(rows: list[Row]) -> str:
    lines = ["| difference | quantity | peer's rule | suite | Δ (peer − suite) | N | how |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        delta = f"{r.delta:+.4f}" if r.peer is not None else f"{r.delta:.4f}"
        lines.append(f"| {r.difference} | {r.quantity} | {_fmt(r.peer)} | {_fmt(r.suite)} | {delta} | {r.n} | {r.note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.peer_differences", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("peer_differences_out"), help="folder for the data and the table")
    p.add_argument("--inception-weights", type=Path, help="inception-2015-12-05.pt (with --inception-tv-weights)")
    p.add_argument("--inception-tv-weights", type=Path, help="inception_v3_google-0cc3c7bd.pth")
    p.add_argument("--clip-model", help="open_clip model name, e.g. ViT-L-14-quickgelu (with --clip-weights)")
    p.add_argument("--clip-weights", type=Path, help="the open_clip checkpoint for --clip-model")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    stimuli, recons, labels = build_image_set(args.out / "data")
    rows = measure(stimuli, recons, labels, cache_dir=args.out / "cache",
                   inception_weights=args.inception_weights, inception_tv_weights=args.inception_tv_weights,
                   clip_model=args.clip_model, clip_weights=args.clip_weights)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    header = (f"{len(stimuli)} pairs: synthetic stimuli ({N_CLASSES} classes × {IMAGES_PER_CLASS}, {SIZE} px, "
              f"seed {SEED}) and seeded degraded reconstructions; torch {torch.__version__}; "
              f"{time.perf_counter() - start:.1f} s; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    text = f"{header}\n\n{markdown_table(rows)}\n"
    (args.out / "peer_differences.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
