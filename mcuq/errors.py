"""Errors that the CLI turns into one-line messages and exit status 2."""

from __future__ import annotations


class McuqError(Exception):
    """Base class: a problem with the user's input or environment that mcuq explains in one line."""

    exit_code = 2


class ModelError(McuqError):
    """The model file is unreadable, malformed or uses something mcuq does not support.

    ``source`` is the model file; the message should name the op (``op.where``) and the reason.
    """

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.message = message
        super().__init__(f"{source}: {message}" if source else message)


class BuildError(McuqError):
    """The C compiler or the generated program failed."""


class FitError(McuqError):
    """The model does not fit the board's flash or RAM."""
