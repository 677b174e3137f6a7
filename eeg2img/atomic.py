"""Atomic writes: write next to the target, fsync, then rename, so a reader never sees half a file.

A written file gets the mode the process umask gives a new file (0644 by default), not the 0600 of a
temporary file, so collaborators sharing a run store can read it. Temporary names carry the writer's
pid (``.<name>.<pid>.<random>.tmp``): a cleanup removes only the temp files of processes that are gone
(:func:`remove_stale_temps`), never those another live writer is filling.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(target: str | Path):
    """Yield a temporary path in the target's folder; on success it replaces ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def staging_directory(target: str | Path) -> Path:
    """A fresh sibling directory of ``target`` (same filesystem, so ``os.replace`` is atomic), with the
    mode the umask gives a new directory (mkdtemp's 0700 would hide it from collaborators)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    os.chmod(tmp, 0o777 & ~current_umask())
    return tmp


def replace_directory(tmp_dir: str | Path, target: str | Path) -> Path:
    """Move a fully written ``tmp_dir`` into place so readers never see a half-written ``target``."""
    import shutil

    target = Path(target)
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / "x")
        os.replace(tmp_dir, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp_dir, target)
    return target


@contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield a staging directory; when the block succeeds it replaces ``target``, else it is removed."""
    import shutil

    tmp = staging_directory(target)
    try:
        yield tmp
        replace_directory(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _writer_pid(temp: Path) -> int | None:
    parts = temp.name.split(".")  # "", name parts..., pid, random, "tmp"
    try:
        return int(parts[-3])
    except (IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def remove_stale_temps(folder: str | Path) -> int:
    """Delete the temp files in ``folder`` left by writers that no longer run; return how many."""
    removed = 0
    for temp in Path(folder).glob(".*.tmp"):
        pid = _writer_pid(temp)
        if pid is None or (pid != os.getpid() and not _alive(pid)):
            temp.unlink(missing_ok=True)
            removed += 1
    return removed


def check_output(target: str | Path, kind: str = "file", fix: str = "pass another path") -> Path:
    """Fail in one line, before any work, when ``target`` cannot be written (checked, nothing created).

    ``kind`` is ``"file"`` (an existing folder is refused) or ``"folder"`` (an existing file is refused).
    The nearest existing ancestor must be a writable folder.
    """
    from eeg2img.errors import UserError

    target = Path(target)
    if kind == "file" and target.is_dir():
        raise UserError(f"{target}: is a folder; {fix}")
    if kind == "folder" and target.exists() and not target.is_dir():
        raise UserError(f"{target}: is a file, not a folder; {fix}")
    existing = target if (kind == "folder" and target.is_dir()) else target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{existing}: is a file, so {target} cannot be created under it; {fix}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{existing}: not writable (permission denied); {fix}")
    return target


def write_with(target: str | Path, writer: Callable[[Path], Any]) -> Path:
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_text(target: str | Path, text: str) -> Path:
    return write_with(target, lambda p: p.write_text(text))


def write_json(target: str | Path, obj: Any) -> Path:
    from eeg2img.provenance import _jsonable

    return write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def write_png(target: str | Path, image) -> Path:
    from PIL import Image

    return write_with(target, lambda p: Image.fromarray(image).save(p, format="PNG"))


def write_parquet(target: str | Path, frame) -> Path:
    return write_with(target, lambda p: frame.to_parquet(p, index=False))


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value):
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(target: str | Path, frame) -> Path:
    """A CSV whose text cells can never start a spreadsheet formula (they get a leading ``'``)."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    text_columns = [c for c in frame.columns if is_object_dtype(frame[c]) or is_string_dtype(frame[c])]
    if text_columns:
        frame = frame.assign(**{c: frame[c].map(_inert) for c in text_columns})
    return write_with(target, lambda p: frame.to_csv(p, index=False))


@contextmanager
def exclusive_lock(lock_file: str | Path, what: str, fix: str):
    """Hold a non-blocking exclusive ``flock`` on ``lock_file``, or fail in one line naming the holder's pid.

    The pid of the holder is written into the lock file, so a second process can say who holds it.
    """
    import fcntl

    from eeg2img.errors import UserError

    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise UserError(f"{what}: in use by another process (pid {holder}); {fix}") from None
        try:
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
            yield
        finally:
            f.seek(0)
            f.truncate()
            f.flush()
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@contextmanager
def build_lock(target: str | Path):
    """Hold an exclusive lock on ``target`` (an entry about to be built) across processes.

    Cache entries shared by many cells — the demo diffusion model, an encoder, a backbone — are built
    by whichever process needs them first; another process that needs the same entry waits here and
    then loads it instead of building it a second time. The lock is an advisory ``flock`` on a
    ``.lock`` file beside the entry, released when the holder exits, however it exits.
    """
    import fcntl

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
