"""Read a pickled object — inside a ``.npy`` file or as a plain pickle — without running code from it.

Some released datasets (THINGS-EEG2's preprocessed EEG) are Python dicts saved with ``np.save``:
the ``.npy`` header declares a 0-d object array and the payload is a pickle. Re-preprocessed copies
(ATM and its forks) write the same dict with plain ``pickle.dump`` under the same ``.npy`` name.
``np.load(..., allow_pickle=True)`` would execute whatever either pickle names, so we parse the
header ourselves (or recognise a bare pickle) and unpickle with an allow-list that admits only
numpy's array-reconstruction callables. Plain Python containers (dict, list, str, numbers) need no
globals, so they pass; anything else — a class, ``os.system``, ``builtins.eval`` — is refused
before it is called.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from eeg2img.errors import UserError

try:  # numpy >= 2 moved the internals to numpy._core
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

# Files written by numpy 1.x name ``numpy.core``, by numpy 2.x ``numpy._core``; both resolve to the
# objects of the installed numpy, looked up here rather than imported by name from the pickle.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
    # pickle protocol 5 (Python 3.14's default for pickle.dump) rebuilds arrays from a byte buffer
    ("numpy.core.numeric", "_frombuffer"): _numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _numeric._frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and plain containers, and nothing else."""

    def __init__(self, file, *, source: str = "pickle"):
        super().__init__(file, encoding="latin1")  # latin1 keeps numpy arrays pickled by Python 2 intact
        self._source = source

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UserError(
                f"{self._source}: refusing to unpickle {module}.{name}: the file may carry code; "
                "use the file as released by the dataset authors"
            ) from None

    def persistent_load(self, pid):
        raise UserError(f"{self._source}: refusing to unpickle a persistent reference: the file may carry code")


NPY_MAGIC = b"\x93NUMPY"
PICKLE_PROTO = b"\x80"  # the PROTO opcode that starts every pickle of protocol 2 or later
# What unpickling a damaged or hostile stream can raise besides UserError; each becomes one line.
_CORRUPT = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    OverflowError,
    MemoryError,
    OSError,
)


def load_pickled_npy(path: str | os.PathLike) -> object:
    """The object stored by ``np.save(path, obj, allow_pickle=True)`` for a non-array ``obj``.

    Raises :class:`UserError` when the file is missing, is not a ``.npy`` file, holds a plain array
    instead of a pickled object, is truncated, or names any global outside the numpy allow-list.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found; check the path")
    try:
        with open(path, "rb") as f:
            dtype, shape = _read_header(f, path)
            if dtype != np.dtype(object) or shape != ():
                kind = "an object" if dtype == np.dtype(object) else f"a plain {dtype}"
                raise UserError(
                    f"{path}: holds {kind} array of shape {shape}, not a pickled dict; "
                    "expected the file as saved by the dataset authors"
                )
            obj = RestrictedUnpickler(f, source=str(path)).load()
    except UserError:
        raise
    except _CORRUPT as err:
        raise _corrupt(path, err) from None
    # np.save wraps a non-array object in a 0-d object array; unwrap it as np.load(...).item() would
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    return obj


def load_pickled_object(path: str | os.PathLike) -> tuple[object, str]:
    """The object in ``path``, whether written by ``np.save`` (a ``.npy`` header, then a pickle) or by
    plain ``pickle.dump`` (protocol 2 or later); returns it with ``"npy"`` or ``"pickle"``.

    Both go through :class:`RestrictedUnpickler`; a file that is neither is one :class:`UserError`.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found; check the path")
    try:
        with open(path, "rb") as f:
            head = f.read(len(NPY_MAGIC))
            if head[:1] == PICKLE_PROTO:
                f.seek(0)
                return RestrictedUnpickler(f, source=str(path)).load(), "pickle"
            if head != NPY_MAGIC:
                raise UserError(
                    f"{path}: neither a .npy file nor a pickle (starts with {head[:8]!r}); "
                    "expected the file as saved by the dataset authors or by their preprocessing scripts"
                )
    except UserError:
        raise
    except _CORRUPT as err:
        raise _corrupt(path, err) from None
    return load_pickled_npy(path), "npy"


def _corrupt(path: Path, err: BaseException) -> UserError:
    return UserError(f"{path}: corrupt or truncated pickle ({err.__class__.__name__}); download or regenerate the file")


def _read_header(f, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    try:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(f)
        else:
            raise UserError(f"{path}: unsupported .npy format version {version}; re-save it with numpy")
    except UserError:
        raise
    except (ValueError, EOFError, SyntaxError, TypeError) as err:
        raise UserError(f"{path}: not a .npy file or its header is damaged ({err}); download the file again") from None
    return np.dtype(dtype), tuple(shape)
