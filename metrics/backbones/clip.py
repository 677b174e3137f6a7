"""An open_clip model from a local weights file: image and text embeddings (CLIP score, identification).

``open_clip.create_model_and_transforms(name, pretrained=PATH)`` reads the checkpoint with
``weights_only=True``; the tokenizer (BPE vocabulary) ships inside the package, so nothing is
fetched. Use the ``-quickgelu`` model names for OpenAI's weights. ``model`` may also be the path of
an open_clip model-config JSON (its file stem becomes the model name) or ``local-dir:DIR``.
Images go through the model's own eval transform (PIL resize, centre crop, normalise), so the
embeddings equal a direct open_clip computation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from eeg2img.errors import UserError, WeightsNotFoundError
from metrics.backbones.base import Backbone


def _model_name(model: str) -> str:
    import open_clip

    path = Path(model)
    if model.endswith(".json"):
        if not path.is_file():
            raise UserError(f"{path}: open_clip model config not found; pass an existing JSON or a model name")
        open_clip.add_model_config(path)
        return path.stem
    if model.startswith("local-dir:") or model in open_clip.list_models():
        return model
    raise UserError(f"CLIP model {model!r}: unknown to open_clip; use a name from open_clip.list_models() "
                    "(e.g. ViT-B-32, ViT-L-14-quickgelu) or a model-config JSON path")


class OpenClip(Backbone):
    """open_clip image/text encoder; ``name`` is the model name (``clip@ViT-B-32``)."""

    has_text = True

    def __init__(self, model: str, weights: str | Path | None, device=None, batch_size: int = 32,
                 text_batch_size: int = 256):
        import open_clip
        from PIL import Image  # noqa: F401 - fail early if Pillow is missing

        from eeg2img.weights import sha256_of

        super().__init__(device, batch_size)
        model_name = _model_name(model)
        local_dir = model_name.startswith("local-dir:")
        if not local_dir:
            if weights is None:
                raise WeightsNotFoundError(f"CLIP model {model_name}: no weights file given; pass --clip-weights PATH "
                                           "(an open_clip checkpoint, e.g. open_clip_pytorch_model.bin)")
            if not Path(weights).is_file():
                raise WeightsNotFoundError(f"{weights}: CLIP weights file not found; pass an existing open_clip "
                                           "checkpoint to --clip-weights")
        try:
            net, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=None if local_dir else str(weights), device=self.device)
        except (RuntimeError, ValueError, KeyError, OSError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
            raise UserError(f"{weights or model_name}: cannot load open_clip {model_name} ({first}); "
                            "pass weights matching the model name") from None
        self.model = net.eval().requires_grad_(False)
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.text_batch_size = int(text_batch_size)
        self.name = Path(model_name).name if local_dir else model_name
        self.identification = {self.name: "image"}
        if weights is not None:
            self.weights_path, self.weights_sha256 = str(weights), sha256_of(weights)
        self.preprocessing = f"open_clip eval transform of {model_name}: {_describe(preprocess)}"

    def forward_batch(self, images: np.ndarray) -> dict[str, torch.Tensor]:
        from PIL import Image

        x = torch.stack([self.preprocess(Image.fromarray(img)) for img in images]).to(self.device)
        return {"image": self.model.encode_image(x).float()}

    @torch.inference_mode()
    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        import time

        start = time.perf_counter()
        texts = [str(t) for t in texts]
        out = []
        for i in range(0, len(texts), self.text_batch_size):
            tokens = self.tokenizer(texts[i:i + self.text_batch_size]).to(self.device)
            out.append(self.model.encode_text(tokens).float().cpu().double().numpy())
        self.seconds += time.perf_counter() - start
        return np.concatenate(out) if out else np.zeros((0, 0))


def _describe(preprocess) -> str:
    steps = getattr(preprocess, "transforms", [preprocess])
    return " → ".join(" ".join(repr(s).split()) for s in steps)[:400]
