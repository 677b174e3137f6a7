"""Folders of images matched by file stem: what ``eeg2img evaluate`` (and an outside submission) reads.

Only regular image files directly in the folder count; a pipe, a folder or a broken link with an
image suffix is refused, as are duplicate stems and sets of mixed sizes (unless a size is given).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from eeg2img.errors import UserError, path_error

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def list_images(folder: Path, role: str) -> dict[str, Path]:
    """``{stem: path}`` of the image files directly in ``folder``; duplicate stems are an error."""
    if not folder.is_dir():
        raise UserError(f"{folder}: --{role} folder not found; pass a folder of images")
    try:
        entries = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    except PermissionError as err:
        raise path_error(err, f"check the --{role} folder's permissions") from None
    irregular = [f for f in entries if not f.is_file()]  # a FIFO, a folder, a broken or looping link
    if irregular:
        raise UserError(f"{irregular[0]}: not a regular image file (a pipe, a folder or a broken link); "
                        f"remove it from the --{role} folder")
    files = entries
    if not files:
        raise UserError(f"{folder}: no images (.png, .jpg, ...) in the --{role} folder; put the images there")
    counts = Counter(f.stem for f in files)
    dup = sorted(s for s, c in counts.items() if c > 1)
    if dup:
        names = ", ".join(f.name for f in files if f.stem == dup[0])
        raise UserError(f"{folder}: {len(dup)} duplicate stem(s), e.g. {names}; keep one file per stem")
    return {f.stem: f for f in files}


def match_stems(pred: dict[str, Path], ref: dict[str, Path], pred_dir: Path, ref_dir: Path) -> list[str]:
    only_pred, only_ref = sorted(set(pred) - set(ref)), sorted(set(ref) - set(pred))
    if only_pred or only_ref:
        what = []
        if only_pred:
            what.append(f"{len(only_pred)} in {pred_dir} only (e.g. {only_pred[0]})")
        if only_ref:
            what.append(f"{len(only_ref)} in {ref_dir} only (e.g. {only_ref[0]})")
        raise UserError(f"{pred_dir}: {len(pred)} reconstructions and {len(ref)} stimuli do not match by file stem "
                        f"({'; '.join(what)}); give every reconstruction the stem of its stimulus")
    return sorted(pred)


def load_set(paths: list[Path], size: int | None, folder: Path) -> np.ndarray:

    from eeg2img.datasets.base import open_image, read_rgb

    if size is None:
        sizes = set()
        for p in paths:
            with open_image(p) as im:
                sizes.add(im.size)
        if len(sizes) > 1:
            raise UserError(f"{folder}: images differ in size ({', '.join(f'{w}x{h}' for w, h in sorted(sizes)[:2])}); "
                            "pass --size N to resize them all")
    from tqdm.auto import tqdm

    return np.stack([read_rgb(p, size) for p in tqdm(paths, desc=f"reading {folder.name}", unit="img",
                                                       disable=None, leave=False)])
