"""Errors the backend reports to its caller, each with a protocol error kind."""

from __future__ import annotations

from . import protocol


class BackendError(Exception):
    """A failure reported as an `error` event of `kind` and a non-zero exit."""

    kind = protocol.ERROR_INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def exit_code(self) -> int:
        return protocol.EXIT_CODES[self.kind]


class BadInput(BackendError):
    """The user's input is wrong; the message names the file/frame/field and what to do."""

    kind = protocol.ERROR_BAD_INPUT


class NoFace(BackendError):
    """No face was found where one is needed."""

    kind = protocol.ERROR_NO_FACE


class Cancelled(BackendError):
    """The process was asked to stop (SIGTERM, SIGINT)."""

    kind = protocol.ERROR_CANCELLED
