"""Stage 3 of NeuroImagen: EEG features → caption prompt-embeds (L2 regression)."""

from __future__ import annotations

import numpy as np
import pytest

from eeg2img.errors import UserError
from reconstruct.text_regressor import TextEmbeddingRegressor


def _features_and_caption_embeds(n_per_class=10, n_classes=4, feat_dim=8, seq=(6, 5), seed=0, noise=0.3):
    """Class-clustered features and one fixed (L, D) 'caption embedding' per class."""
    rng = np.random.default_rng(1234)
    centres = rng.standard_normal((n_classes, feat_dim))
    table = rng.standard_normal((n_classes, *seq)).astype(np.float32)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    feats = centres[labels] + noise * np.random.default_rng(seed).standard_normal((len(labels), feat_dim))
    return feats.astype(np.float32), table[labels], labels, table


@pytest.mark.parametrize("target", ["sequence", "pooled"])
def test_regressor_loss_falls_and_predicts_the_right_caption_on_held_out_trials(target):
    feats, targets, _, table = _features_and_caption_embeds()
    test_feats, _, test_labels, _ = _features_and_caption_embeds(n_per_class=5, seed=1)
    if target == "pooled":
        targets, table = targets.mean(1), table.mean(1)
    reg = TextEmbeddingRegressor(target=target, epochs=60, hidden=64).fit(feats, targets)
    assert reg.history_[-1] < 0.2 * reg.history_[0]
    pred = reg.predict(test_feats)
    assert pred.shape == (len(test_feats), *table.shape[1:])
    dist = ((pred[:, None] - table[None]) ** 2).reshape(len(pred), len(table), -1).sum(-1)
    assert (dist.argmin(1) == test_labels).mean() >= 0.9


def test_uninformative_features_predict_the_mean_caption():
    rng = np.random.default_rng(0)
    targets = rng.standard_normal((20, 3, 4)).astype(np.float32)
    reg = TextEmbeddingRegressor(epochs=0).fit(np.zeros((20, 5), np.float32), targets)
    np.testing.assert_allclose(reg.predict(np.zeros((2, 5), np.float32)), np.broadcast_to(targets.mean(0), (2, 3, 4)),
                               rtol=1e-5, atol=1e-6)


def test_regressor_round_trips_and_checks_input(tmp_path):
    feats, targets, _, _ = _features_and_caption_embeds(n_per_class=3)
    reg = TextEmbeddingRegressor(epochs=3).fit(feats, targets)
    again = TextEmbeddingRegressor(epochs=3).fit(feats, targets)
    np.testing.assert_array_equal(reg.predict(feats), again.predict(feats))
    reg.save(tmp_path / "reg")
    loaded = TextEmbeddingRegressor.load(tmp_path / "reg")
    np.testing.assert_array_equal(reg.predict(feats), loaded.predict(feats))
    assert loaded.output_shape == targets.shape[1:]
    with pytest.raises(UserError, match="pooled"):
        TextEmbeddingRegressor(target="pooled").fit(feats, targets)
    with pytest.raises(UserError, match="features"):
        reg.predict(feats[:, :2])
    with pytest.raises(UserError, match="NaN"):
        TextEmbeddingRegressor().fit(feats * np.nan, targets)
    with pytest.raises(UserError, match="target"):
        TextEmbeddingRegressor(target="tokens")
