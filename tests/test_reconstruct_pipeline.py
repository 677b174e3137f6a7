"""NeuroImagen end to end: fit on the synthetic set, reconstruct blinded test trials, persist, ablate."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from eeg2img.errors import LeakageError, UserError
from eeg2img.methods import available_methods, build_method
from reconstruct.pipeline import NeuroImagen
from reconstruct.stages import clear_memo

# Small enough for the test budget (the defaults train longer).
FAST = dict(encoder="eegnet", encoder_epochs=30, gan_epochs=60, regressor_epochs=60, steps=8, strength=0.5,
            demo_vae_steps=300, demo_unet_steps=450, device="cpu", seed=0)
VARIANTS = ["neuroimagen", "neuroimagen-saliency", "neuroimagen-label", "neuroimagen-blip",
            "neuroimagen-blip-saliency"]


def _split_by_image(ds, held_per_class=2):
    ids, labels = np.asarray(ds.image_ids), np.asarray(ds.labels)
    held = {i for c in np.unique(labels) for i in sorted(set(ids[labels == c]))[:held_per_class]}
    test = np.array([i in held for i in ids])
    return ds.subset(np.flatnonzero(~test)), ds.subset(np.flatnonzero(test))


@pytest.fixture(scope="module")
def clear_synth(tmp_path_factory):
    """Synthetic set with a strong evoked response and four classes of distinct colours.

    The tiny_synth fixture's realistic SNR leaves a pipeline trained for seconds too little signal to
    show; this set isolates what the test is about: information flowing from EEG to the images.
    """
    from eeg2img.datasets import load_dataset
    from eeg2img.datasets.synthetic import generate_synthetic

    out = tmp_path_factory.mktemp("clear_synth")
    generate_synthetic(out, subjects=3, classes=4, images_per_class=6, seed=0, image_size=32, progress=False,
                       signal_strength=4.0)
    return load_dataset(out / "eeg_synth.pth")


@pytest.fixture(scope="module")
def fold(clear_synth):
    return _split_by_image(clear_synth)


@pytest.fixture(scope="module")
def fitted(fold, tmp_path_factory):
    clear_memo()
    train, test = fold
    method = build_method("neuroimagen", **FAST)
    method.cache_dir = str(tmp_path_factory.mktemp("neuroimagen_cache"))
    method.fit(train, test)
    return method


def colour_signature(images: np.ndarray) -> np.ndarray:
    """Saturation-weighted chromaticity: the object's colour, whatever the grey background."""
    x = images.reshape(len(images), -1, 3).astype(np.float64)
    weight = (x.max(-1) - x.min(-1))[..., None] ** 2  # grey pixels weigh nothing
    rgb = (weight * x).sum(1) / (weight.sum(1) + 1e-9)
    return rgb / (rgb.sum(1, keepdims=True) + 1e-9)


def class_accuracy(images: np.ndarray, labels: np.ndarray, train) -> float:
    """In-domain measure: nearest class mean of the training stimuli's colour signatures."""
    ref = colour_signature(train.load_images())
    train_labels = np.asarray(train.labels)
    classes = np.unique(train_labels)
    means = np.stack([ref[train_labels == c].mean(0) for c in classes])
    pred = classes[((colour_signature(images)[:, None] - means[None]) ** 2).sum(-1).argmin(1)]
    return float((pred == labels).mean())


def test_variants_are_registered_with_the_table3_settings():
    assert set(VARIANTS) <= set(available_methods())
    expected = {"neuroimagen": ("label", True), "neuroimagen-saliency": ("none", True),
                "neuroimagen-label": ("label", False), "neuroimagen-blip": ("blip", False),
                "neuroimagen-blip-saliency": ("blip", True)}
    for name, (caption, saliency) in expected.items():
        method = build_method(name)
        assert isinstance(method, NeuroImagen) and method.name == name and not method.is_oracle
        assert (method.caption, method.use_saliency) == (caption, saliency)
        assert method.get_params()["caption"] == caption  # get_params reads the variant's own defaults
        assert set(method.get_params()) == set(inspect.signature(NeuroImagen).parameters)
    with pytest.raises(UserError, match="caption"):
        build_method("neuroimagen", caption="tags")
    with pytest.raises(UserError, match="nothing decoded"):
        build_method("neuroimagen", caption="none", use_saliency=False)


def test_reconstructions_beat_the_random_training_image_floor(fitted, fold):
    train, test = fold
    out = fitted.reconstruct(test.blind())
    assert out.shape == (len(test), 32, 32, 3) and out.dtype == np.uint8
    labels = np.asarray(test.labels)
    floor = train.load_images()[np.random.default_rng(0).integers(0, len(train), len(test))]
    assert class_accuracy(test.load_images(), labels, train) >= 0.9  # the measure itself works
    floor_acc = class_accuracy(floor, labels, train)
    assert class_accuracy(out, labels, train) >= floor_acc + 0.25
    assert fitted.fit_info_["val_encoder_accuracy"] >= 0.6  # chance 0.25


def test_saliency_stage_carries_stimulus_information(fitted, fold):
    _, test = fold
    maps = fitted.saliency_maps(test.blind()).astype(np.float64)
    stimuli = test.load_images(size=maps.shape[1]).astype(np.float64)
    labels = np.asarray(test.labels)

    def corr(a, b):
        a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(1, keepdims=True)
        b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(1, keepdims=True)
        return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))

    other = np.array([np.flatnonzero(labels != y)[0] for y in labels])
    assert corr(maps, stimuli).mean() > corr(maps, stimuli[other]).mean()


def test_reconstruct_uses_only_the_blinded_view_and_is_seeded(fitted, fold):
    _, test = fold
    blind = test.blind()
    with pytest.raises(LeakageError):
        blind.labels  # noqa: B018 - the view the method gets hides labels
    a = fitted.reconstruct(blind)
    b = fitted.reconstruct(blind.subset(np.arange(len(blind))[::-1]))[::-1]
    np.testing.assert_array_equal(a, b)  # per-trial seeds: order and batch do not matter


def test_save_load_reconstruct_gives_identical_images(fitted, fold, tmp_path):
    _, test = fold
    fitted.save(tmp_path / "model")
    loaded = NeuroImagen.load(tmp_path / "model")
    assert type(loaded) is type(fitted) and loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(fitted.reconstruct(test.blind()), loaded.reconstruct(test.blind()))
    assert (tmp_path / "model" / "diffusion" / "model_index.json").is_file()  # demo model travels along
    with pytest.raises(UserError, match="method.json"):
        NeuroImagen.load(tmp_path / "nothing")


def test_ablations_share_stages_and_run(fitted, fold):
    train, test = fold
    stimuli_size = 32
    outputs = {}
    for name in VARIANTS[1:]:
        method = build_method(name, **FAST)
        method.cache_dir = fitted.cache_dir
        method.fit(train)
        assert method.encoder_ is fitted.encoder_  # trained once per fold, shared in-process
        assert method.sd_source_ == fitted.sd_source_
        assert (method.gan_ is None) != method.use_saliency
        assert (method.regressor_ is None) == (method.caption == "none")
        outputs[name] = method.reconstruct(test.blind())
        assert outputs[name].shape == (len(test), stimuli_size, stimuli_size, 3)
    assert not np.array_equal(outputs["neuroimagen-label"], outputs["neuroimagen-blip"])


def test_disk_cache_is_reused_by_a_fresh_process_state(fitted, fold):
    train, test = fold
    clear_memo()  # as if a new process: only the disk cache remains
    again = build_method("neuroimagen", **FAST)
    again.cache_dir = fitted.cache_dir
    again.fit(train)
    np.testing.assert_array_equal(again.reconstruct(test.blind()), fitted.reconstruct(test.blind()))


def test_fit_rejects_unusable_training_data(fold):
    train, test = fold
    with pytest.raises(UserError, match="empty"):
        build_method("neuroimagen", **FAST).fit(train.subset([]))
    with pytest.raises(UserError, match="blinded"):
        build_method("neuroimagen", **FAST).fit(test.blind())
    with pytest.raises(UserError, match="not fitted"):
        build_method("neuroimagen").reconstruct(test.blind())


def test_caption_steers_the_class_through_img2img_at_the_default_strength(fitted, fold):
    # Table 3's point: the caption carries the semantics. At too low a strength img2img only polishes the
    # saliency map and the caption is ignored (the demo's label + saliency and saliency-only once agreed
    # to three decimals). Paired on the same maps and seeds: the true class is recognised less often when
    # the caption names another class, and that drop is larger at the default strength than at a lower one.
    # (With 150 U-Net steps this test's model ignored captions at every strength: drop 0.58 → 0.62.)
    train, test = fold
    default = inspect.signature(NeuroImagen.__init__).parameters["strength"].default
    method = build_method("neuroimagen", **{**FAST, "strength": default})
    method.cache_dir = fitted.cache_dir
    method.fit(train)
    blind = test.blind()
    maps = fitted.saliency_maps(blind)
    labels = np.asarray(test.labels)
    classes = np.unique(labels)
    other = classes[(np.searchsorted(classes, labels) + 1) % len(classes)]
    names = dict(zip(np.asarray(train.labels), train.label_captions()))
    embed = method.caption_embedder_for(method.diffusion_).embed
    own, swapped = embed([names[c] for c in labels]), embed([names[c] for c in other])
    seeds = method.trial_seeds(blind)

    def drop(diffusion, uncond) -> float:
        keep = class_accuracy(diffusion.generate(own, maps, uncond, seeds), labels, train)
        return keep - class_accuracy(diffusion.generate(swapped, maps, uncond, seeds), labels, train)

    at_default = drop(method.diffusion_, method.uncond_embeds_)
    at_low = drop(fitted.diffusion_, fitted.uncond_embeds_)  # FAST's strength 0.5, below the default
    # measured: 0.50 at the default (0.67 → 0.17 of 24 trials), 0.25 at 0.5, 0.0 at 0.2
    assert at_default > max(at_low, 0.25), (at_default, at_low)
