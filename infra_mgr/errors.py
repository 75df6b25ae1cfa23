"""Errors that services raise and every surface (API, CLI) reports the same way.

A service says *what* went wrong and which field; the API maps the class to a status code and
the CLI prints it as one line. No surface ever has to show a traceback for bad input.
"""

from __future__ import annotations


class ServiceError(Exception):
    status_code = 400

    def __init__(self, message: str, field: str | None = None,
                 errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors if errors is not None else ([{"field": field, "msg": message}] if field else [])


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class Invalid(ServiceError):
    status_code = 422


class Forbidden(ServiceError):
    status_code = 403
