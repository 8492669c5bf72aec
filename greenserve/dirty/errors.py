"""The errors a dirty-app call raises: gunicorn's classes, names and attributes.

They cross the wire as ``{"error_type", "message", "details"}``, so an error raised in a
dirty worker is raised again, as the same class, where the app called it.
"""

from __future__ import annotations

from typing import Any


class DirtyError(Exception):
    """Base of every dirty-app error."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """What goes on the wire."""
        return {"error_type": type(self).__name__, "message": self.message,
                "details": self.details}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DirtyError:
        """The error a wire dict describes, as its own class (DirtyError if unknown)."""
        error_class = _CLASSES.get(str(data.get("error_type")), DirtyError)
        error = Exception.__new__(error_class)
        error.message = str(data.get("message") or "Unknown error")
        error.details = dict(data.get("details") or {})
        Exception.__init__(error, error.message)
        for name in _ATTRIBUTES.get(error_class, ()):
            setattr(error, name, error.details.get(name))
        return error


class DirtyTimeoutError(DirtyError):
    """The call did not finish in time."""

    def __init__(self, message: str = "Timeout waiting for dirty app response",
                 timeout: float | None = None) -> None:
        super().__init__(message, {"timeout": timeout})
        self.timeout = timeout


class DirtyConnectionError(DirtyError):
    """The dirty arbiter could not be reached."""


class DirtyWorkerError(DirtyError):
    """A dirty worker failed (it died during the call)."""


class DirtyAppError(DirtyError):
    """The app raised, or has no such action, or returned what cannot be sent."""

    def __init__(self, message: str, app_path: str | None = None, action: str | None = None,
                 traceback: str | None = None) -> None:
        super().__init__(message, {"app_path": app_path, "action": action,
                                   "traceback": traceback})
        self.app_path, self.action, self.traceback = app_path, action, traceback


class DirtyAppNotFoundError(DirtyError):
    """No such dirty app."""


class DirtyNoWorkersAvailableError(DirtyError):
    """No dirty worker has loaded this app (an unknown app, or all its workers are gone)."""

    def __init__(self, app_path: str, message: str | None = None) -> None:
        super().__init__(message or f"No dirty workers available for app: {app_path}",
                         {"app_path": app_path})
        self.app_path = app_path


class DirtyProtocolError(DirtyError):
    """Bytes that are not a dirty-app message, or a connection that ended mid-call."""


_CLASSES: dict[str, type[DirtyError]] = {c.__name__: c for c in (
    DirtyError, DirtyTimeoutError, DirtyConnectionError, DirtyWorkerError, DirtyAppError,
    DirtyAppNotFoundError, DirtyNoWorkersAvailableError, DirtyProtocolError)}
_ATTRIBUTES: dict[type[DirtyError], tuple[str, ...]] = {
    DirtyTimeoutError: ("timeout",),
    DirtyAppError: ("app_path", "action", "traceback"),
    DirtyNoWorkersAvailableError: ("app_path",),
}
