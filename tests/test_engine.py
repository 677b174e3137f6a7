"""The one-pass engine equals the reference libraries, runs each backbone once per image set and caches refs.

Random weights in the real file formats stand in for the official ones (no download); what is proven
is that the engine computes exactly what torch-fidelity, torchmetrics, clean-fid and open_clip compute
from the same file and the same images.
"""

from __future__ import annotations

import json
import re
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from metric_fixtures import perturbed, smooth_images

from eeg2img.errors import UserError, WeightsNotFoundError
from metrics.backbones import build_backbone
from metrics.backbones.inception import InceptionTF
from metrics.base import SmallSampleWarning
from metrics.engine import MetricsEngine
from metrics.set_level import SET_LEVEL_COLUMNS, span_coordinates

# fake_weights, offline_cache: tests/conftest.py; every test here runs with private caches and no network.
pytestmark = pytest.mark.usefixtures("metrics_private_environment")

N = 4


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    ref = smooth_images(N, 32, seed=11)
    return perturbed(ref, seed=12), ref


class _Images(torch.utils.data.Dataset):
    """uint8 CHW tensors, the input torch-fidelity takes."""

    def __init__(self, images: np.ndarray):
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def _quiet_evaluate(engine: MetricsEngine, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        return engine.evaluate(*args, **kwargs)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


# --- equality with the reference libraries ------------------------------------------------------------------
def test_fid_kid_is_equal_torch_fidelity(fake_weights, pair, offline_cache, tmp_path):
    import torch_fidelity
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    pred, ref = pair
    engine = MetricsEngine(("fid", "kid", "is"), backbones=[InceptionTF(fake_weights.state_dict,
                                                                         resize="torch-fidelity")],
                           seed=2020, is_splits=2, kid_subset_size=3, use_cache=False, enforce_min_n=False)
    report = _quiet_evaluate(engine, pred, ref)
    ours = {k.split("@")[0]: v for k, v in report.to_json()["metrics"].items()}

    tf = torch_fidelity.calculate_metrics(
        input1=_Images(pred), input2=_Images(ref), cuda=False, fid=False, kid=True, isc=True,
        feature_extractor_weights_path=str(fake_weights.state_dict), kid_subset_size=3, isc_splits=2,
        save_cpu_ram=True, verbose=False, cache=True, cache_root=str(tmp_path), input1_cache_name="pred",
        input2_cache_name="ref")
    # torch-fidelity sums its kernels in float32, the engine in float64: agreement to float32 round-off.
    assert _rel(ours["kid"]["value"], tf["kernel_inception_distance_mean"]) < 1e-4
    assert _rel(ours["kid"]["std"], tf["kernel_inception_distance_std"]) < 1e-3
    assert ours["kid"]["std"] > 0  # subsets of 3 of 4: the subset draws really vary
    assert _rel(ours["is"]["value"], tf["inception_score_mean"]) < 1e-3
    assert _rel(ours["is"]["std"], tf["inception_score_std"]) < 1e-3
    assert ours["is"]["value"] > 1.01  # the random weights give a non-trivial score

    # FID from the 2048-d features torch-fidelity extracted in that same call (its feature cache), with
    # its own statistics and formula, evaluated in the span basis (exact: see test_span_coordinates...).
    feats = [torch.load(tmp_path / f"{name}-inception-v3-compat-features-2048.pt", weights_only=True).double()
             .numpy() for name in ("pred", "ref")]
    a, b = span_coordinates(*feats)
    stats = [{"mu": x.mean(axis=0), "sigma": np.cov(x, rowvar=False)} for x in (a, b)]
    fid = fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]
    assert _rel(ours["fid"]["value"], fid) < 1e-4
    assert ours["fid"]["n"] == N and f"N={N}" in ours["fid"]["protocol"]
    assert "resize=torch-fidelity" in ours["fid"]["protocol"]


def test_fid_equals_torchmetrics(fake_weights, pair, offline_cache):
    from torchmetrics.image.fid import FrechetInceptionDistance, _compute_fid

    pred, ref = pair
    backbone = InceptionTF(fake_weights.state_dict, resize="torchmetrics")
    report = _quiet_evaluate(MetricsEngine(("fid",), backbones=[backbone], use_cache=False, enforce_min_n=False),
                             pred, ref)

    tm = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(fake_weights.state_dict),
                                  antialias=True)
    tm.update(torch.from_numpy(ref).permute(0, 3, 1, 2).contiguous(), real=True)
    tm.update(torch.from_numpy(pred).permute(0, 3, 1, 2).contiguous(), real=False)
    stats = []
    for kind in ("real", "fake"):  # torchmetrics' compute(), step by step
        n = getattr(tm, f"{kind}_features_num_samples")
        mean = (getattr(tm, f"{kind}_features_sum") / n).unsqueeze(0)
        cov = (getattr(tm, f"{kind}_features_cov_sum") - n * mean.t().mm(mean)) / (n - 1)
        stats.append((mean.squeeze(0), cov))
    # Its statistics are ours...
    ours = [report.outputs["inception-tf"][which]["pool3"] for which in ("ref", "pred")]
    for (mean, cov), f in zip(stats, ours):  # to float32 round-off (the engine uses channels-last kernels)
        assert np.linalg.norm(mean.numpy() - f.mean(axis=0)) / np.linalg.norm(mean.numpy()) < 1e-5
        reference = np.cov(f, rowvar=False)
        assert np.linalg.norm(cov.numpy() - reference) / np.linalg.norm(reference) < 1e-4
    # ...and its formula, applied in the orthonormal basis of the features' span, gives our FID.
    origin = ours[0].mean(axis=0)
    _, _, vt = np.linalg.svd(np.concatenate([ours[0] - origin, ours[1] - origin]), full_matrices=False)
    q = torch.from_numpy(vt.T)
    reduced = [((m - torch.from_numpy(origin)) @ q, q.T @ c @ q) for m, c in stats]
    fid = float(_compute_fid(reduced[0][0], reduced[0][1], reduced[1][0], reduced[1][1]))
    assert _rel(report.results["fid@inception-tf"].value, fid) < 1e-4


def test_fid_equals_clean_fid_with_its_torchscript(fake_weights, pair, offline_cache, tmp_path):
    from cleanfid.fid import fid_from_feats, get_folder_features
    from cleanfid.inception_torchscript import InceptionV3W
    from PIL import Image

    pred, ref = pair
    report = _quiet_evaluate(MetricsEngine(("fid",), backbones=[InceptionTF(fake_weights.torchscript)],
                                           use_cache=False, enforce_min_n=False), pred, ref)
    model = InceptionV3W(str(fake_weights.folder), download=False, resize_inside=False).eval()
    feats = []
    for name, images in (("pred", pred), ("ref", ref)):
        (tmp_path / name).mkdir()
        for i, img in enumerate(images):
            Image.fromarray(img).save(tmp_path / name / f"{i}.png")
        feats.append(get_folder_features(str(tmp_path / name), model=lambda x: model(x), num_workers=0,
                                         batch_size=N, device=torch.device("cpu"), mode="clean", verbose=False))
    fid = fid_from_feats(*span_coordinates(*[f.astype(np.float64) for f in feats]))
    assert _rel(report.results["fid@inception-tf"].value, float(fid)) < 1e-4
    assert "resize=clean" in report.results["fid@inception-tf"].protocol


def test_span_coordinates_preserve_fid():
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    from metrics.fid import fid_from_features

    rng = np.random.RandomState(0)
    a, b = rng.rand(20, 300) ** 2, rng.rand(15, 300) * 1.2
    ra, rb = span_coordinates(a, b)
    assert ra.shape == (20, 35) and rb.shape == (15, 35)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        full = fid_statistics_to_metric(*({"mu": x.mean(0), "sigma": np.cov(x, rowvar=False)} for x in (a, b)),
                                        verbose=False)["frechet_inception_distance"]
        # The full 300×300 eigenproblem of a rank-34 product carries ~1e-8 round-off of its own.
        assert _rel(fid_from_features(ra, rb), full) < 1e-6
        assert _rel(fid_from_features(a, b), full) < 5e-8
    big = rng.rand(40, 30)
    assert span_coordinates(big, big)[0] is not None and span_coordinates(big, big)[0].shape == (40, 30)


def test_clip_score_equals_open_clip_and_torchmetrics_formula(fake_weights, pair, offline_cache):
    import open_clip
    from PIL import Image
    from torchmetrics.multimodal import CLIPScore

    pred, _ = pair
    captions = [f"an image of a {c} square" for c in ("red", "blue", "green", "red")]
    clip = build_backbone("clip", model=str(fake_weights.clip_config), weights=fake_weights.clip_ckpt)
    hessel = _quiet_evaluate(MetricsEngine(("clip",), backbones=[clip]), pred, pred, captions=captions)
    tmv = _quiet_evaluate(MetricsEngine(("clip",), backbones=[clip], clip_variant="torchmetrics"), pred, pred,
                          captions=captions)
    name = f"clip@{fake_weights.clip_name}"

    model, _, preprocess = open_clip.create_model_and_transforms(fake_weights.clip_name,
                                                                 pretrained=str(fake_weights.clip_ckpt))
    tokenizer = open_clip.get_tokenizer(fake_weights.clip_name)
    model.eval()
    with torch.no_grad():
        img = model.encode_image(torch.stack([preprocess(Image.fromarray(i)) for i in pred])).double()
        txt = model.encode_text(tokenizer(captions)).double()
    cos = torch.nn.functional.cosine_similarity(img, txt).numpy()
    np.testing.assert_allclose(hessel.results[name].per_sample, 2.5 * np.maximum(cos, 0), rtol=1e-5, atol=1e-7)
    assert hessel.results[name].value == pytest.approx(float(np.mean(2.5 * np.maximum(cos, 0))), rel=1e-5)

    class Adapter(torch.nn.Module):  # open_clip behind the transformers-style interface CLIPScore calls
        def __init__(self):
            super().__init__()
            self.model = model
            self.config = SimpleNamespace()  # no text_config: nothing to truncate

        def get_image_features(self, pixel_values):
            return self.model.encode_image(pixel_values)

        def get_text_features(self, input_ids, attention_mask=None):
            return self.model.encode_text(input_ids)

    def processor(images=None, text=None, return_tensors="pt", padding=True):
        if images is not None:
            return {"pixel_values": torch.stack([preprocess(Image.fromarray(i.permute(1, 2, 0).numpy()))
                                                 for i in images])}
        ids = tokenizer(text)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    metric = CLIPScore(model_name_or_path=lambda: (Adapter(), processor))
    metric.update(torch.from_numpy(pred).permute(0, 3, 1, 2), captions)
    assert tmv.results[name].value == pytest.approx(float(metric.compute()), rel=1e-5, abs=1e-6)
    assert "torchmetrics" in tmv.results[name].protocol and "hessel" in hessel.results[name].protocol
    with pytest.raises(UserError, match="needs one caption per image"):
        MetricsEngine(("clip",), backbones=[clip]).evaluate(pred, pred)
    with pytest.raises(UserError, match="3 captions for 4 images"):
        MetricsEngine(("clip",), backbones=[clip]).evaluate(pred, pred, captions=captions[:3])


# --- identification, accuracy --------------------------------------------------------------------------------
def test_identification_of_the_references_themselves_is_one(fake_weights, pair, offline_cache):
    _, ref = pair
    backbones = [build_backbone("alexnet", weights=fake_weights.alexnet), build_backbone("proxy", seed=0)]
    engine = MetricsEngine(("nway", "acc"), backbones=backbones)
    same = engine.evaluate(ref, ref)
    for name in ("nway@alexnet2", "nway@alexnet5", "nway@proxy", "acc@proxy"):
        assert np.all(same.results[name].per_sample == 1.0), name
    shuffled = engine.evaluate(ref[::-1].copy(), ref)
    assert shuffled.results["nway@alexnet2"].value < 0.9
    assert shuffled.results["nway@proxy"].value < 0.9


# --- one pass per backbone, cache -----------------------------------------------------------------------------
def test_one_pass_per_backbone_shared_by_all_metrics_and_ref_cache(pair, offline_cache):
    pred, ref = pair
    proxy = build_backbone("proxy", seed=0)
    proxy.batch_size = 3  # two batches per image set of four
    calls = []
    proxy.net.register_forward_hook(lambda *a: calls.append(1))
    engine = MetricsEngine(("fid", "kid", "is", "nway", "acc"), backbones=[proxy], enforce_min_n=False)
    first = _quiet_evaluate(engine, pred, ref)
    assert len(calls) == 4  # pred + ref, 2 batches each — shared by five metrics
    assert {"fid@proxy", "kid@proxy", "is@proxy", "nway@proxy", "acc@proxy"} <= set(first.results)
    assert first.provenance["feature_cache"]["misses"] == 1 and first.provenance["feature_cache"]["hits"] == 0
    assert any(p.suffix == ".npz" for p in (offline_cache / "features").iterdir())

    calls.clear()
    second = _quiet_evaluate(MetricsEngine(("fid", "kid", "is", "nway", "acc"), backbones=[proxy],
                                           enforce_min_n=False), pred, ref)
    assert len(calls) == 2  # only pred: the stimuli's outputs come from the cache
    assert second.provenance["feature_cache"]["hits"] == 1
    for name, r in first.results.items():
        assert second.results[name].value == pytest.approx(r.value, rel=1e-12), name

    calls.clear()
    other = ref.copy()
    other[0, 0, 0] ^= 1  # one pixel differs: a different image set
    _quiet_evaluate(MetricsEngine(("fid",), backbones=[proxy]), pred, other)
    assert len(calls) == 4
    calls.clear()
    reseeded = build_backbone("proxy", seed=1)  # other weights, same images: the key differs
    reseeded.net.register_forward_hook(lambda *a: calls.append(1))
    _quiet_evaluate(MetricsEngine(("fid",), backbones=[reseeded]), pred, ref)
    assert len(calls) == 2


def test_references_are_embedded_only_for_metrics_that_compare_with_them(pair, offline_cache):
    pred, ref = pair
    proxy = build_backbone("proxy", seed=2)
    proxy.batch_size = 3  # two batches per image set of four
    seen = []
    proxy.net.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    report = _quiet_evaluate(MetricsEngine(("is",), backbones=[proxy], use_cache=False), pred, ref)
    assert len(seen) == 2 and "is@proxy" in report.results  # the score reads the reconstructions alone
    assert report.provenance["ref_image_set_sha256"] is not None  # the references are still recorded
    seen.clear()
    _quiet_evaluate(MetricsEngine(("is", "acc"), backbones=[proxy], use_cache=False), pred, ref)
    assert len(seen) == 4  # accuracy's targets are the classifier's answers on the stimuli


# --- report structure --------------------------------------------------------------------------------------------
def test_report_tables_json_and_small_sample_warning(pair, offline_cache, tmp_path):
    pred, ref = pair
    subjects = [1, 1, 2, 2]
    ids = [f"t{i}" for i in range(N)]
    engine = MetricsEngine(("ssim", "pixcorr", "fid", "kid", "is", "nway", "acc"),
                           backbones=[build_backbone("proxy", seed=0)], seed=3, enforce_min_n=False)
    with pytest.warns(SmallSampleWarning, match="N=4 < 2048"):
        report = engine.evaluate(pred, ref, subjects=subjects, trial_ids=ids)

    samples = report.per_sample
    assert list(samples.columns) == ["trial_id", "subject", "metric", "backbone", "value"]
    assert set(samples.metric) == {"ssim@pixels", "pixcorr@pixels", "nway@proxy", "acc@proxy"}
    assert len(samples) == 4 * N and list(samples.trial_id[:N]) == ids
    s = samples[samples.metric == "ssim@pixels"]
    assert s.value.mean() == pytest.approx(report.results["ssim@pixels"].value)

    sets = report.set_level
    assert list(sets.columns) == SET_LEVEL_COLUMNS
    assert set(sets.metric) == {"fid@proxy", "kid@proxy", "is@proxy"}
    assert sorted(map(str, sets[sets.metric == "fid@proxy"].subject)) == ["1", "2", "all"]

    doc = report.to_json()
    json.dumps(doc)  # plain JSON
    assert doc["n"] == N
    assert set(doc["metrics"]) == set(report.results)
    for name, entry in doc["metrics"].items():
        assert {"value", "ci95", "backbone", "protocol", "n"} <= set(entry)
        assert name.endswith("@" + entry["backbone"])
    ci = doc["metrics"]["ssim@pixels"]["ci95"]
    assert ci[0] <= doc["metrics"]["ssim@pixels"]["value"] <= ci[1]
    assert doc["metrics"]["fid@proxy"]["n"] == N
    prov = doc["provenance"]
    assert prov["weights_sha256"]["proxy"] and prov["seed"] == 3 and "torch" in prov["packages"]
    assert any("N=4 < 2048" in w for w in doc["warnings"])
    assert doc["metrics"]["acc@proxy"]["label"] == "10-way top-1"  # the proxy classifier has 10 classes
    report.write_json(tmp_path / "out.json")
    assert json.loads((tmp_path / "out.json").read_text())["n"] == N
    text = report.table()
    assert "fid@proxy" in text and "95% CI" in text


def test_seeded_and_deterministic_on_cpu(pair, offline_cache):
    pred, ref = pair
    runs = [_quiet_evaluate(MetricsEngine(("kid", "nway", "acc", "ssim"), backbones=[build_backbone("proxy")],
                                          seed=5, identification_n_way=3, use_cache=False, enforce_min_n=False),
                            pred, ref)
            for _ in range(2)]
    for name, r in runs[0].results.items():
        assert runs[1].results[name].value == r.value and runs[1].results[name].ci95 == r.ci95


# --- bad input ----------------------------------------------------------------------------------------------------
def test_bad_inputs_are_one_line_user_errors(pair, offline_cache):
    pred, ref = pair
    proxy = build_backbone("proxy")
    cases = [
        (lambda: MetricsEngine(("fid", "lpips"), backbones=[proxy]), "unknown"),
        (lambda: MetricsEngine(("clip",), backbones=[proxy]), "--clip-model"),
        (lambda: MetricsEngine(("ssim",)).evaluate(pred[:3], ref), "3 images but ref has 4"),
        (lambda: MetricsEngine(("ssim",)).evaluate(pred[..., 0], ref), "uint8 (N, H, W, 3)"),
        (lambda: MetricsEngine(("ssim",)).evaluate(pred.astype(np.float32), ref), "uint8 (N, H, W, 3)"),
        (lambda: MetricsEngine(("ssim",)).evaluate(pred, ref, subjects=[1, 2]), "subjects"),
    ]
    for make, match in cases:
        with pytest.raises(UserError, match=re.escape(match)) as err:
            make()
        assert "\n" not in str(err.value)


def test_missing_default_weights_name_the_file(offline_cache):
    with pytest.raises(WeightsNotFoundError, match="inception-2015-12-05") as err:
        MetricsEngine(("fid",))
    assert "\n" not in str(err.value)
    with pytest.raises(WeightsNotFoundError, match="resnet50-0676ba61.pth"):
        MetricsEngine(("acc",))


def test_runner_hook_with_synth_cnn(tmp_path, offline_cache):
    from eeg2img.datasets import load_dataset
    from eeg2img.datasets.synthetic import generate_synthetic
    from metrics.backbones.indomain import SynthCNNConfig
    from metrics.engine import evaluate_for_runner

    ds = load_dataset(generate_synthetic(tmp_path / "d", subjects=2, classes=4, images_per_class=4, image_size=32,
                                         n_channels=16, n_samples=480, progress=False))
    test = ds.subset(np.arange(12))
    ref = test.load_images()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        report = evaluate_for_runner(
            perturbed(ref), ref, metrics=("ssim", "fid", "is", "nway", "acc"), trial_ids=test.trial_ids.astype(str),
            subjects=test.subjects, captions=None, dataset=ds, backbone="synth-cnn", cache_dir=tmp_path / "c",
            seed=0, backbone_options={"config": SynthCNNConfig(min_steps=20, epochs=1)})
    assert set(report.per_sample.metric) == {"ssim@pixels", "nway@synth-cnn", "acc@synth-cnn"}
    # Set-level metrics are left to the runner, which pools them over folds: only their inputs come back.
    assert report.set_level.empty and set(report.set_inputs) == {"fid@synth-cnn", "is@synth-cnn"}
    assert [len(a) for a in report.set_inputs["fid@synth-cnn"]] == [len(test), len(test)]
    assert report.labels["acc@synth-cnn"] == "4-way top-1"  # a 4-class dataset's accuracy is 4-way
    assert len(report.provenance["weights_sha256"]["synth-cnn"]) == 64


# --- set-level metrics below their minimum N -------------------------------------------------------------------
@pytest.mark.parametrize(("metric", "minimum"), [("is", 20), ("fid", 50), ("kid", 20)])
def test_set_level_metrics_are_never_reported_below_their_minimum_n(metric, minimum, offline_cache):
    from metrics.vocabulary import spec

    assert spec(metric).min_n == minimum
    images = smooth_images(2 * minimum, 16, seed=7)
    subjects = np.array([1] * (2 * minimum - 1) + [2])  # subject 2 has a single trial: no row of its own
    engine = MetricsEngine((metric,), backbones=[build_backbone("proxy", seed=0)], use_cache=False)
    below = _quiet_evaluate(engine, images[: minimum - 1], images[::-1][: minimum - 1])
    result = below.results[f"{metric}@proxy"]
    assert result.status == "N < min" and np.isnan(result.value) and result.ci95 is None
    assert below.to_json()["metrics"][f"{metric}@proxy"]["value"] is None  # null in JSON, never a number
    assert "N < min" in below.table()
    at = _quiet_evaluate(engine, images, images[::-1], subjects=subjects)
    assert at.results[f"{metric}@proxy"].status == "ok" and np.isfinite(at.results[f"{metric}@proxy"].value)
    assert list(at.set_level.subject) == ["all", 1]
    if metric == "is":
        assert at.results["is@proxy"].label.endswith(f"4 splits, N={2 * minimum}")  # 10 images per split


def test_is_splits_hold_at_least_ten_images():
    from metrics.vocabulary import is_splits_for

    assert [is_splits_for(n) for n in (5, 19, 20, 39, 60, 100, 5000)] == [0, 1, 2, 3, 6, 10, 10]


# --- one path per metric ------------------------------------------------------------------------------------------
def test_the_engine_reports_what_the_proven_metric_classes_compute(pair, offline_cache):
    """Every value the engine reports equals the torchmetrics-style class (the one the reference tests prove)
    fed with the same images or backbone outputs: there is no second implementation inside the engine."""
    from metrics import FID, KID, SSIM, Identification, InceptionScore, NWayAccuracy, PixCorr
    from metrics.set_level import SetLevelOptions

    pred, ref = pair
    backbone = build_backbone("proxy")
    engine = MetricsEngine(("ssim", "pixcorr", "fid", "kid", "is", "nway", "acc"), backbones=[backbone], seed=3,
                           identification_n_way=4, acc_n_way=5, use_cache=False, enforce_min_n=False, n_boot=0,
                           set_n_boot={"fid": 1, "kid": 1, "is": 1})
    report = _quiet_evaluate(engine, pred, ref)
    p, r = backbone.extract(pred), backbone.extract(ref)
    n = len(pred)

    def through(metric, *updates):
        for args in updates:
            metric.update(*args)
        value = metric.compute()
        return value[0] if isinstance(value, tuple) else value

    expected = {
        "ssim@pixels": through(SSIM(protocol="mindeye", size=425), (pred, ref)),
        "pixcorr@pixels": through(PixCorr(size=425), (pred, ref)),
        "fid@proxy": through(FID(), (p["features"], False), (r["features"], True)),
        "kid@proxy": through(KID(subsets=100, subset_size=min(1000, n), seed=3), (p["features"], False),
                             (r["features"], True)),
        "is@proxy": through(InceptionScore(splits=SetLevelOptions(enforce_min_n=False).splits(n)), (p["logits"],)),
        "nway@proxy": through(Identification(n_way=4, seed=3), (p["features"], r["features"])),
        "acc@proxy": through(NWayAccuracy(n_way=5, seed=3), (p["logits"], r["logits"].argmax(1))),
    }
    got = {name: report.results[name].value for name in expected}
    fid = got.pop("fid@proxy"), expected.pop("fid@proxy")
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # FID with fewer samples than feature dimensions is computed in the samples' span (an exact identity,
    # tests/test_metrics_core_distributions.py): equal up to the round-off of two float64 routes.
    assert fid[0] == pytest.approx(fid[1], rel=1e-5, abs=1e-8)
    # ...and a planted change in one input moves the engine and the class alike (the check can fail).
    assert got["ssim@pixels"] != pytest.approx(through(SSIM(protocol="mindeye", size=425), (ref, ref)), rel=1e-3)
