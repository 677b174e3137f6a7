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
