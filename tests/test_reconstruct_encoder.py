"""Stage 1 of NeuroImagen: the triplet-trained EEG encoder."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from eeg2img.errors import UserError
from reconstruct.encoder import TripletEEGEncoder, triplet_batch_all_loss, triplet_semihard_loss


def _semihard_reference(emb: np.ndarray, labels: np.ndarray, margin: float) -> float:
    """Loop-by-loop semi-hard triplet loss (TensorFlow Addons' definition) to check the vectorised one."""
    d = ((emb[:, None] - emb[None]) ** 2).sum(-1)
    losses = []
    for a, p in itertools.permutations(range(len(emb)), 2):
        if labels[a] != labels[p]:
            continue
        negs = [n for n in range(len(emb)) if labels[n] != labels[a]]
        farther = [d[a, n] for n in negs if d[a, n] > d[a, p]]
        d_neg = min(farther) if farther else max(d[a, n] for n in negs)
        losses.append(max(0.0, margin + d[a, p] - d_neg))
    return float(np.mean(losses))


def _batch_all_reference(emb: np.ndarray, labels: np.ndarray, margin: float) -> float:
    d = ((emb[:, None] - emb[None]) ** 2).sum(-1)
    vals = [margin + d[a, p] - d[a, n]
            for a, p, n in itertools.permutations(range(len(emb)), 3)
            if labels[a] == labels[p] and labels[a] != labels[n]]
    pos = [v for v in vals if v > 1e-12]
    return float(np.mean(pos)) if pos else 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_triplet_losses_match_loop_references(seed):
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((10, 4)).astype(np.float64) * 0.7
    labels = rng.integers(0, 3, 10)
    t_emb, t_lab = torch.from_numpy(emb), torch.from_numpy(labels)
    for margin in (0.05, 0.5, 2.0):
        got = float(triplet_semihard_loss(t_emb, t_lab, margin))
        assert got == pytest.approx(_semihard_reference(emb, labels, margin), rel=1e-9, abs=1e-12)
        got = float(triplet_batch_all_loss(t_emb, t_lab, margin))
        assert got == pytest.approx(_batch_all_reference(emb, labels, margin), rel=1e-9, abs=1e-12)


def test_triplet_loss_is_zero_for_separated_classes_and_has_gradients():
    emb = torch.tensor([[0.0, 0.0], [0.0, 0.1], [5.0, 5.0], [5.0, 5.1]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    assert float(triplet_semihard_loss(emb, labels, 0.2).detach()) == 0.0
    mixed = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.5, 0.0], [3.5, 0.0]], requires_grad=True)
    loss = triplet_semihard_loss(mixed, labels, 0.2)
    loss.backward()
    assert float(loss.detach()) > 0 and mixed.grad.abs().sum() > 0


def _class_signal_eeg(n_per_class=12, n_classes=4, channels=16, samples=120, snr=0.6, noise_seed=0):
    """Trials = class-specific waveform pattern (fixed) + white noise (drawn from ``noise_seed``)."""
    rng = np.random.default_rng(1234)
    t = np.linspace(0, 1, samples)
    patterns = np.stack([np.outer(rng.standard_normal(channels), np.sin(2 * np.pi * (2 + c) * t))
                         for c in range(n_classes)])
    labels = np.repeat(np.arange(n_classes), n_per_class)
    noise = np.random.default_rng(noise_seed).standard_normal((len(labels), channels, samples))
    eeg = snr * patterns[labels] + noise
    return eeg.astype(np.float32), labels


def _nearest_class_mean_accuracy(enc, train_eeg, train_y, test_eeg, test_y) -> float:
    a, b = enc.encode(train_eeg), enc.encode(test_eeg)
    classes = np.unique(train_y)
    means = np.stack([a[train_y == c].mean(0) for c in classes])
    return float((classes[(b @ means.T).argmax(1)] == test_y).mean())


@pytest.mark.parametrize("kind", ["lstm", "eegnet"])
def test_encoder_loss_falls_and_separates_held_out_trials(kind):
    eeg, y = _class_signal_eeg()
    test_eeg, test_y = _class_signal_eeg(n_per_class=6, noise_seed=1)
    enc = TripletEEGEncoder(kind=kind, epochs=25, downsample=4, hidden_size=32, embed_dim=16, batch_size=32)
    enc.fit(eeg, y)
    assert np.mean(enc.history_[-5:]) < 0.5 * np.mean(enc.history_[:3])
    emb = enc.encode(test_eeg)
    assert emb.shape == (len(test_eeg), 16) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert _nearest_class_mean_accuracy(enc, eeg, y, test_eeg, test_y) >= 0.75  # chance 0.25


def test_encoder_beats_chance_on_held_out_images_of_synthetic_subjects(tiny_synth):
    """Per-subject split of the synthetic set: two images per class of every subject are held out."""
    ids, labels = np.asarray(tiny_synth.image_ids), np.asarray(tiny_synth.labels)
    held = {i for c in np.unique(labels) for i in sorted(set(ids[labels == c]))[:2]}
    test = np.array([i in held for i in ids])
    enc = TripletEEGEncoder(kind="eegnet", epochs=40, downsample=10, seed=0)
    enc.fit(tiny_synth.eeg[~test], labels[~test])
    acc = _nearest_class_mean_accuracy(enc, tiny_synth.eeg[~test], labels[~test], tiny_synth.eeg[test], labels[test])
    assert acc >= 0.36  # 6 classes: chance 0.167; 36 test trials


@pytest.fixture(scope="module")
def demo_scale_synth(tmp_path_factory):
    """The default demo's synthetic set: 3 subjects × 10 classes × 20 images, the dataset's default SNR."""
    from eeg2img.datasets import load_dataset
    from eeg2img.datasets.synthetic import generate_synthetic

    out = tmp_path_factory.mktemp("demo_scale_synth")
    return load_dataset(generate_synthetic(out, subjects=3, classes=10, images_per_class=20, seed=0, image_size=32,
                                           progress=False))


def test_default_lstm_encoder_beats_chance_per_subject(demo_scale_synth):
    """NeuroImagen's f_θ with its default settings (the paper's LSTM), on the per-subject protocol."""
    from eeg2img.splits import make_folds
    from reconstruct.pipeline import NeuroImagen

    accuracies = []
    for fold in make_folds(demo_scale_synth, "per-subject", seed=0):
        train, test = demo_scale_synth.subset(fold.train), demo_scale_synth.subset(fold.test)
        enc = TripletEEGEncoder(NeuroImagen(device="cpu").encoder_config()).fit(train.eeg, train.labels)
        assert enc.config.kind == "lstm"
        accuracies.append(_nearest_class_mean_accuracy(enc, train.eeg, train.labels, test.eeg, test.labels))
    # 10 classes: chance 0.1; 20 held-out trials per subject (measured: 0.52 mean over the 3 subjects)
    assert np.mean(accuracies) >= 0.3, accuracies


def test_encoder_is_deterministic_and_round_trips(tmp_path):
    eeg, y = _class_signal_eeg(n_per_class=6)
    kw = dict(kind="lstm", epochs=3, downsample=4, hidden_size=16, embed_dim=8)
    a = TripletEEGEncoder(**kw).fit(eeg, y)
    b = TripletEEGEncoder(**kw).fit(eeg, y)
    np.testing.assert_array_equal(a.encode(eeg), b.encode(eeg))
    a.save(tmp_path / "enc")
    loaded = TripletEEGEncoder.load(tmp_path / "enc")
    np.testing.assert_array_equal(a.encode(eeg), loaded.encode(eeg))
    assert loaded.config == a.config and loaded.history_ == a.history_


def test_encoder_rejects_bad_input(tmp_path):
    eeg, y = _class_signal_eeg(n_per_class=4)
    enc = TripletEEGEncoder(epochs=1, downsample=4, hidden_size=8, embed_dim=4)
    with pytest.raises(UserError, match="not fitted"):
        enc.encode(eeg)
    bad = eeg.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(UserError, match="NaN"):
        enc.fit(bad, y)
    with pytest.raises(UserError, match="two classes"):
        enc.fit(eeg, np.zeros_like(y))
    enc.fit(eeg, y)
    with pytest.raises(UserError, match="channels"):
        enc.encode(eeg[:, :5])
    with pytest.raises(UserError, match="unknown option"):
        TripletEEGEncoder(kinds="lstm")
    with pytest.raises(UserError, match="kind"):
        TripletEEGEncoder(kind="transformer")
    with pytest.raises(UserError, match="missing"):
        TripletEEGEncoder.load(tmp_path / "nothing")
    enc.save(tmp_path / "enc")
    (tmp_path / "enc" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="corrupt"):
        TripletEEGEncoder.load(tmp_path / "enc")


def test_lstm_readouts_differ_and_old_saves_keep_the_last_state_readout(tmp_path):
    import json

    eeg, y = _class_signal_eeg(n_per_class=4)
    kw = dict(kind="lstm", epochs=2, downsample=4, hidden_size=16, embed_dim=8)
    mean = TripletEEGEncoder(readout="mean", **kw).fit(eeg, y)
    last = TripletEEGEncoder(readout="last", **kw).fit(eeg, y)
    assert not np.allclose(mean.encode(eeg), last.encode(eeg))
    # An encoder saved before the option existed has no "readout" in its config: it was a last-state one.
    last.save(tmp_path / "old")
    config_file = tmp_path / "old" / "config.json"
    meta = json.loads(config_file.read_text())
    del meta["config"]["readout"]
    config_file.write_text(json.dumps(meta))
    old = TripletEEGEncoder.load(tmp_path / "old")
    assert old.config.readout == "last"
    np.testing.assert_array_equal(old.encode(eeg), last.encode(eeg))
    with pytest.raises(UserError, match="readout"):
        TripletEEGEncoder(readout="max")
