"""The project's errors: what a service says when an input or a rule says no.

Services, repositories and the channel edges raise these and know nothing of HTTP. The api maps
each class to a status code once (`relance/web/errors.py`) and answers with an RFC 9457 problem
document (`application/problem+json`); the console shows the message on a page; the CLI prints
it. `code` is stable and machine-readable (clients branch on it); `message` is for people.
"""

from __future__ import annotations

from typing import Any


class RelanceError(Exception):
    """Base class: a refusal with a machine-readable code and a message for users.

    `details` carries structured extras a client can use (e.g. the rows of a rejected import);
    they are added to the problem document as extension members.
    """

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class BadInput(RelanceError):
    """The request itself is malformed: unreadable body, missing field, wrong type."""


class InvalidContent(BadInput):
    """Well-formed, but its content cannot be accepted (rows that fail validation)."""


class UnsupportedMediaType(BadInput):
    """The body is in a format we do not read."""


class Unauthorized(RelanceError):
    """No valid credentials. `challenge` names the scheme the caller should use."""

    def __init__(self, code: str, message: str, *, challenge: str | None = None) -> None:
        super().__init__(code, message)
        self.challenge = challenge


class Forbidden(RelanceError):
    """The caller is known but may not do this (role, read-only token, bad signature)."""


class NotFound(RelanceError):
    """The thing named does not exist (or the caller may not know that it does)."""


class Conflict(RelanceError):
    """The current state forbids it: already decided, written meanwhile by someone else."""


class Gone(RelanceError):
    """It existed and is used up or expired (a paid or expired link)."""


class PolicyViolation(RelanceError):
    """A business rule refuses it: outside the plan limits, a contact the law forbids."""


class Unavailable(RelanceError):
    """A dependency is briefly unavailable; the same request may succeed shortly."""


class TooManyRequests(RelanceError):
    """Too many failed attempts from one source in a while (a guesser's pace): refused without
    being looked at. `retry_after_seconds` says when the source may try again."""

    def __init__(self, code: str, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(code, message)
        self.retry_after_seconds = retry_after_seconds
