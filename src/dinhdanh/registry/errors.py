"""Errors of the register. Each names what is wrong; entrypoints map them to 404 / 409 / 422."""


class RegistryError(Exception):
    """Base: ``code`` is stable for programs, ``message`` is for people, ``field`` names the input."""

    code = "registry_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class NotFound(RegistryError):
    """No such person (or not visible to this officer: the two are told apart by nobody)."""

    code = "not_found"


class InvalidInput(RegistryError):
    """The request itself is wrong (a bad code, an impossible date)."""

    code = "invalid_input"


class RuleViolation(RegistryError):
    """The request is well formed but the register's rules refuse it (a dead person cannot marry)."""

    code = "rule_violation"


class Forbidden(RegistryError):
    """The officer may not act here (outside their area or role)."""

    code = "forbidden"


class TooLarge(RegistryError):
    """The input is over the size allowed (an upload)."""

    code = "too_large"


class Conflict(RegistryError):
    """The record changed under us (another officer's write won); retry on fresh data."""

    code = "conflict"
