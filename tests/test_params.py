"""Method parameters: constructors only store, ``check_params`` validates (in build_method and fit),
``get_params`` round-trips, and settings groups declare each shared default once."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest

from eeg2img.errors import UserError
from eeg2img.methods import _REGISTRY, available_methods, build_method, defining_module, method_signature
from eeg2img.params import settings_of, takes_settings

# One bad value per method, of a parameter the method checks (the other values stay the defaults).
BAD = {
    "floor-random": {"seed": -1}, "floor-mean": {"image_size": 0}, "floor-class-mean": {"seed": 1.5},
    "retrieval-ridge": {"alpha": -1.0}, "retrieval-triplet": {"margin": -0.1}, "embedding-ridge": {"space": "clip"},
    "nice": {"temperature": 0.0}, "atm": {"select": "test"}, "oracle-embedding": {"space": "pixels"},
    "brain2image-vae": {"beta": float("nan")}, "brain2image-gan": {"ema": 1.0},
    "latent-ridge": {"strength": 1.5}, "oracle-caption": {"demo_size": 4}, "oracle-saliency": {"blur_sigma": -1.0},
    "dreamdiffusion": {"tune": "lora"}, "neuroimagen": {"caption": "gpt"}, "neuroimagen-label": {"gan_epochs": 0},
    "neuroimagen-blip": {"encoder": "transformer"}, "neuroimagen-saliency": {"caption": "none", "use_saliency": False},
    "neuroimagen-blip-saliency": {"guidance_scale": -1.0},
}


def test_every_shipped_method_has_a_bad_value_case():
    shipped = {n for n in available_methods() if (defining_module(n) or "").split(".")[0] in ("baselines", "reconstruct")}
    assert set(BAD) == shipped


@pytest.mark.parametrize("name", sorted(BAD))
def test_round_trip_of_get_params_gives_an_equal_method(name):
    method = build_method(name)
    params = method.get_params()
    assert list(params) == [p for p in method_signature(name).parameters if p != "self"]
    clone = type(method)(**params)
    assert clone.get_params() == params


@pytest.mark.parametrize("name", sorted(BAD))
def test_constructor_only_stores_and_fit_checks(name, tiny_synth):
    bad = BAD[name]
    method = _REGISTRY[name](**bad)  # the constructor itself: stores, does not judge
    stored = method.get_params()
    assert all(stored[k] is v for k, v in bad.items())
    key = next(iter(bad))
    with pytest.raises(UserError, match=f"{name}: {key}=|{name}: caption='none'"):
        method.check_params()
    with pytest.raises(UserError, match=name):
        build_method(name, **bad)  # what a config goes through: refused before any work
    train = tiny_synth.subset(np.arange(12))
    with pytest.raises(UserError, match=name):
        method.fit(train)  # code that constructs directly is refused at fit, before training


# ------------------------------------------------------------------------------------ settings groups


@dataclasses.dataclass(frozen=True)
class _Sampler:
    steps: int = 20
    device: str = "auto"


@dataclasses.dataclass(frozen=True)
class _Model:
    width: int = 8
    device: str = "auto"


def test_takes_settings_adds_each_field_once_and_stores_it():
    @takes_settings(_Sampler, _Model, exclude=("width",))
    class M:
        def __init__(self, seed: int = 0):
            self.seed = seed

    sig = inspect.signature(M)
    assert list(sig.parameters) == ["seed", "steps", "device"]  # device once, width excluded
    assert sig.parameters["steps"].kind is inspect.Parameter.KEYWORD_ONLY
    m = M(3, steps=5)
    assert (m.seed, m.steps, m.device) == (3, 5, "auto")
    assert settings_of(_Model, m) == _Model(width=8, device="auto")  # an excluded field keeps its default
    with pytest.raises(TypeError):
        M(width=4)


def test_takes_settings_refuses_a_field_with_two_defaults_or_declared_twice():
    @dataclasses.dataclass(frozen=True)
    class Other:
        device: str = "cpu"

    with pytest.raises(TypeError, match="two defaults"):
        takes_settings(_Sampler, Other)(type("M", (), {"__init__": lambda self: None}))

    class Declares:
        def __init__(self, steps: int = 3):
            self.steps = steps

    with pytest.raises(TypeError, match="itself"):
        takes_settings(_Sampler)(Declares)


def test_the_diffusion_defaults_are_declared_once():
    """Every method that decodes through the shared model takes the settings' defaults from one dataclass."""
    from reconstruct.stages import DiffusionSettings, EncoderSettings

    for group, users in ((DiffusionSettings, ("neuroimagen", "oracle-saliency", "latent-ridge")),
                         (EncoderSettings, ("neuroimagen", "retrieval-triplet"))):
        defaults = group()
        for name in users:
            sig = method_signature(name).parameters
            assert {f.name: sig[f.name].default for f in dataclasses.fields(group)} == dataclasses.asdict(defaults)
    # text-to-image methods do not expose the img2img strength
    assert "strength" not in method_signature("oracle-caption").parameters
    assert "strength" not in method_signature("dreamdiffusion").parameters
