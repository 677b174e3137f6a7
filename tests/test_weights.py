"""Weights resolution: search order, offline errors, verified atomic downloads, cached sha256."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from eeg2img import digest
from eeg2img import weights as W
from eeg2img.errors import UserError, WeightsNotFoundError


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Empty caches everywhere and no network, so only what a test places can be found."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("EEG2IMG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EEG2IMG_OFFLINE", "1")
    monkeypatch.delenv("EEG2IMG_WEIGHTS", raising=False)
    monkeypatch.setattr(W, "cleanfid_dir", lambda: tmp_path / "cleanfid")
    digest._MEMO.clear()
    return tmp_path


def _place(folder: Path, name: str, content: bytes = b"weights") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    return folder / name


def test_explicit_file_and_folder(isolated):
    f = _place(isolated / "mine", "alexnet-owt-7be5be79.pth")
    assert W.resolve_weights("alexnet", f) == f
    assert W.resolve_weights("alexnet", isolated / "mine") == f  # a folder holding the official name


def test_explicit_missing_is_one_line_naming_file_flag_and_url(isolated):
    with pytest.raises(WeightsNotFoundError) as err:
        W.resolve_weights("alexnet", isolated / "nope.pth")
    msg = str(err.value)
    assert "\n" not in msg and "nope.pth" in msg and "--alexnet-weights" in msg
    assert W.REGISTRY["alexnet"].url in msg


def test_search_order_user_dir_then_torch_hub_then_cleanfid(isolated, monkeypatch):
    name = "inception-2015-12-05.pt"
    in_cleanfid = _place(isolated / "cleanfid", name, b"c")
    assert W.resolve_weights("inception-clean-fid") == in_cleanfid
    in_hub = _place(isolated / "torch" / "hub" / "checkpoints", name, b"h")
    assert W.resolve_weights("inception-clean-fid") == in_hub
    in_user = _place(isolated / "user", name, b"u")
    monkeypatch.setenv("EEG2IMG_WEIGHTS", str(isolated / "user"))
    assert W.resolve_weights("inception-clean-fid") == in_user
    # clean-fid's folder is only searched for clean-fid's own file
    _place(isolated / "cleanfid", "alexnet-owt-7be5be79.pth")
    with pytest.raises(WeightsNotFoundError):
        W.resolve_weights("alexnet")


def test_offline_missing_never_touches_network(isolated, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("network used while EEG2IMG_OFFLINE=1")

    monkeypatch.setattr(urllib.request, "urlopen", boom)
    with pytest.raises(WeightsNotFoundError) as err:
        W.resolve_weights("inception-torch-fidelity")
    msg = str(err.value)
    assert "\n" not in msg
    assert "weights-inception-2015-12-05-6726825d.pth" in msg
    assert str(isolated / "torch" / "hub" / "checkpoints") in msg and "EEG2IMG_WEIGHTS" in msg
    assert "github.com/toshas/torch-fidelity" in msg
    assert isinstance(err.value, UserError)


def test_unreachable_host_falls_back_to_the_placement_message(isolated, monkeypatch):
    monkeypatch.delenv("EEG2IMG_OFFLINE")

    def unreachable(*a, **k):
        raise urllib.error.URLError("no route")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    with pytest.raises(WeightsNotFoundError, match="alexnet-owt-7be5be79.pth: weights not found"):
        W.resolve_weights("alexnet")


def _spec(tmp_path: Path, content: bytes, sha256: str | None, prefix: str | None) -> W.WeightsFile:
    src = tmp_path / "server" / "blob.bin"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(content)
    return W.WeightsFile("test-blob", f"blob-{prefix or 'x'}.pth", src.resolve().as_uri(), sha256, prefix,
                         len(content), "test file", "--test-weights")


def test_download_verifies_full_sha256_and_lands_in_torch_hub(isolated, monkeypatch):
    monkeypatch.delenv("EEG2IMG_OFFLINE")
    content = os.urandom(3000)
    spec = _spec(isolated, content, hashlib.sha256(content).hexdigest(), None)
    path = W.resolve_weights(spec)
    assert path.parent == isolated / "torch" / "hub" / "checkpoints"
    assert path.read_bytes() == content
    assert W.sha256_of(path) == spec.sha256
    assert [p.name for p in path.parent.iterdir()] == [spec.filename]  # no temp file left behind


def test_download_with_hash_prefix_only(isolated, monkeypatch):
    monkeypatch.delenv("EEG2IMG_OFFLINE")
    content = b"torch hub style" * 10
    spec = _spec(isolated, content, None, hashlib.sha256(content).hexdigest()[:8])
    assert W.resolve_weights(spec).read_bytes() == content


def test_corrupt_download_is_rejected_and_removed(isolated, monkeypatch):
    monkeypatch.delenv("EEG2IMG_OFFLINE")
    spec = _spec(isolated, b"tampered", "0" * 64, None)
    with pytest.raises(WeightsNotFoundError, match="expected sha256 0000") as err:
        W.resolve_weights(spec)
    assert "\n" not in str(err.value)
    folder = isolated / "torch" / "hub" / "checkpoints"
    assert not any(folder.iterdir())


def test_sha256_of_is_cached_by_size_and_mtime(isolated):
    f = _place(isolated, "w.pth", b"aaaa")
    first = W.sha256_of(f)
    assert first == hashlib.sha256(b"aaaa").hexdigest()
    stat = f.stat()
    f.write_bytes(b"bbbb")  # same size; restore the mtime: the cached digest is (deliberately) reused
    os.utime(f, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert W.sha256_of(f) == first
    digest._MEMO.clear()  # the on-disk record is keyed the same way
    assert W.sha256_of(f) == first
    os.utime(f, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert W.sha256_of(f) == hashlib.sha256(b"bbbb").hexdigest()


def test_weights_record_flags_unofficial_files(isolated):
    f = _place(isolated, "alexnet-owt-7be5be79.pth", b"not the real alexnet")
    rec = W.weights_record("alexnet", f)
    assert rec["official"] is False and rec["sha256"] == hashlib.sha256(b"not the real alexnet").hexdigest()


def test_registry_digests_agree_with_file_name_prefixes():
    unpinned = {spec.key for spec in W.REGISTRY.values() if not spec.pinned}
    assert unpinned == {"swav"}  # the one file nothing publishes a digest of (never downloaded: see below)
    for spec in W.REGISTRY.values():
        if spec.hash_prefix:
            assert f"-{spec.hash_prefix}." in spec.filename
        if spec.sha256 and spec.hash_prefix:
            assert spec.sha256.startswith(spec.hash_prefix)
        assert spec.url.rsplit("/", 1)[-1] == spec.filename


def test_unknown_weights_name():
    with pytest.raises(UserError, match="unknown; known weights"):
        W.resolve_weights("vgg-imaginary")


def test_importing_never_downloads():
    code = ("import urllib.request\n"
            "def boom(*a, **k): raise SystemExit('download at import')\n"
            "urllib.request.urlopen = boom\n"
            "import eeg2img.weights, metrics.engine, eeg2img.cli.evaluate, metrics.backbones.registry\n"
            "import metrics.backbones.inception, metrics.backbones.clip, metrics.backbones.indomain\n")
    env = {k: v for k, v in os.environ.items() if k != "EEG2IMG_OFFLINE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-500:]
