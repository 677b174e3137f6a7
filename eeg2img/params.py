"""Method parameters: the one-line checks ``check_params`` runs, and settings groups shared by methods.

scikit-learn's rule: a constructor only stores its arguments; they are checked when the method is built
through :func:`eeg2img.methods.build_method` (before any work of a grid) and again at the start of
``fit`` (for code that constructs a method directly).

A *settings group* is a frozen dataclass of parameters that several methods take with the same meaning
and defaults (the diffusion stage's eight, the triplet encoder's six). :func:`takes_settings` adds a
group's fields to a method's constructor signature, so each default is declared once, in the dataclass,
while ``get_params``, the config checker and ``repr`` still see flat keyword parameters.

Kept free of torch so the floors import nothing heavier than numpy.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from eeg2img.errors import UserError

S = TypeVar("S")


# ------------------------------------------------------------------------------------ one-line checks


def check_int(owner: str, name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise UserError(f"{owner}: {name}={value!r} is invalid; pass an integer ≥ {minimum}")
    return int(value)


def check_float(owner: str, name: str, value: Any, low: float = 0.0, high: float = float("inf"),
                low_open: bool = True) -> float:
    ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool) and np.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bound = f"{'>' if low_open else '≥'} {low}" + (f" and ≤ {high}" if np.isfinite(high) else "")
        raise UserError(f"{owner}: {name}={value!r} is invalid; pass a finite number {bound}")
    return float(value)


def check_choice(owner: str, name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise UserError(f"{owner}: {name}={value!r} is invalid; choose one of {', '.join(map(repr, choices))}")
    return str(value)


def check_optional_int(owner: str, name: str, value: Any, minimum: int = 1) -> int | None:
    return None if value is None else check_int(owner, name, value, minimum)


def check_seed(owner: str, value: Any) -> int:
    return check_int(owner, "seed", value, minimum=0)


def check_device(owner: str, device: Any) -> str:
    """'auto' or a device torch can name ('cpu', 'cuda[:N]'). Whether it exists is checked where the method
    runs (``resolve_device`` in ``fit``): the machine that checks a config may not be the one with the GPU."""
    import torch

    bad = UserError(f"{owner}: device={device!r} is invalid; pass 'auto', 'cpu' or 'cuda[:N]'")
    if not isinstance(device, str):
        raise bad
    if device != "auto":
        try:
            torch.device(device)
        except RuntimeError:
            raise bad from None
    return device


# ------------------------------------------------------------------------------------ settings groups


def settings_of(group: type[S], owner: Any) -> S:
    """The ``group`` settings an object holds as attributes (fields it lacks take the group's defaults)."""
    values = {f.name: getattr(owner, f.name) for f in dataclasses.fields(group) if hasattr(owner, f.name)}
    return group(**values)


def takes_settings(*groups: type, exclude: Sequence[str] = ()):
    """Class decorator: the constructor also takes every field of ``groups`` (keyword-only) and stores it.

    The decorated ``__init__`` declares only the method's own parameters; a field named in ``exclude``
    is one the method does not expose (it keeps the group's default through :func:`settings_of`).
    """

    def fields_of() -> list[dataclasses.Field]:
        seen: dict[str, dataclasses.Field] = {}
        for group in groups:
            for f in dataclasses.fields(group):
                if f.name in exclude:
                    continue
                if f.name in seen and seen[f.name].default != f.default:
                    raise TypeError(f"settings field {f.name!r} has two defaults in {[g.__name__ for g in groups]}")
                seen.setdefault(f.name, f)
        return list(seen.values())

    def deco(cls):
        own = cls.__init__
        own_sig = inspect.signature(own)
        fields = fields_of()
        clash = sorted(set(own_sig.parameters) & {f.name for f in fields})
        if clash:
            raise TypeError(f"{cls.__name__}.__init__ declares settings field(s) {clash} itself")
        extra = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
                 for f in fields]
        own_params = [p for p in own_sig.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
        defaults = {f.name: f.default for f in fields}

        @functools.wraps(own)
        def __init__(self, *args, **kwargs):
            settings = {k: kwargs.pop(k) for k in list(kwargs) if k in defaults}
            own(self, *args, **kwargs)
            for name, default in defaults.items():
                setattr(self, name, settings.get(name, default))

        __init__.__signature__ = own_sig.replace(parameters=own_params + extra)
        del __init__.__wrapped__  # inspect.signature must read __signature__, not the undecorated function
        cls.__init__ = __init__
        return cls

    return deco
