"""Errors a user can act on.

Every problem caused by input (a missing file, a corrupt dataset, an unknown subject, missing
weights) is raised as :class:`UserError`. The command line prints its message as one line on
stderr and exits with code 2; no traceback, nothing half-written.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: the message names the file (or value) and the fix, in one line."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class LeakageError(UserError):
    """A split, or a method, would see test data it must not see."""


class WeightsNotFoundError(UserError):
    """A weights file could not be resolved locally or downloaded."""


_OS_CAUSES = {
    "PermissionError": "permission denied",
    "IsADirectoryError": "is a folder, not a file",
    "NotADirectoryError": "a part of the path is a file, not a folder",
    "FileExistsError": "already exists",
    "FileNotFoundError": "not found",
}


def path_error(err: OSError, fix: str = "check the path and its permissions") -> UserError:
    """An operating-system error on a path as one line: the path, the cause and the fix."""
    import errno

    cause = _OS_CAUSES.get(type(err).__name__)
    if err.errno == errno.ENOSPC:
        cause, fix = "no space left on the device", "free some space or write elsewhere"
    elif err.errno == errno.EROFS:
        cause = "read-only file system"
    elif cause is None:
        cause = err.strerror or type(err).__name__
    where = err.filename if err.filename is not None else "a file"
    return UserError(f"{where}: {cause}; {fix}")
