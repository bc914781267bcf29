"""Every error sitecue raises on purpose, in one shallow tree.

    SitecueError
     ├── ConfigError          a site config is wrong; carries every Problem found
     │    └── ConditionError  a targeting condition cannot be compiled
     ├── StoreUnavailable     503: the database is stopped, unreachable, full or read-only
     ├── WebhookBodyInvalid   a webhook's body template made no JSON for a message (permanent)
     └── RequestError         an HTTP request we refuse; carries its status
          ├── BadRequest        400: the body or a parameter is wrong
          ├── Unauthorized      401: no admin key, or not a valid one
          ├── Forbidden         403: not allowed from this origin (or with this key)
          ├── NotFound          404: no such site or thing
          ├── PayloadTooLarge   413: the body is over its cap
          ├── UnsupportedMediaType  415: a body of a content type this endpoint does not read
          ├── FormInvalid       422: a form submission's fields, each with its problem
          ├── TooManyRequests   429: over a rate limit; carries when to try again
          └── ClientClosed      499: the client left before its body was sent (nobody reads it)

Errors carry data (the JSON path and what was expected there), so the CLI and the HTTP
layer can each present them in their own way.
"""

from __future__ import annotations

from typing import NamedTuple


class Problem(NamedTuple):
    """One mistake: where it is (a JSON path such as ``$.rules[0].when.age.$gt``) and what
    was expected there."""

    path: str
    expected: str
    file: str = ""  # the config file, once known

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.path}: {self.expected}"


class SitecueError(Exception):
    """Base of every error sitecue raises on purpose."""


class ConfigError(SitecueError):
    """A configuration that cannot be used, with every problem found in it."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConditionError(ConfigError):
    """A targeting condition with an unknown operator or a malformed operand."""


class RequestError(SitecueError):
    """A request refused on purpose; the HTTP layer answers ``status`` with the message."""

    status = 400

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class BadRequest(RequestError):
    status = 400


class Unauthorized(RequestError):
    status = 401


class Forbidden(RequestError):
    status = 403


class NotFound(RequestError):
    status = 404


class PayloadTooLarge(RequestError):
    status = 413


class ClientClosed(RequestError):
    """The client closed the connection before sending all of its body: an ordinary event
    on the internet (a tab closed, a phone losing signal, a slow client cut off by the
    server's timeouts), so it is counted under nginx's 499, not logged as an error."""

    status = 499


class StoreUnavailable(SitecueError):
    """The database cannot serve us now: stopped, unreachable, out of disk, read-only.
    Nothing of the request was stored; the HTTP layer answers 503 with ``Retry-After``
    (without this message, which may name hosts and files), and the CLI prints it."""

    retry_after = 5  # seconds

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class UnsupportedMediaType(RequestError):
    status = 415


class FormInvalid(RequestError):
    """A form submission refused field by field: ``fields`` maps each wrong field's name to
    its problem, so the tag can show every message beside its field at once."""

    status = 422

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        super().__init__(f"fields: {len(fields)} problem(s)")


class TooManyRequests(RequestError):
    """Over a rate limit; ``retry_after`` seconds from now the request may be sent again."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class WebhookBodyInvalid(SitecueError):
    """A webhook's body template failed, or made something that is not JSON, for one message.
    Rendering it again makes the same, so the delivery marks the message a permanent failure
    (never retried) with this reason, instead of sending a body the receiver cannot read."""

    def __init__(self, webhook: str, reason: str) -> None:
        self.webhook = webhook
        self.reason = reason
        super().__init__(f"webhook {webhook}: body: {reason}")
