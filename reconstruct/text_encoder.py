"""Caption embeddings: the CLIP tokenizer + text encoder of a Stable Diffusion directory.

Used only to compute regression *targets* (and the empty-caption embedding for guidance): at
reconstruction time no caption exists, the embedding is predicted from EEG.

:func:`build_clip_tokenizer` writes a real ``CLIPTokenizer`` from the CLIP BPE that ships inside
open_clip (no download). Its vocabulary is cut down to the tokens the given captions need, which
keeps the demo model's token-embedding table a few kB instead of 49,408 rows: the kept merges are
exactly those the full BPE applies to those captions, so they tokenise identically to full CLIP.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from eeg2img.errors import UserError, WeightsNotFoundError
from reconstruct._common import batches, resolve_device

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


class CaptionEmbedder:
    """``captions → prompt_embeds``: what SD's pipeline would compute from a prompt."""

    def __init__(self, tokenizer, text_encoder, device: str | torch.device = "cpu"):
        self.tokenizer = tokenizer
        self.device = resolve_device(device)
        self.text_encoder = text_encoder.to(self.device).eval()

    @classmethod
    def from_pretrained(cls, sd_path: str | Path, device: str | torch.device = "cpu",
                        local_files_only: bool = True) -> CaptionEmbedder:
        """Load ``<sd_path>/tokenizer`` and ``<sd_path>/text_encoder`` (SD 1.x layout)."""
        from transformers import CLIPTextModel, CLIPTokenizer

        root = Path(sd_path)
        if root.is_dir():
            missing = [sub for sub in ("tokenizer", "text_encoder") if not (root / sub).is_dir()]
            if missing:
                raise WeightsNotFoundError(
                    f"{root}: no {' or '.join(missing)} sub-folder; caption embedding needs the SD directory's "
                    "tokenizer/ and text_encoder/ (a full SD 1.x download has both)")
        try:
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
            transformers_logging.set_verbosity_error()
            tokenizer = CLIPTokenizer.from_pretrained(str(sd_path), subfolder="tokenizer", local_files_only=local_files_only)
            encoder = CLIPTextModel.from_pretrained(str(sd_path), subfolder="text_encoder", local_files_only=local_files_only)
        except (OSError, ValueError) as err:
            raise WeightsNotFoundError(
                f"{sd_path}: cannot load tokenizer/ and text_encoder/ ({str(err).splitlines()[0][:120]}); "
                "point sd_path at a complete SD 1.x directory") from None
        return cls(tokenizer, encoder, device)

    @property
    def max_length(self) -> int:
        return int(min(self.tokenizer.model_max_length, self.text_encoder.config.max_position_embeddings))

    @property
    def embed_dim(self) -> int:
        return int(self.text_encoder.config.hidden_size)

    def tokenize(self, captions: Sequence[str]) -> torch.Tensor:
        tok = self.tokenizer(list(captions), padding="max_length", max_length=self.max_length, truncation=True,
                             return_tensors="pt")
        return tok.input_ids

    @torch.no_grad()
    def _run(self, captions: Sequence[str], batch_size: int = 64):
        if isinstance(captions, str):
            raise UserError("captions: expected a list of strings, got one string; wrap it in a list")
        seqs, pooled = [], []
        for s in batches(len(captions), batch_size):
            out = self.text_encoder(self.tokenize(captions[s]).to(self.device))
            seqs.append(out.last_hidden_state.float().cpu())
            pooled.append(out.pooler_output.float().cpu())
        if not seqs:
            return np.zeros((0, self.max_length, self.embed_dim), np.float32), np.zeros((0, self.embed_dim), np.float32)
        return torch.cat(seqs).numpy(), torch.cat(pooled).numpy()

    def embed(self, captions: Sequence[str]) -> np.ndarray:
        """``(N, L, D)`` last hidden states: SD 1.x ``prompt_embeds``."""
        return self._run(list(captions))[0]

    def pooled(self, captions: Sequence[str]) -> np.ndarray:
        """``(N, D)`` pooled (end-of-text token) embeddings."""
        return self._run(list(captions))[1]

    def unconditional(self) -> np.ndarray:
        """``(L, D)``: the empty caption, SD's negative prompt for classifier-free guidance."""
        return self.embed([""])[0]


# --- a tokenizer built from open_clip's bundled BPE ------------------------------------------------------
def _apply_bpe(token: str, ranks: dict[tuple[str, str], int]) -> set[tuple[str, str]]:
    """The merges CLIP's BPE applies to one pre-token (same loop as open_clip's ``SimpleTokenizer.bpe``)."""
    word = list(token[:-1]) + [token[-1] + "</w>"]
    used: set[tuple[str, str]] = set()
    while len(word) > 1:
        pairs = {(a, b) for a, b in zip(word, word[1:])}
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        used.add(best)
        merged, i = [], 0
        while i < len(word):
            if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                merged.append(word[i] + word[i + 1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = merged
    return used


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte → printable-character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


# CLIP's pre-tokenisation (open_clip's SimpleTokenizer, HF's CLIPTokenizer)
_PRETOKEN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def clip_bpe_merges() -> list[tuple[str, str]]:
    """The 48,894 merges of CLIP's BPE, read from the file open_clip ships (without importing open_clip)."""
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("open_clip is not installed; it ships the CLIP BPE vocabulary: pip install open_clip_torch")
    path = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise UserError(f"{path}: CLIP BPE vocabulary missing from open_clip; reinstall open_clip_torch")
    lines = gzip.open(path).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    return [tuple(line.split()) for line in lines]


def build_clip_tokenizer(captions: Iterable[str], model_max_length: int = 77):
    """A ``transformers.CLIPTokenizer`` over the CLIP BPE, restricted to what ``captions`` need.

    Words outside the captions still tokenise (down to byte-level symbols, all of which are kept).
    """
    import regex
    from transformers import CLIPTokenizer

    ranks = {m: i for i, m in enumerate(clip_bpe_merges())}
    byte_encoder = _bytes_to_unicode()
    pattern = regex.compile(_PRETOKEN, regex.IGNORECASE)
    used: set[tuple[str, str]] = set()
    for caption in captions:
        for piece in pattern.findall(" ".join(caption.split()).lower()):
            used |= _apply_bpe("".join(byte_encoder[b] for b in piece.encode("utf-8")), ranks)
    merges = sorted(used, key=ranks.__getitem__)
    symbols = list(byte_encoder.values())
    vocab_list = symbols + [s + "</w>" for s in symbols]
    seen = set(vocab_list)
    for a, b in merges:
        if a + b not in seen:
            seen.add(a + b)
            vocab_list.append(a + b)
    vocab_list += [BOS, EOS]
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    return CLIPTokenizer(vocab=vocab, merges=[tuple(m) for m in merges], model_max_length=model_max_length)
