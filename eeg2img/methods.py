"""The method interface: scikit-learn style estimators that turn EEG into images.

``method.fit(train, val)`` then ``method.reconstruct(test) -> uint8 (N, H, W, 3)``.
Constructor arguments are the configuration (``get_params`` reads them back, the run store hashes
them); everything learned lives on the object; ``seed`` fixes every random choice.

``reconstruct`` receives a *blinded* view (see :meth:`EEGDataset.blind`) unless the class sets
``is_oracle = True``: oracles are upper bounds that may look at the true stimulus or label, and are
marked as such in every table.

Methods register themselves by name with :func:`register` so the runner and config files can build
them: ``build_method("floor-mean", seed=0)``. The packages that hold them are found through the
``eeg2img.methods`` entry-point group (``pyproject.toml``), so this module never names them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from eeg2img.datasets.base import EEGDataset
from eeg2img.errors import UserError


class Method:
    """Base class: ``fit`` → ``reconstruct``; subclasses keep constructor args as attributes."""

    name: ClassVar[str] = "method"
    is_oracle: ClassVar[bool] = False
    # The name of a costly component this method shares with other methods trained on the same
    # images (the demo diffusion model): the runner groups a fold's methods by it and starts the
    # first job that needs it early, so parallel workers do other work while it is built.
    shared_stage: ClassVar[str | None] = None
    # Part of every cell key: bump it when a change of the code changes the results at the same parameters
    # (a changed default changes the key by itself, since the key covers every parameter's value).
    version: ClassVar[str] = "1"
    # True for a method that runs on CUDA when its ``device`` parameter asks for it ("auto" or "cuda[:N]"):
    # the Ray executor then asks for a GPU for its fold job when the cluster has one.
    uses_cuda: ClassVar[bool] = False
    # The benchmark track a method is built for: "reconstruction" (EEG → image, every dataset) or "zero-shot"
    # (EEG → image embedding, scored by retrieval; THINGS-EEG2's leaderboard). The demo of a track runs its
    # methods; a grid config may run any method on any protocol.
    track: ClassVar[str] = "reconstruction"

    def fit(self, train: EEGDataset, val: EEGDataset | None = None) -> Method:
        """Check the parameters (:meth:`check_params`), then learn from ``train``."""
        raise NotImplementedError

    def prefit(self, train: EEGDataset, val: EEGDataset | None = None) -> None:
        """Optional: train, through the stage cache, the parts of ``fit`` that do not need the shared stage.

        The runner calls it in a job of its own ahead of the fold's cells, so a pool trains these parts
        while another worker builds the shared stage. ``fit`` must give the same result whether this ran
        or not (it finds the parts cached). Default: nothing to do.
        """

    def check_params(self) -> None:
        """Raise a one-line UserError for a parameter value the method cannot use (scikit-learn's rule:
        the constructor only stores; :func:`build_method` and ``fit`` call this)."""

    def reconstruct(self, test: EEGDataset) -> np.ndarray:
        raise NotImplementedError

    # Optional, for the zero-shot track: a method that predicts an image embedding per trial names the
    # space it predicts into (``metrics.embedding_spaces``); the runner embeds the candidate test images in
    # that space and scores retrieval (top-1, top-5, k-way) from ``embed``. None: the method only reconstructs,
    # and retrieval is scored from its reconstructions embedded in the grid's space.
    @property
    def embedding_space(self) -> str | None:
        return None

    def embed(self, test: EEGDataset) -> np.ndarray:
        """float32 ``(N, D)``: the predicted image embedding of each trial of ``test`` (blinded, like reconstruct)."""
        raise NotImplementedError(f"{self.name} predicts no embedding")

    # Shared, cached work (e.g. an encoder trained once per fold) is requested through this hook;
    # the runner passes a cache directory unique to (dataset, fold, seed) before ``fit``.
    cache_dir = None

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind in kinds]

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


_REGISTRY: dict[str, Callable[..., Method]] = {}
_QUICK: dict[str, dict[str, Any]] = {}


def register(name: str, factory: Callable[..., Method] | None = None, *, quick: dict[str, Any] | None = None):
    """Register a method factory under ``name`` (usable as a decorator).

    ``quick`` holds the parameters that make the method fast enough for ``eeg2img demo --quick``
    (fewer epochs or diffusion steps); they are ordinary constructor arguments.
    """

    def deco(f):
        if name in _REGISTRY and _REGISTRY[name] is not f:
            raise ValueError(f"method {name!r} registered twice")
        _REGISTRY[name] = f
        _QUICK[name] = dict(quick or {})
        return f

    return deco(factory) if factory is not None else deco


PLUGIN_GROUP = "eeg2img.methods"
_plugins_loaded = False


def _load_plugins() -> None:
    """Import every module declared under the ``eeg2img.methods`` entry-point group (once per process).

    Importing a plugin registers its methods. A plugin whose own module is missing (an optional
    package not installed) is skipped; an error inside an installed plugin propagates.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        try:
            ep.load()
        except ModuleNotFoundError as err:
            if err.name != ep.value.split(":")[0]:
                raise
    _plugins_loaded = True


def available_methods() -> list[str]:
    _load_plugins()
    return sorted(_REGISTRY)


def quick_params(name: str) -> dict[str, Any]:
    """The parameters registered for the quick demo (empty when the defaults are already quick)."""
    _load_plugins()
    return dict(_QUICK.get(name, {}))


def defining_module(name: str) -> str | None:
    """The module that registered ``name`` (what a fresh worker process imports to know the method)."""
    _load_plugins()
    factory = _REGISTRY.get(name)
    return None if factory is None else getattr(factory, "__module__", None)


def method_track(name: str) -> str:
    """The registered method's track (``Method.track``; "reconstruction" for a factory that declares none)."""
    _load_plugins()
    return getattr(_REGISTRY.get(name), "track", "reconstruction")


def shared_stage(name: str) -> str | None:
    """The registered method's :attr:`Method.shared_stage` (None for an unknown name or a plain factory)."""
    _load_plugins()
    return getattr(_REGISTRY.get(name), "shared_stage", None)


def method_signature(name: str) -> inspect.Signature | None:
    """The registered factory's signature (a class's constructor), or None when it cannot be read."""
    _load_plugins()
    try:
        return inspect.signature(_REGISTRY[name])
    except (KeyError, TypeError, ValueError):
        return None


def build_method(name: str, **params: Any) -> Method:
    _load_plugins()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or (f"none (no {PLUGIN_GROUP!r} entry points: install the package "
                                                 "with pip install -e .)")
        raise UserError(f"unknown method {name!r}; known methods: {known}")
    try:
        method = _REGISTRY[name](**params)
    except TypeError as err:
        raise UserError(f"method {name!r}: bad parameters ({err})") from None
    check = getattr(method, "check_params", None)
    if check is not None:
        check()
    return method
