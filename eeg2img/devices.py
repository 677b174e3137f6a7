"""Which torch device a component runs on: one rule for the whole suite.

``None`` or ``"auto"`` is CUDA when present, else the CPU; anything else is taken literally and
checked: an unparseable name, or CUDA asked for where there is none, is one line naming the owner
(a method, a backbone) and the fix.
"""

from __future__ import annotations

from typing import Any

import torch

from eeg2img.errors import UserError


def resolve_device(device: Any = None, owner: str = "device") -> torch.device:
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise UserError(f"{owner}: device={device!r} is invalid; pass 'auto', 'cpu' or 'cuda[:N]'") from None
    else:
        raise UserError(f"{owner}: device={device!r} is invalid; pass 'auto', 'cpu' or 'cuda[:N]'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{owner}: device={str(device)!r} but no CUDA device is available; pass device='auto' or 'cpu'")
    return dev
