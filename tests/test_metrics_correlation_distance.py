"""MindEye's suite beyond AlexNet: EffNet-B1 and SwAV correlation distance, torchvision-Inception identification.

The reference computation is MindEye's ``Reconstruction_Metrics``: torchvision's feature extractor on
``avgpool``, its ``transforms.Resize`` + ``Normalize`` preprocessing, and
``scipy.spatial.distance.correlation`` per pair — run here on the same random weights saved in each
network's real file format (SwAV's loaded the way its torch hub entry point loads it); MindEye's
``two_way_identification`` for the Inception column.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from backbone_fixtures import (
    write_alexnet_features,
    write_effnet_b1,
    write_inception_torchvision,
    write_open_clip,
    write_swav,
)
from metric_fixtures import smooth_images

from eeg2img.errors import UserError, WeightsNotFoundError
from metrics.correlation_distance import CorrelationDistance, correlation_distance

pytestmark = pytest.mark.usefixtures("metrics_private_environment")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mindeye-weights")
    return {"effnet-b1": write_effnet_b1(folder), "swav": write_swav(folder),
            "inception-tv": write_inception_torchvision(folder), "alexnet": write_alexnet_features(folder)}


@pytest.fixture(scope="module")
def pairs():
    ref = smooth_images(6, 48, seed=11)
    pred = smooth_images(6, 48, seed=12)
    pred[0] = ref[0]  # one perfect reconstruction: distance 0
    return pred, ref


def _mindeye_features(extractor, size: int, images: np.ndarray) -> np.ndarray:
    from torchvision import transforms

    preprocess = transforms.Compose([transforms.Resize(size, interpolation=transforms.InterpolationMode.BILINEAR),
                                     transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        out = extractor(preprocess(x))["avgpool"]
    return out.reshape(len(out), -1).numpy()


def _mindeye_distances(extractor, size: int, pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    import scipy as sp

    gt, fake = _mindeye_features(extractor, size, ref), _mindeye_features(extractor, size, pred)
    return np.array([sp.spatial.distance.correlation(gt[i], fake[i]) for i in range(len(gt))])


def _mindeye_two_way(preds: np.ndarray, reals: np.ndarray) -> np.ndarray:
    # MindEye's two_way_identification(return_avg=False), per reconstruction.
    r = np.corrcoef(reals, preds)[:len(reals), len(reals):]
    return (r < np.diag(r)).sum(axis=0) / (len(reals) - 1)


def _engine_distances(backbone, pred, ref) -> np.ndarray:
    from metrics.engine import MetricsEngine

    report = MetricsEngine(["corrdist"], backbones=[backbone], use_cache=False, n_boot=0).evaluate(pred, ref)
    assert list(report.results) == [f"corrdist@{backbone.name}"]
    return report.results[f"corrdist@{backbone.name}"].per_sample


# --- the formula ------------------------------------------------------------------------------------------------
def test_correlation_distance_equals_scipy_per_pair():
    from scipy.spatial.distance import correlation

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 33)), rng.normal(size=(7, 33))
    b[2] = 3 * a[2] + 1  # affine copy: distance 0
    b[3] = -a[3]  # anti-correlated: distance 2
    ours = correlation_distance(a, b)
    np.testing.assert_allclose(ours, [correlation(a[i], b[i]) for i in range(7)], rtol=0, atol=1e-12)
    assert ours[2] == pytest.approx(0, abs=1e-12) and ours[3] == pytest.approx(2, abs=1e-12)
    metric = CorrelationDistance()
    metric.update(a[:3], b[:3])
    metric.update(a[3:], b[3:])
    np.testing.assert_array_equal(metric.per_sample, ours)
    assert metric.compute() == pytest.approx(ours.mean()) and not metric.higher_is_better


def test_correlation_distance_counts_constant_features_as_uncorrelated_and_checks_shapes():
    a = np.random.default_rng(1).normal(size=(3, 8))
    b = a.copy()
    b[1] = 5.0
    with pytest.warns(UserWarning, match="1 of 3 feature pairs"):
        d = correlation_distance(a, b)
    np.testing.assert_allclose(d, [0, 1, 0], atol=1e-12)
    with pytest.raises(UserError, match="pred_feats: 3 samples but ref_feats has 2"):
        correlation_distance(a, b[:2])
    with pytest.raises(UserError, match="feature shape"):
        correlation_distance(a, b[:, :4])
    with pytest.raises(UserError, match="NaN"):
        correlation_distance(np.full((3, 8), np.nan), b)
    with pytest.raises(UserError, match="before any update"):
        CorrelationDistance().compute()


# --- the backbones, against MindEye's computation on the same files ----------------------------------------------
def test_effnet_b1_distance_equals_mindeye_on_torchvisions_state_dict(weights, pairs):
    import torchvision
    from torchvision.models.feature_extraction import create_feature_extractor

    from metrics.backbones import build_backbone

    backbone = build_backbone("effnet-b1", weights=weights["effnet-b1"])
    net = torchvision.models.efficientnet_b1()
    net.load_state_dict(torch.load(weights["effnet-b1"], weights_only=True))
    reference = _mindeye_distances(create_feature_extractor(net.eval(), return_nodes=["avgpool"]), 255, *pairs)
    ours = _engine_distances(backbone, *pairs)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6)
    assert ours[0] == pytest.approx(0, abs=1e-9)
    assert 0.05 < ours[1:].min() and ours[1:].std() > 1e-3  # random weights still tell the images apart
    assert backbone.weights_official is False  # random bytes under the official name are not the official file


def test_swav_distance_equals_mindeye_with_the_hub_loader(weights, pairs):
    import torchvision
    from torchvision.models.feature_extraction import create_feature_extractor

    from metrics.backbones import build_backbone

    backbone = build_backbone("swav", weights=weights["swav"])
    # torch.hub.load("facebookresearch/swav:main", "resnet50"): strip "module.", load with strict=False.
    net = torchvision.models.resnet50()
    state = torch.load(weights["swav"], map_location="cpu", weights_only=True)
    missing, unexpected = net.load_state_dict({k.replace("module.", ""): v for k, v in state.items()}, strict=False)
    assert set(missing) == {"fc.weight", "fc.bias"} and all(k.startswith(("projection_head", "prototypes"))
                                                            for k in unexpected)
    reference = _mindeye_distances(create_feature_extractor(net.eval(), return_nodes=["avgpool"]), 224, *pairs)
    ours = _engine_distances(backbone, *pairs)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6)
    assert ours[1:].std() > 1e-3
    assert backbone.weights_official is None  # no published digest: recorded, never claimed official


def test_inception_tv_identification_equals_mindeye_on_torchvisions_state_dict(weights, pairs):
    import torchvision
    from torchvision.models.feature_extraction import create_feature_extractor

    from metrics.backbones import build_backbone
    from metrics.engine import MetricsEngine

    backbone = build_backbone("inception-tv", weights=weights["inception-tv"])
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=False)
    net.load_state_dict(torch.load(weights["inception-tv"], weights_only=True))  # as torchvision loads its weights
    extractor = create_feature_extractor(net.eval(), return_nodes=["avgpool"])
    pred, ref = pairs
    reference_pred, reference_ref = (_mindeye_features(extractor, 342, x) for x in (pred, ref))
    report = MetricsEngine(["nway"], backbones=[backbone], use_cache=False, n_boot=0).evaluate(pred, ref)
    np.testing.assert_allclose(report.outputs["inception-tv"]["pred"]["avgpool"], reference_pred, rtol=1e-5, atol=1e-5)
    ours = report.results["nway@inception-tv"].per_sample
    np.testing.assert_array_equal(ours, _mindeye_two_way(reference_pred, reference_ref))
    assert len(set(ours)) > 1  # not all trials alike: the comparison could fail


def test_damaged_or_wrong_files_are_one_line_errors(weights, tmp_path):
    from metrics.backbones import build_backbone

    damaged = write_swav(tmp_path / "damaged", drop="layer3.2.conv2.weight")
    with pytest.raises(UserError, match=r"swav_800ep_pretrain\.pth\.tar: weights do not fit the SwAV ResNet-50 trunk "
                                        r"\(Missing key.*layer3\.2\.conv2\.weight"):
        build_backbone("swav", weights=damaged)
    with pytest.raises(UserError, match="weights do not fit EfficientNet-B1 features"):
        build_backbone("effnet-b1", weights=write_alexnet_features(tmp_path / "alexnet"))
    with pytest.raises(UserError, match="no features.* tensors"):
        build_backbone("effnet-b1", weights=damaged)
    garbage = tmp_path / "efficientnet_b1-c27df63c.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a loadable effnet-b1 state dict"):
        build_backbone("effnet-b1", weights=garbage)


# --- where the weights come from ------------------------------------------------------------------------------------
def test_swav_is_never_downloaded_and_effnet_is_checked_by_its_file_name_prefix(offline_cache, monkeypatch, weights):
    from eeg2img import weights as w

    assert w.get_spec("effnet-b1").hash_prefix == "c27df63c" and not w.get_spec("swav").pinned
    monkeypatch.delenv("EEG2IMG_OFFLINE")
    monkeypatch.setattr(w, "download_weights", lambda spec, *a, **k: pytest.fail(f"tried to download {spec.key}"))
    with pytest.raises(WeightsNotFoundError, match=r"swav_800ep_pretrain\.pth\.tar: weights not found.*--swav-weights "
                                                   r"PATH \(download: https://dl\.fbaipublicfiles\.com/deepcluster/"):
        w.resolve_weights("swav")
    monkeypatch.setenv("EEG2IMG_WEIGHTS", str(weights["swav"].parent))
    assert w.resolve_weights("swav") == weights["swav"]
    record = w.weights_record("swav", weights["swav"])
    assert record["official"] is None and len(record["sha256"]) == 64


def _image_folders(tmp_path, pairs):
    from PIL import Image

    for folder, images in zip(("pred", "ref"), pairs):
        (tmp_path / folder).mkdir()
        for i, img in enumerate(images):
            Image.fromarray(img).save(tmp_path / folder / f"s{i}.png")
    return ["--pred", str(tmp_path / "pred"), "--ref", str(tmp_path / "ref")]


def test_engine_defaults_to_both_networks_and_the_cli_reports_them(weights, pairs, tmp_path, monkeypatch, capsys):
    from eeg2img.cli import main
    from metrics.engine import MetricsEngine
    from metrics.vocabulary import spec

    monkeypatch.setenv("EEG2IMG_WEIGHTS", str(weights["swav"].parent))
    engine = MetricsEngine(["corrdist"], use_cache=False, n_boot=0)
    assert [b.name for b in engine.backbones] == ["effnet-b1", "swav"]
    assert not spec("corrdist").higher_is_better
    pred, ref = pairs
    folders = _image_folders(tmp_path, pairs)
    out = tmp_path / "scores.json"
    assert main(["evaluate", *folders, "--metrics", "corrdist", "--json", str(out), "--no-cache"]) == 0
    metrics = json.loads(out.read_text())["metrics"]
    assert set(metrics) == {"corrdist@effnet-b1", "corrdist@swav"}
    direct = engine.evaluate(pred, ref)
    for name, entry in metrics.items():
        assert entry["value"] == pytest.approx(direct.results[name].value, abs=1e-9)
        assert "correlation distance (MindEye)" in entry["protocol"] and entry["n"] == 6
    monkeypatch.delenv("EEG2IMG_WEIGHTS")
    capsys.readouterr()
    assert main(["evaluate", *folders, "--metrics", "corrdist", "--effnet-weights", str(weights["effnet-b1"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "swav_800ep_pretrain.pth.tar" in err[0] and "--swav-weights" in err[0]


def test_the_mindeye_suite_gives_its_eight_columns_in_its_order(weights, pairs, tmp_path, monkeypatch, capsys):
    import open_clip

    from eeg2img.cli import main
    from metrics.backbones.clip import OpenClip
    from metrics.engine import MetricsEngine

    monkeypatch.setenv("EEG2IMG_WEIGHTS", str(weights["swav"].parent))
    clip_config, clip_ckpt = write_open_clip(tmp_path / "clip")
    open_clip.add_model_config(clip_config)
    folders = _image_folders(tmp_path, pairs)
    out = tmp_path / "mindeye.json"
    clip = ["--clip-model", clip_config.stem, "--clip-weights", str(clip_ckpt)]
    capsys.readouterr()
    assert main(["evaluate", *folders, "--suite", "mindeye", *clip, "--json", str(out), "--no-cache"]) == 0
    metrics = json.loads(out.read_text())["metrics"]
    printed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if "@" in line.split(" ")[0]]
    assert printed == ["pixcorr@pixels", "ssim@pixels", "nway@alexnet2", "nway@alexnet5", "nway@inception-tv",
                             f"nway@{clip_config.stem}", "corrdist@effnet-b1", "corrdist@swav"]
    backbones = ["alexnet", "inception-tv", "effnet-b1", "swav", OpenClip(clip_config.stem, clip_ckpt)]
    direct = MetricsEngine(["pixcorr", "ssim", "nway", "corrdist"], backbones=backbones, use_cache=False,
                           n_boot=0).evaluate(*pairs)
    for name, entry in metrics.items():
        assert entry["value"] == pytest.approx(direct.results[name].value, abs=1e-9), name
    assert all("2-way, all pairs" in metrics[m]["label"] for m in metrics if m.startswith("nway@"))

    without_clip = tmp_path / "seven.json"
    assert main(["evaluate", *folders, "--suite", "mindeye", "--json", str(without_clip), "--no-cache"]) == 0
    seven = json.loads(without_clip.read_text())
    assert len(seven["metrics"]) == 7 and any("CLIP two-way column is not computed" in w for w in seven["warnings"])
    capsys.readouterr()
    assert main(["evaluate", *folders, "--suite", "mindeye", "--metrics", "ssim"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "drop --metrics" in err[0]
