"""Backbones read the real weight formats and compute exactly what the reference libraries compute."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from metric_fixtures import smooth_images

from eeg2img.errors import UserError, WeightsNotFoundError
from metrics.backbones import build_backbone
from metrics.backbones.inception import InceptionTF, is_torchscript

# fake_weights, offline_cache: tests/conftest.py; every test here runs with private caches and no network.
pytestmark = pytest.mark.usefixtures("metrics_private_environment")


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return smooth_images(4, 32, seed=3)


@pytest.fixture(scope="module")
def ours(fake_weights, images):
    """Our Inception outputs per (file format, resize policy), each computed once per module."""
    cache = {}

    def get(fmt: str, policy: str, channels_last: bool = True) -> dict:
        key = (fmt, policy, channels_last)
        if key not in cache:
            path = fake_weights.torchscript if fmt == "torchscript" else fake_weights.state_dict
            backbone = InceptionTF(path, resize=policy, channels_last=channels_last)
            cache[key] = {**backbone.extract(images), "backbone": backbone}
        return cache[key]

    return get


def _relative_error(ours: np.ndarray, reference) -> float:
    reference = np.asarray(reference, dtype=np.float64)
    return float(np.linalg.norm(ours - reference) / np.linalg.norm(reference))


def _uint8_nchw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


# --- Inception -------------------------------------------------------------------------------------------
def test_both_file_formats_give_the_same_outputs(fake_weights, ours):
    assert is_torchscript(fake_weights.torchscript) and not is_torchscript(fake_weights.state_dict)
    a, b = ours("torchscript", "clean"), ours("state_dict", "clean")
    assert a["backbone"].format == "clean-fid-torchscript" and b["backbone"].format == "torch-fidelity-state-dict"
    assert a["pool3"].shape == (4, 2048) and a["logits_unbiased"].shape == (4, 1008)
    assert a["pool3"].dtype == np.float64
    assert _relative_error(a["pool3"], b["pool3"]) < 1e-6
    assert _relative_error(a["logits_unbiased"], b["logits_unbiased"]) < 1e-6
    assert a["backbone"].weights_sha256 != b["backbone"].weights_sha256  # provenance tells the files apart
    assert a["backbone"].weights_official is False


def test_matches_torch_fidelity_feature_extractor_exactly(fake_weights, ours, images):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    ref = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                      feature_extractor_weights_path=str(fake_weights.state_dict))
    with torch.no_grad():
        pool, logits = ref(_uint8_nchw(images))
    exact = ours("state_dict", "torch-fidelity", channels_last=False)  # the same kernels: bit for bit
    np.testing.assert_array_equal(exact["pool3"], pool.double().numpy())
    np.testing.assert_array_equal(exact["logits_unbiased"], logits.double().numpy())
    fast = ours("state_dict", "torch-fidelity")  # default channels-last kernels: summation order differs
    assert _relative_error(fast["pool3"], pool) < 1e-5
    assert _relative_error(fast["logits_unbiased"], logits) < 1e-5
    assert fast["backbone"].fingerprint() != exact["backbone"].fingerprint()  # never share cached features


def test_matches_torchmetrics_antialiased_extractor(fake_weights, ours, images):
    from torchmetrics.image.fid import NoTrainInceptionV3

    ref = NoTrainInceptionV3("inception-v3-compat", ["2048"], str(fake_weights.state_dict), antialias=True)
    with torch.no_grad():
        pool = ref(_uint8_nchw(images))
    assert _relative_error(ours("state_dict", "torchmetrics", channels_last=False)["pool3"], pool) < 1e-6
    assert _relative_error(ours("state_dict", "torchmetrics")["pool3"], pool) < 1e-5


def test_matches_clean_fid_pipeline_with_its_torchscript(fake_weights, ours, images, tmp_path):
    from cleanfid.fid import get_files_features
    from cleanfid.inception_torchscript import InceptionV3W
    from PIL import Image

    files = []
    for i, img in enumerate(images):
        files.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(img).save(files[-1])
    model = InceptionV3W(str(fake_weights.folder), download=False, resize_inside=False).eval()
    feats = get_files_features(files, model=lambda x: model(x), num_workers=0, batch_size=4,
                               device=torch.device("cpu"), mode="clean", verbose=False)
    assert _relative_error(ours("torchscript", "clean")["pool3"], feats) < 1e-5


def test_resize_policy_is_named_and_changes_the_numbers(ours):
    out = {p: ours("state_dict", p) for p in ("clean", "torch-fidelity", "torchmetrics")}
    assert not np.allclose(out["clean"]["pool3"], out["torch-fidelity"]["pool3"], rtol=1e-4)
    assert not np.allclose(out["torch-fidelity"]["pool3"], out["torchmetrics"]["pool3"], rtol=1e-6)
    for policy, o in out.items():
        assert f"resize={policy}" in o["backbone"].preprocessing
        assert o["backbone"].fingerprint()["preprocessing"] == o["backbone"].preprocessing
    assert len({o["backbone"].fingerprint()["preprocessing"] for o in out.values()}) == 3


def test_extract_runs_one_forward_per_batch(images):
    b = build_backbone("proxy", seed=0)
    b.batch_size = 3
    b.extract(images)
    assert (b.batches_run, b.images_seen) == (2, 4)


def test_bad_inception_files(tmp_path, offline_cache, fake_weights):
    junk = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a loadable Inception-v3 state dict") as err:
        InceptionTF(junk)
    assert "\n" not in str(err.value)
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(UserError, match="weights do not fit"):
        InceptionTF(wrong)
    with pytest.raises(WeightsNotFoundError, match="--inception-weights"):
        InceptionTF(tmp_path / "missing.pt")
    with pytest.raises(WeightsNotFoundError, match="inception-2015-12-05.pt"):
        build_backbone("inception-tf")  # nothing placed, offline


# --- CLIP, AlexNet, classifier ------------------------------------------------------------------------------
def test_open_clip_embeddings_equal_a_direct_open_clip_computation(fake_weights, images):
    import open_clip
    from PIL import Image

    b = build_backbone("clip", model=str(fake_weights.clip_config), weights=fake_weights.clip_ckpt)
    assert b.name == fake_weights.clip_name and b.has_text and b.weights_sha256
    model, _, preprocess = open_clip.create_model_and_transforms(fake_weights.clip_name,
                                                                 pretrained=str(fake_weights.clip_ckpt))
    model.eval()
    texts = ["an image of a red circle", "an image of a blue star"]
    with torch.no_grad():
        img = model.encode_image(torch.stack([preprocess(Image.fromarray(i)) for i in images]))
        txt = model.encode_text(open_clip.get_tokenizer(fake_weights.clip_name)(texts))
    np.testing.assert_allclose(b.extract(images)["image"], img.double().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.encode_text(texts), txt.double().numpy(), rtol=1e-5, atol=1e-6)


def test_clip_needs_weights_and_a_known_model(tmp_path, fake_weights):
    with pytest.raises(WeightsNotFoundError, match="--clip-weights"):
        build_backbone("clip", model=fake_weights.clip_name, weights=None)
    with pytest.raises(UserError, match="unknown to open_clip"):
        build_backbone("clip", model="ViT-Imaginary-99", weights=fake_weights.clip_ckpt)


def test_alexnet_layers_equal_torchvision_feature_extractor(fake_weights, images):
    import torchvision
    from torchvision import transforms
    from torchvision.models.feature_extraction import create_feature_extractor

    b = build_backbone("alexnet", weights=fake_weights.alexnet)
    net = torchvision.models.alexnet()
    net.load_state_dict(torch.load(fake_weights.alexnet, weights_only=True), strict=False)
    extractor = create_feature_extractor(net.eval(), return_nodes=["features.4", "features.11"])
    preprocess = transforms.Compose([transforms.Resize(256, interpolation=transforms.InterpolationMode.BILINEAR),
                                     transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    with torch.no_grad():
        ref = extractor(preprocess(_uint8_nchw(images).float() / 255))
    out = b.extract(images)
    assert set(b.identification) == {"alexnet2", "alexnet5"}
    for layer in ("features.4", "features.11"):
        np.testing.assert_allclose(out[layer], ref[layer].flatten(1).double().numpy(), rtol=1e-5, atol=1e-5)


def test_classifier_logits_equal_torchvision_with_its_preset(fake_weights, images, tmp_path):
    import torchvision
    from torchvision.transforms._presets import ImageClassification

    b = build_backbone("classifier", weights=fake_weights.classifier)
    assert b.name == "squeezenet1_1" and b.class_logits_key == "logits"
    net = torchvision.models.squeezenet1_1()
    net.load_state_dict(torch.load(fake_weights.classifier, weights_only=True))
    with torch.no_grad():
        ref = net.eval()(ImageClassification(crop_size=224)(_uint8_nchw(images)))
    np.testing.assert_allclose(b.extract(images)["logits"], ref.double().numpy(), rtol=1e-5, atol=1e-5)
    odd = tmp_path / "mystery-net.pth"
    odd.write_bytes(fake_weights.classifier.read_bytes())
    with pytest.raises(UserError, match="--classifier-arch"):
        build_backbone("classifier", weights=odd)
    with pytest.raises(UserError, match="weights do not fit"):
        build_backbone("classifier", weights=odd, arch="resnet18")


# --- in-domain ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synth_dataset(tmp_path_factory):
    from eeg2img.datasets import load_dataset
    from eeg2img.datasets.synthetic import generate_synthetic

    path = generate_synthetic(tmp_path_factory.mktemp("synth"), subjects=1, classes=8, images_per_class=12,
                              image_size=32, n_channels=16, n_samples=480, progress=False)
    return load_dataset(path)


def test_synth_cnn_classifies_held_out_stimuli(synth_dataset, offline_cache):
    from metrics.backbones.indomain import InDomainCNN, SynthCNNConfig

    b = InDomainCNN.for_dataset(synth_dataset, config=SynthCNNConfig(holdout_fraction=0.25))
    assert b.report["n_holdout"] == 8 * 3
    assert b.report["holdout_accuracy"] >= 0.9, b.report
    ids = synth_dataset.unique_image_ids()
    out = b.extract(synth_dataset.load_images(ids))
    assert out["features"].shape == (96, 128) and out["logits"].shape == (96, 8)
    assert b.name == "synth-cnn" and b.score_logits_key == b.class_logits_key == "logits"


def test_synth_cnn_is_seeded_and_cached(synth_dataset, offline_cache, monkeypatch):
    from metrics.backbones import indomain
    from metrics.backbones.indomain import InDomainCNN, SynthCNNConfig

    config = SynthCNNConfig(min_steps=25, epochs=1)
    first = InDomainCNN.for_dataset(synth_dataset, config=config)
    assert str(offline_cache) in first.weights_path and first.weights_sha256
    retrained, _ = indomain.train_small_cnn(*_stimuli(synth_dataset), 8, config)
    for k, v in first.net.state_dict().items():
        assert torch.equal(v.cpu(), retrained.state_dict()[k]), k  # same seed, same network, bit for bit

    def no_training(*a, **k):
        raise AssertionError("cache miss: retrained")

    monkeypatch.setattr(indomain, "train_small_cnn", no_training)
    again = InDomainCNN.for_dataset(synth_dataset, config=config)
    assert again.weights_sha256 == first.weights_sha256
    with pytest.raises(AssertionError, match="retrained"):
        InDomainCNN.for_dataset(synth_dataset, config=SynthCNNConfig(min_steps=26, epochs=1))


def _stimuli(dataset):
    ids = dataset.unique_image_ids()
    first = {}
    for i, y in zip(dataset.image_ids, dataset.labels):
        first.setdefault(str(i), int(y))
    return dataset.load_images(ids), np.array([first[i] for i in ids])


def test_proxy_is_explicit_seeded_random_init(images):
    a, b, c = (build_backbone("proxy", seed=s) for s in (0, 0, 1))
    assert a.name == "proxy" and "not trained" in a.preprocessing
    np.testing.assert_array_equal(a.extract(images)["features"], b.extract(images)["features"])
    assert a.weights_sha256 == b.weights_sha256 != c.weights_sha256


def test_registry_errors():
    with pytest.raises(UserError, match="unknown; choose from"):
        build_backbone("vgg-imaginary")
    with pytest.raises(UserError, match="--dataset"):
        build_backbone("synth-cnn")
