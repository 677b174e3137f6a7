"""Image preprocessing shared by the pixel-level metrics (SSIM, PixCorr): layout, range, resize, grey.

Images arrive as the benchmark stores them — uint8 ``(N, H, W, 3)`` — or as floats in [0, 1], either
``(N, H, W, C)`` or ``(N, C, H, W)``. The resize is MindEye's ``transforms.Resize(425, BILINEAR)``
applied to float tensors, which in torchvision ≥0.17 is ``F.interpolate(mode="bilinear",
antialias=True, align_corners=False)``; it is done to a square ``size × size`` so that a square
reconstruction and a non-square stimulus land on the same grid (MindEye's NSD stimuli are square, so
there it is the same operation).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from eeg2img.errors import UserError

# skimage.color.rgb2gray (ITU-R BT.709 luma), the grey conversion MindEye and brain-diffuser use.
RGB2GRAY_WEIGHTS = (0.2125, 0.7154, 0.0721)


def as_image_batch(images: Any, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(N, C, H, W)`` float tensor in [0, 1] from uint8 or [0, 1] float images, NHWC or NCHW, C in {1, 3}.

    The layout is never guessed from the image size (a 1×1 or 3-pixel-tall RGB image has a size-3 or
    size-1 second axis too): uint8 images and numpy arrays are channels-last whenever their last axis
    is 1 or 3 — the benchmark's own format — and torch tensors are channels-first whenever their second
    axis is; only an array that cannot be read the preferred way is read the other way.
    """
    is_tensor = isinstance(images, torch.Tensor)
    t = images.detach() if is_tensor else torch.as_tensor(np.asarray(images))
    if t.ndim != 4:
        raise UserError(f"{name}: expected a batch of images (N, H, W, 3), got shape {tuple(t.shape)}; "
                        "stack the images on a first axis")
    last, second = t.shape[-1] in (1, 3), t.shape[1] in (1, 3)
    channels_last = last and (t.dtype == torch.uint8 or not is_tensor or not second)
    if channels_last:
        t = t.permute(0, 3, 1, 2)
    elif not second:
        raise UserError(f"{name}: shape {tuple(t.shape)} has no colour axis of size 1 or 3; "
                        "pass (N, H, W, 3) uint8 or (N, 3, H, W) float images")
    if t.dtype == torch.uint8:
        return t.to(dtype) / 255
    if not t.is_floating_point():
        raise UserError(f"{name}: dtype {t.dtype} is neither uint8 nor float; pass uint8 or floats in [0, 1]")
    t = t.to(dtype)
    if not bool(torch.isfinite(t).all()):
        raise UserError(f"{name}: contains NaN or inf; check the generator output")
    lo, hi = float(t.min()), float(t.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise UserError(f"{name}: float values span [{lo:.3g}, {hi:.3g}], outside [0, 1]; "
                        "pass uint8 images or divide by 255")
    return t.clamp(0, 1).contiguous()


def resize_square(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Antialiased bilinear resize to ``size × size`` (torchvision's tensor ``Resize``); ``None`` keeps the size."""
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """``skimage.color.rgb2gray`` on an ``(N, 3, H, W)`` batch; a 1-channel batch is returned unchanged."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(RGB2GRAY_WEIGHTS, dtype=x.dtype, device=x.device)
    return torch.einsum("nchw,c->nhw", x, w).unsqueeze(1)


def check_pair(pred: torch.Tensor, ref: torch.Tensor, name_pred: str = "pred", name_ref: str = "ref") -> None:
    if len(pred) != len(ref):
        raise UserError(f"{name_pred}: {len(pred)} images but {name_ref} has {len(ref)}; "
                        "pass one reconstruction per stimulus, in the same trial order")
    if pred.shape[1:] != ref.shape[1:]:
        raise UserError(f"{name_pred}: shape {tuple(pred.shape[1:])} differs from {name_ref} "
                        f"{tuple(ref.shape[1:])} after resizing; give both the same colour channels or pass a size")


# --- the generative models' range: what the GANs, VAEs and U-Nets read and write -------------------
def images_to_tensor(images: np.ndarray, size: int | None = None) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` → float ``(N, 3, S, S)`` in [-1, 1], the generative models' range (:func:`resize_square`)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise UserError(f"images: expected uint8 (N, H, W, 3), got shape {images.shape}; pass RGB images")
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    return resize_square(x, size).clamp(-1.0, 1.0)


def tensor_to_images(x: torch.Tensor, size: int | None = None) -> np.ndarray:
    """float ``(N, 3, H, W)`` in [-1, 1] → uint8 ``(N, S, S, 3)`` (:func:`resize_square` when ``size`` is given)."""
    x = resize_square(x.detach().float(), size)
    x = ((x.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()
