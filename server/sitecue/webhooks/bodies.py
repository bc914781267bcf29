"""A webhook's body: the message as JSON, or what the webhook's own template makes of it.

A template lets one webhook speak any platform's JSON (``config/webhooks/klaviyo.json.j2``,
``mailchimp.json.j2``). It is Jinja2 run in the immutable sandbox, where every ``{{ … }}``
is written as a JSON value: ``{"email": {{ fields.email }}}`` makes ``{"email":
"ann@example.com"}``. So whatever a visitor typed into a form stays one JSON string; it can
never close the string and add keys of its own. A template that renders nothing but
whitespace for a message means "nothing to send" for it: ``render`` returns ``b""`` and the
delivery sends nothing.

Templates are compiled when the config loads (``compile_body``) and rendered there with a
sample message of each event, so a template that fails, reaches for what the sandbox
refuses, or makes anything but JSON is a config mistake, not a dead delivery.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, get_args

import jinja2
import msgspec
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..config import WebhookEvent
from ..errors import ConfigError, Problem, WebhookBodyInvalid

__all__ = ["EVENTS", "MAX_BODY", "SAMPLES", "Body", "compile_body", "render"]

EVENTS: tuple[str, ...] = get_args(WebhookEvent)
MAX_TEMPLATE = 64 * 1024  # bytes of template source
MAX_BODY = 1024 * 1024  # bytes a rendered body may have: more is a template gone wrong

_DECISION = "dQ3xv8Zk1LwN0aTe5RyB7uHc"
_VISITOR = "v1a2b3c4d5e6f7g8h9i0j1k2"
_BASE = {"id": "m-sample", "site": "sample", "at": 1764115200000}
# What each event's message holds, in full and with what may be missing missing, or null:
# every template is rendered with each of these at load. A value a visitor typed is as awkward
# as one can be (quotes, a backslash, a newline, markup), so a template that pastes text
# instead of writing JSON values fails here, on the operator's screen.
SAMPLES: tuple[Mapping[str, Any], ...] = (
    {
        **_BASE,
        "event": "form.submitted",
        "submission": "s-sample",
        "rule": "newsletter",
        "variant": "short",
        "decision": _DECISION,
        "contact": "ann@example.com",
        "email": "ann@example.com",
        "fields": {
            "email": "ann@example.com",
            "name": 'Ann "A." \\ O\'Neil\n</script>',
            "interests": ["sport", "culture"],
            "age": 42,
            "consent": True,
        },
        "consents": {"consent": "Yes, email me the newsletter"},
    },
    {
        **_BASE,
        "event": "form.submitted",
        "submission": "s-sample",
        "rule": "poll",
        "variant": "a",
        "decision": _DECISION,
        "contact": None,
        "email": None,
        "fields": {},
        "consents": {},
    },
    {**_BASE, "event": "contact.identified", "contact": "c-42"},
    {
        **_BASE,
        "event": "goal.converted",
        "goal": "subscribe",
        "rule": "paywall-faq",
        "variant": "faq",
        "decision": _DECISION,
        "contact": "c-42",
        "verified": True,
        "claimed": None,
    },
    {
        **_BASE,
        "event": "goal.converted",
        "goal": "subscribe",
        "rule": None,
        "variant": None,
        "decision": None,
        "contact": None,
        "verified": False,
        "claimed": "c-7",
    },
    {**_BASE, "event": "contact.erased", "contact": "c-42"},
    {
        **_BASE,
        "event": "decision.shown",
        "rule": "newsletter",
        "variant": "short",
        "decision": _DECISION,
        "contact": None,
        "verified": False,
        "claimed": None,
    },
)


class _Json(str):
    """Text that is JSON already (what the ``tojson`` filter makes): written out as it is."""


def _encodable(obj: Any) -> Any:
    """msgspec's hook for what it cannot encode itself: a str subclass becomes its text, a
    filter's generator or a dict view a list; an undefined name raises the template's error."""
    if isinstance(obj, jinja2.Undefined):
        str(obj)  # StrictUndefined raises: which name is missing, or what the sandbox refused
    elif isinstance(obj, str):
        return str(obj)  # a subclass, such as the Markup of ``| safe``: its plain text
    elif isinstance(obj, Mapping):
        return dict(obj)
    elif isinstance(obj, Iterable):
        return list(obj)
    raise TypeError(f"a {type(obj).__name__} is not a JSON value")


_ENCODER = msgspec.json.Encoder(enc_hook=_encodable)


def _tojson(value: Any) -> _Json:
    return _Json(_ENCODER.encode(value).decode())


def _finalize(value: Any) -> str:
    # Every expression's output is encoded as JSON, unless it is JSON already: there is no
    # way to write a value's text unencoded (not even ``| safe``, whose Markup is encoded too).
    return value if isinstance(value, _Json) else _tojson(value)


def _iso8601(epoch_ms: int) -> str:
    """``{{ at | iso8601 }}``: epoch milliseconds as ``2026-11-26T00:00:00Z``."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _environment() -> ImmutableSandboxedEnvironment:
    # The immutable sandbox refuses attributes starting with _ (no __class__, __globals__,
    # __mro__), methods that change a list or dict, and unsafe str.format; there is no loader,
    # so a template cannot include, import or extend another file. StrictUndefined: a misspelt
    # name fails at load instead of sending null; use message.get("key") for optional keys.
    env = ImmutableSandboxedEnvironment(
        autoescape=False,  # JSON, not HTML: _finalize is the escaping
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals = {name: env.globals[name] for name in ("range", "dict", "namespace")}
    env.filters["tojson"] = _tojson
    env.filters["iso8601"] = _iso8601
    return env


_ENV = _environment()
_PLAIN = msgspec.json.Encoder()


@dataclass(frozen=True)
class Body:
    """A compiled body template; ``path`` is as the config names it."""

    path: str
    template: jinja2.Template


def _render(template: jinja2.Template, message: Mapping[str, Any]) -> bytes:
    """The body for ``message``, ``b""`` for nothing to send; ValueError saying why not."""
    try:
        text = template.render({**message, "message": message})
    # Whatever a template raises (a missing name, the sandbox's refusal, a filter's TypeError,
    # a macro recursing) is the template's fault, and the same at every try.
    except Exception as err:
        raise ValueError(f"the template fails ({type(err).__name__}: {err})") from err
    if not text.strip():
        return b""
    body = text.strip().encode()
    if len(body) > MAX_BODY:
        raise ValueError(f"the template makes {len(body)} bytes, over {MAX_BODY}")
    try:
        msgspec.json.decode(body)
    except msgspec.DecodeError as err:
        raise ValueError(f"the template makes no valid JSON ({err})") from err
    return body


def render(webhook: Any, message: Mapping[str, Any]) -> bytes:
    """The body to send ``webhook`` (with ``id`` and ``body``, a Body or None) for
    ``message`` (``{"id", "event", "site", "at", …payload}``): the message as JSON without
    a template, else the template's JSON; ``b""`` when the template says nothing to send.
    Raises WebhookBodyInvalid, a permanent failure, when no JSON can be made."""
    body: Body | None = webhook.body
    if body is None:
        try:
            return _PLAIN.encode(dict(message))
        except (TypeError, ValueError) as err:
            raise WebhookBodyInvalid(webhook.id, f"the message is not JSON ({err})") from err
    try:
        return _render(body.template, message)
    except ValueError as err:
        raise WebhookBodyInvalid(webhook.id, str(err)) from err


def compile_body(
    config_dir: Path, path: str | None, where: str, *, events: Collection[str] = EVENTS
) -> Body | None:
    """Compile a webhook's ``body`` (a path relative to ``config_dir``; None is the plain
    message as JSON), and render it with the sample message of each of ``events``.

    Raises ConfigError with one Problem at ``where`` (the JSON path of the setting, such as
    ``$.webhooks[0].body``) per mistake: a path outside the config directory, a missing or
    unreadable file, a syntax error, or a sample it fails on or makes no JSON for.

    Wired into a site's compile as, for its i-th webhook ``hook``::

        try:
            body = compile_body(config_dir, hook.body, f"$.webhooks[{i}].body", events=hook.events)
        except ConfigError as err:
            problems.extend(err.problems)
    """
    if path is None:
        return None
    file = _inside(config_dir, path, where)
    try:
        with file.open("rb") as f:
            raw = f.read(MAX_TEMPLATE + 1)
    except OSError as err:
        raise ConfigError(
            [Problem(where, f"expected a readable template ({err.strerror})")]
        ) from err
    if len(raw) > MAX_TEMPLATE:
        raise ConfigError([Problem(where, f"expected a template of at most {MAX_TEMPLATE} bytes")])
    try:
        template = _ENV.from_string(raw.decode())
    except UnicodeDecodeError as err:
        raise ConfigError([Problem(where, f"expected a UTF-8 template ({err.reason})")]) from err
    except jinja2.TemplateSyntaxError as err:
        raise ConfigError(
            [Problem(where, f"expected a valid template ({err.message}, line {err.lineno})")]
        ) from err
    problems: dict[str, Problem] = {}
    for sample in SAMPLES:
        event = sample["event"]
        if event in events and event not in problems:
            try:
                _render(template, sample)
            except ValueError as err:
                problems[event] = Problem(where, f"expected JSON or nothing for {event}: {err}")
    if problems:
        raise ConfigError(list(problems.values()))
    return Body(path, template)


def _inside(config_dir: Path, path: str, where: str) -> Path:
    """The file ``path`` names under ``config_dir``; ConfigError if it is anywhere else.
    A config may come from someone trusted less than the server's own files: a body template
    must not read /etc/passwd, a secret beside the config, or a file a symlink points out to."""
    relative = PurePosixPath(path)
    if not path or relative.is_absolute() or ".." in relative.parts or "\\" in path:
        raise ConfigError(
            [Problem(where, f"expected a path inside the config directory, not {path!r}")]
        )
    root = config_dir.resolve()
    file = (root / relative).resolve()
    if not file.is_relative_to(root):
        raise ConfigError(
            [Problem(where, f"expected a file inside the config directory ({path} leads out)")]
        )
    if not file.is_file():
        raise ConfigError([Problem(where, f"expected a template file under {config_dir} ({path})")])
    return file
