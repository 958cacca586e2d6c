"""The project's own exceptions: one class per error code of the API.

Services and the repository raise these; one middleware turns them into the JSON
error shape. Nothing below the handlers knows HTTP beyond the status carried here.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """An error with a stable code, an HTTP status and a message a client may see."""

    status = 500
    code = "INTERNAL_ERROR"

    def __init__(self, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class ValidationFailed(AppError):
    status = 400
    code = "VALIDATION_ERROR"


class InvalidObject(AppError):
    status = 400
    code = "INVALID_OBJECT"


class Unauthorized(AppError):
    status = 401
    code = "UNAUTHORIZED"


class PermissionDenied(AppError):
    status = 403
    code = "PERMISSION_DENIED"


class RecordNotFound(AppError):
    status = 404
    code = "RECORD_NOT_FOUND"


class RouteNotFound(AppError):
    status = 404
    code = "NOT_FOUND"


class MethodNotAllowed(AppError):
    status = 405
    code = "METHOD_NOT_ALLOWED"


class Conflict(AppError):
    status = 409
    code = "CONFLICT"


class PayloadTooLarge(AppError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class RateLimited(AppError):
    status = 429
    code = "RATE_LIMITED"


class Unavailable(AppError):
    status = 503
    code = "UNAVAILABLE"


class NotFoundInCli(Exception):
    """A name given on the command line matches nothing (organization, user, token)."""
