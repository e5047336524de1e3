"""Errors raised by the identifier formats (modelled on python-stdnum)."""


class ValidationError(ValueError):
    """The value is not a valid identifier; ``message`` says why in one line."""

    message = "The value is not valid."

    def __init__(self, message: str | None = None):
        if message is not None:
            self.message = message
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class InvalidFormat(ValidationError):
    """Characters or structure are wrong."""

    message = "The value has an invalid format."


class InvalidLength(InvalidFormat):
    """The value has the wrong number of characters."""

    message = "The value has an invalid length."


class InvalidChecksum(ValidationError):
    """A check digit does not match."""

    message = "The value's check digit does not match."


class InvalidComponent(ValidationError):
    """One part of the value (a code, a date) is not allowed."""

    message = "One of the parts of the value is invalid."
