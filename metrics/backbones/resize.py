"""The three ways the reference libraries bring an image to Inception's 299×299 input.

They give different FID/KID/IS numbers (clean-fid, Parmar et al. 2022), so the policy is a named part
of every result's protocol:

- ``clean`` — clean-fid: each channel resized in float with PIL bicubic, clipped to [0, 255];
- ``torch-fidelity`` — torch-fidelity: TensorFlow-1-compatible bilinear resize (its own kernel);
- ``torchmetrics`` — torchmetrics ≥ 1.8 default: ``F.interpolate(bilinear, antialias=True)``.

Every function takes uint8 ``(N, H, W, 3)`` and returns float32 ``(N, 3, size, size)`` in [0, 255].
"""

from __future__ import annotations

import numpy as np
import torch

RESIZE_POLICIES = ("clean", "torch-fidelity", "torchmetrics")

DESCRIPTIONS = {
    "clean": "clean-fid: PIL bicubic per channel in float32, clip [0,255]",
    "torch-fidelity": "torch-fidelity: TF1-compatible bilinear (align_corners=False)",
    "torchmetrics": "torchmetrics>=1.8: torch bilinear, antialias=True, align_corners=False",
}


def check_policy(policy: str) -> str:
    from eeg2img.errors import UserError

    if policy not in RESIZE_POLICIES:
        raise UserError(f"resize policy {policy!r}: unknown; choose one of {', '.join(RESIZE_POLICIES)}")
    return policy


def _pil_bicubic_float(images: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(images), 3, size, size), np.float32)
    for i, img in enumerate(images):
        for c in range(3):
            # Mode "F" keeps the interpolated values unquantised, as clean-fid does.
            channel = Image.fromarray(np.ascontiguousarray(img[:, :, c], dtype=np.float32))
            out[i, c] = np.asarray(channel.resize((size, size), resample=Image.BICUBIC))
    return np.clip(out, 0, 255, out=out)


def resize_batch(images: np.ndarray, policy: str, size: int = 299, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` → float32 ``(N, 3, size, size)`` in [0, 255] on ``device``."""
    check_policy(policy)
    if policy == "clean":
        return torch.from_numpy(_pil_bicubic_float(images, size)).to(device)
    # Contiguous NCHW, as the libraries build it: a channels-last view would take other kernels
    # (different summation order) in the resize and in every convolution after it.
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).contiguous().to(torch.float32)
    if policy == "torch-fidelity":
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        return interpolate_bilinear_2d_like_tensorflow1x(x, size=(size, size), align_corners=False)
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
