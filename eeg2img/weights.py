"""Where pretrained weight files come from, and proof of which bytes were used.

Every metric backbone names its weights by a registry key (``inception-clean-fid``, ``alexnet``, ...).
:func:`resolve_weights` looks for the official file name, in this order:

1. an explicit path (a file, or a folder holding the official file name);
2. the ``$EEG2IMG_WEIGHTS`` folder;
3. the caches the reference libraries use: ``torch.hub.get_dir()/checkpoints`` (torch-fidelity,
   torchmetrics, torchvision; ``$TORCH_HOME/hub/checkpoints``) and clean-fid's download folder;
4. a download into the torch hub cache when online (``urllib`` with a timeout, written to a temp file,
   sha256 checked, then renamed) — switched off by ``EEG2IMG_OFFLINE=1``, and never for a file whose
   hash nothing publishes (SwAV's);

and otherwise raises :class:`~eeg2img.errors.WeightsNotFoundError` naming the file, where to put it and
its URL. Nothing is ever downloaded at import time.

Files found locally are used as they are (a user may evaluate with their own weights); their sha256
is recorded in the provenance of every result (:func:`sha256_of`, cached by size and mtime) together
with whether it is the official file. Downloads must match the published hash: the full sha256 where
it is established, else the hash prefix torch hub embeds in the file name (``-7be5be79.pth``).
"""

from __future__ import annotations

import hashlib
import os
import platform
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from eeg2img.digest import remember, sha256_of
from eeg2img.errors import UserError, WeightsNotFoundError

DOWNLOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class WeightsFile:
    """One published weights file."""

    key: str
    filename: str
    url: str
    sha256: str | None  # full digest, where established from independent sources
    hash_prefix: str | None  # the digest prefix in the file name (torch hub convention)
    size: int | None
    description: str
    cli_flag: str  # the evaluate option that takes this file

    @property
    def pinned(self) -> bool:
        """Whether a file can be checked at all: a full digest or a file-name prefix is known."""
        return bool(self.sha256 or self.hash_prefix)

    def matches(self, digest: str) -> bool:
        if self.sha256:
            return digest == self.sha256
        return bool(self.hash_prefix) and digest.startswith(self.hash_prefix)

    @property
    def check(self) -> str:
        if not self.pinned:
            return "no published sha256"
        return f"sha256 {self.sha256}" if self.sha256 else f"sha256 prefix {self.hash_prefix} (from the file name)"


# Full digests were cross-checked in several independent public projects that pin these files
# (k-diffusion pins the clean-fid one; LPIPS users pin AlexNet). The ViT-H/14 SWAG and EfficientNet-B1
# digests (and torchvision's Inception-v3's) could not be established, so only their file-name prefix is
# checked, exactly as torch hub
# does. SwAV's file carries no hash in its name and no project we could read pins its digest: it is
# never downloaded automatically, and a local copy is recorded by its sha256 with ``official: null``
# (unverified) rather than claimed official.
REGISTRY: dict[str, WeightsFile] = {
    w.key: w
    for w in (
        WeightsFile(
            "inception-clean-fid",
            "inception-2015-12-05.pt",
            "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",
            "f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4",
            None,
            95_607_719,
            "Inception-v3 (TF 2015-12-05 weights) as the TorchScript file clean-fid and StyleGAN2-ADA use",
            "--inception-weights",
        ),
        WeightsFile(
            "inception-torch-fidelity",
            "weights-inception-2015-12-05-6726825d.pth",
            "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
            "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
            "6726825d",
            95_628_359,
            "Inception-v3 (TF 2015-12-05 weights) as the state dict torch-fidelity and torchmetrics use",
            "--inception-weights",
        ),
        WeightsFile(
            "alexnet",
            "alexnet-owt-7be5be79.pth",
            "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
            "7be5be79",
            244_408_911,
            "torchvision AlexNet IMAGENET1K_V1 (MindEye two-way identification, layers (2) and (5))",
            "--alexnet-weights",
        ),
        WeightsFile(
            "resnet50",
            "resnet50-0676ba61.pth",
            "https://download.pytorch.org/models/resnet50-0676ba61.pth",
            "0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a",
            "0676ba61",
            None,
            "torchvision ResNet-50 IMAGENET1K_V1 (N-way top-k classification accuracy)",
            "--classifier-weights",
        ),
        WeightsFile(
            "resnet18",
            "resnet18-f37072fd.pth",
            "https://download.pytorch.org/models/resnet18-f37072fd.pth",
            "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec",
            "f37072fd",
            46_830_571,
            "torchvision ResNet-18 IMAGENET1K_V1 (a small N-way classifier)",
            "--classifier-weights",
        ),
        WeightsFile(
            "vit_h_14",
            "vit_h_14_swag-80465313.pth",
            "https://download.pytorch.org/models/vit_h_14_swag-80465313.pth",
            None,
            "80465313",
            None,
            "torchvision ViT-H/14 SWAG E2E (the classifier MinD-Vis uses for N-way accuracy)",
            "--classifier-weights",
        ),
        WeightsFile(
            "inception-torchvision",
            "inception_v3_google-0cc3c7bd.pth",
            "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
            None,
            "0cc3c7bd",
            None,
            "torchvision Inception-v3 IMAGENET1K_V1 (MindEye's Inception two-way identification; not FID's TF port)",
            "--inception-tv-weights",
        ),
        WeightsFile(
            "effnet-b1",
            "efficientnet_b1-c27df63c.pth",
            "https://download.pytorch.org/models/efficientnet_b1-c27df63c.pth",
            None,
            "c27df63c",
            None,
            "torchvision EfficientNet-B1 IMAGENET1K_V2, torchvision's DEFAULT (MindEye's EffNet-B correlation distance)",
            "--effnet-weights",
        ),
        WeightsFile(
            "swav",
            "swav_800ep_pretrain.pth.tar",
            "https://dl.fbaipublicfiles.com/deepcluster/swav_800ep_pretrain.pth.tar",
            None,
            None,
            None,
            "facebookresearch/swav ResNet-50, 800 epochs (torch hub facebookresearch/swav:main resnet50; MindEye's "
            "SwAV correlation distance)",
            "--swav-weights",
        ),
    )
}


def register_weights(spec: WeightsFile) -> WeightsFile:
    """Add (or replace) a registry entry, e.g. for a project's own published weights."""
    REGISTRY[spec.key] = spec
    return spec


def get_spec(name: str | WeightsFile) -> WeightsFile:
    if isinstance(name, WeightsFile):
        return name
    try:
        return REGISTRY[name]
    except KeyError:
        raise UserError(f"weights {name!r}: unknown; known weights: {', '.join(sorted(REGISTRY))}") from None


def is_offline() -> bool:
    return os.environ.get("EEG2IMG_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def user_weights_dir() -> Path | None:
    value = os.environ.get("EEG2IMG_WEIGHTS", "").strip()
    return Path(value).expanduser() if value else None


def torch_hub_checkpoints() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def cleanfid_dir() -> Path:
    """Where clean-fid downloads its TorchScript Inception (``/tmp``; the working folder on Windows)."""
    return Path(".") if platform.system() == "Windows" else Path(tempfile.gettempdir())


def library_cache_dirs(spec: WeightsFile) -> list[Path]:
    dirs = [torch_hub_checkpoints()]
    if spec.key == "inception-clean-fid":
        dirs.append(cleanfid_dir())
    return dirs


def search_locations(spec: WeightsFile) -> list[Path]:
    """The folders searched for ``spec.filename``, in order."""
    user = user_weights_dir()
    return ([user] if user else []) + library_cache_dirs(spec)


def find_local_weights(name: str | WeightsFile) -> Path | None:
    """The first local copy of a weights file (no download), or None."""
    spec = get_spec(name)
    for folder in search_locations(spec):
        candidate = folder / spec.filename
        if candidate.is_file():
            return candidate
    return None


def resolve_weights(name: str | WeightsFile, explicit: str | os.PathLike | None = None) -> Path:
    """The local path of a weights file (see the module docstring for the search order)."""
    spec = get_spec(name)
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_dir():
            path = path / spec.filename
        if not path.is_file():
            raise WeightsNotFoundError(
                f"{path}: weights file not found; pass the path of {spec.filename} to {spec.cli_flag} "
                f"(download: {spec.url})"
            )
        return path
    local = find_local_weights(spec)
    if local is not None:
        return local
    if not is_offline() and spec.pinned:  # a file nothing can verify is never fetched unattended
        try:
            return download_weights(spec)
        except OSError:
            pass  # unreachable host or no network: report where to put the file instead
    user = user_weights_dir()
    where = f"$EEG2IMG_WEIGHTS ({user})" if user else "a folder named by $EEG2IMG_WEIGHTS"
    raise WeightsNotFoundError(
        f"{spec.filename}: weights not found; put it in {where} or {torch_hub_checkpoints()}, "
        f"or pass {spec.cli_flag} PATH (download: {spec.url})"
    )


def download_weights(spec: WeightsFile, folder: Path | None = None, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download ``spec`` into ``folder`` (the torch hub cache), atomically, checking its hash."""
    from tqdm.auto import tqdm

    folder = Path(folder) if folder is not None else torch_hub_checkpoints()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec.filename
    fd, tmp = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=folder)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or spec.size
            with tqdm(total=total, unit="B", unit_scale=True, desc=spec.filename, disable=None) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        digest = h.hexdigest()
        if not spec.matches(digest):
            raise WeightsNotFoundError(
                f"{spec.url}: downloaded file has sha256 {digest}, expected {spec.check}; "
                f"the download is corrupt or the file changed upstream — place a verified {spec.filename} "
                f"in {folder}"
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    remember(target, digest)
    return target


# ------------------------------------------------------------------------------------------ provenance
def weights_record(name: str | WeightsFile, path: str | os.PathLike) -> dict:
    """The provenance entry of one weights file: name, path, sha256 and whether it is the official file."""
    spec = get_spec(name)
    digest = sha256_of(path)
    if not spec.pinned:
        return {"file": spec.filename, "path": str(path), "sha256": digest, "official": None}
    official = spec.matches(digest)
    if not official and (str(path), digest) not in _WARNED:
        _WARNED.add((str(path), digest))
        # On stdout, beside the numbers: every value computed with these weights is not the field's.
        print(f"warning: {path}: sha256 {digest[:16]}… is not the official {spec.filename}; results computed "
              "with it are marked official: false and are not comparable with published numbers")
    return {"file": spec.filename, "path": str(path), "sha256": digest, "official": official}


_WARNED: set[tuple[str, str]] = set()


__all__ = [
    "REGISTRY",
    "WeightsFile",
    "download_weights",
    "find_local_weights",
    "get_spec",
    "is_offline",
    "register_weights",
    "resolve_weights",
    "search_locations",
    "sha256_of",
    "weights_record",
]
