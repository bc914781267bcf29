"""The site config a marketer writes: typed, decoded with every mistake's JSON path.

One file per site under ``config/sites/``. Decoding walks the whole document (every field of
every trigger, widget and rule), so one typo does not hide the next: ``sitecue check`` lists
them all (see :mod:`sitecue.validation`). Meaning (references between sections, regexes,
templates) is checked when the site is compiled, in :mod:`sitecue.rules`.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from .errors import ConfigError, Problem
from .validation import mistakes, salvage

__all__ = [
    "WINDOW_PATTERN",
    "AttributeType",
    "Catalog",
    "DataKey",
    "FieldType",
    "Form",
    "FormField",
    "Frequency",
    "Identify",
    "Limit",
    "Namespace",
    "Placement",
    "Recommend",
    "Retention",
    "Rule",
    "Schedule",
    "Show",
    "SiteConfig",
    "Strategy",
    "Trigger",
    "Variant",
    "Webhook",
    "WebhookEvent",
    "Widget",
    "decode_site",
    "duration_ms",
    "json_schema",
    "load_site",
    "parse_site",
    "read_site",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
WINDOW_PATTERN = r"^(session|total|[1-9][0-9]{0,2}d)$"
_ORIGIN = r"^https?://[^/\s]+$"
_AFTER = r"^(now|exit|[0-9]{1,4}s|(100|[1-9]?[0-9])%)$"
_DURATION = r"^[1-9][0-9]{0,3}[mhd]$"
_KEEP = r"^([1-9][0-9]{0,3}d|(2[4-9]|[3-9][0-9]|[1-9][0-9]{2,4})h)$"  # at least a day
# What each pattern means, for error messages a marketer can act on.
_PATTERN_MEANING = {
    _NAME: "a name of letters, digits and _.:- (at most 64)",
    WINDOW_PATTERN: "a window: session, total or a number of days such as 7d",
    _ORIGIN: "an origin such as https://news.example (no path)",
    _AFTER: "now, a delay such as 5s, a scroll depth such as 50%, or exit",
    _DURATION: "a duration such as 30m, 12h or 1d",
    _KEEP: "a duration of at least a day, such as 90d or 36h",
}

Name = Annotated[str, msgspec.Meta(pattern=_NAME)]
Window = Annotated[str, msgspec.Meta(pattern=WINDOW_PATTERN)]
"""A counting window: this session, all time, or the last N calendar days (``7d``)."""

TriggerKind = Literal[
    "pageview",
    "click",
    "change",
    "visible",
    "video",
    "scroll",
    "time",
    "inactivity",
    "exit",
    "custom",
]
AttributeType = Literal["boolean", "number", "string"]
"""The type of an offsite attribute a site declares (loyalty tier, average order value…)."""
PlacementKind = Literal["modal", "slide-in", "bar", "inline", "replace"]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class Trigger(_Strict, frozen=True):
    """Something a visitor does that rules can count. The server matches page views on the
    path; the tag watches the rest, each at most once per page view except clicks, changes
    and video plays: a ``click`` or ``change`` on an element matching ``selector`` (added
    later or not), an element becoming ``visible``, a ``video`` starting to play (any, or
    those matching ``selector``), ``scroll`` past ``percent`` of the page, ``time`` on the
    page or ``inactivity`` for ``seconds``, and ``exit`` intent (the pointer leaving through
    the top; on a phone, a fast scroll back up). A ``custom`` event is sent by the page:
    ``sitecue('event', name)``; one declared with ``"value": "number"`` carries a number
    (``sitecue('event', 'purchase', {value: 59.9})``), summed as ``sums.<name>.<window>``."""

    on: TriggerKind
    selector: str | None = None
    path: Any = None
    percent: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = None
    seconds: Annotated[int, msgspec.Meta(ge=1, le=3600)] | None = None
    value: Literal["number"] | None = None


_DATA_KEY = r"^[A-Za-z_][A-Za-z0-9_]{0,39}$"
DataKey = Annotated[str, msgspec.Meta(pattern=_DATA_KEY)]
"""A page-data key (``sitecue('set', {cart_value: 520})``): an identifier, so that
``page.data.<key>`` reads it as one step of a dotted path."""

FieldType = Literal["email", "phone", "text", "number", "choice", "checkbox", "consent", "hidden"]
"""What a form field takes; see :mod:`sitecue.forms` for how a submitted value is checked."""
_FIELD_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,39}$"
_PATTERN_MEANING[_FIELD_NAME] = "an identifier of letters, digits and _ (at most 40)"
FieldName = Annotated[str, msgspec.Meta(pattern=_FIELD_NAME)]
Label = Annotated[str, msgspec.Meta(max_length=500)]
Option = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class FormField(_Strict, frozen=True):
    """One field of a form. ``max_length`` bounds a text (default 200), ``min``/``max`` a
    number, ``options`` a choice (``multiple``: any number of them); a consent's ``text`` is
    the exact text shown, stored with each submission; a hidden field's ``value`` is fixed
    here (a submitted value must equal it). ``step`` groups fields into the steps of a
    multi-step form (1 first)."""

    name: FieldName
    type: FieldType
    label: Label = ""
    required: bool = False
    placeholder: Label = ""
    step: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    max_length: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    min: float | None = None
    max: float | None = None
    options: Annotated[list[Option], msgspec.Meta(min_length=1, max_length=20)] | None = None
    multiple: bool = False
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)] | None = None
    value: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class Form(_Strict, frozen=True):
    """The form a widget carries: its fields (in order, by step), and the field whose
    normalised value names the contact a submission creates or updates (left out: the
    field called ``email``, if there is one)."""

    fields: Annotated[list[FormField], msgspec.Meta(min_length=1, max_length=20)]
    contact: FieldName | None = None


Strategy = Literal[
    "recently_viewed", "viewed_together", "bought_together", "popular_in_category", "popular"
]  # fmt: skip
"""Where recommended products come from (see sitecue.recommend): the visitor's recent
product views; products viewed, or bought, by the same people as the current product (or,
off a product page, as the visitor's recent views); the most popular in the category of the
current product (or of the recent views); and the most popular overall."""


class Recommend(_Strict, frozen=True):
    """A widget's product recommendations: up to ``limit`` products, taken from each
    strategy in turn until the row is full; only products in stock (unless ``in_stock`` is
    false), never the product on the page nor one this person bought, and at most
    ``per_category`` of one category. The template reads them as ``recommendations``."""

    strategies: Annotated[list[Strategy], msgspec.Meta(min_length=1, max_length=5)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=12)] = 4
    per_category: Annotated[int, msgspec.Meta(ge=1, le=12)] | None = None
    in_stock: bool = True


class Widget(_Strict, frozen=True):
    """A Jinja2 template (relative to the config directory) and the data it renders with;
    a widget with a ``form`` renders it through ``{% include "widgets/_form.html" %}``; one
    that ``recommend``s products renders per visitor, at decide time."""

    template: str
    data: dict[str, Any] = {}
    form: Form | None = None
    recommend: Recommend | None = None


class Placement(_Strict, frozen=True):
    """Where a widget goes: an overlay (``modal``, ``slide-in``, ``bar``), inside an element
    (``inline``), or instead of an element (``replace``)."""

    type: PlacementKind
    selector: str | None = None


class Show(_Strict, frozen=True):
    """When the tag shows a decided widget: at once (``now``), ``N`` seconds into the page view
    (``5s``), once the visitor has scrolled ``N`` percent (``50%``), or on exit intent
    (``exit``)."""

    after: Annotated[str, msgspec.Meta(pattern=_AFTER)] = "now"


class Limit(_Strict, frozen=True):
    """Frequency caps: at most ``max`` impressions ``per`` window, at least ``gap`` between two
    impressions, and never again after the visitor converted or dismissed, when ``stop_after``
    says so; ``goal`` there stops the rule once the visitor reached the rule's goal, even
    without ever having seen the rule (they bought anyway: no more first-order offer)."""

    max: Annotated[int, msgspec.Meta(ge=1)] | None = None
    per: Window = "total"
    gap: Annotated[str, msgspec.Meta(pattern=_DURATION)] | None = None
    stop_after: list[Literal["convert", "dismiss", "goal"]] = []


class Variant(_Strict, frozen=True):
    """One arm of a rule. ``widget: null`` is a control: nothing is shown, but it is logged."""

    id: Name
    weight: Annotated[float, msgspec.Meta(ge=0, le=100)]
    widget: str | None


class Schedule(_Strict, frozen=True):
    """When a rule is live; either bound may be left out."""

    starts: datetime | None = msgspec.field(default=None, name="from")
    until: datetime | None = None


Share = Annotated[float, msgspec.Meta(ge=0, le=1)]


class Namespace(_Strict, frozen=True):
    """Experiments in one namespace with ranges that do not overlap never share a person."""

    id: Name
    range: tuple[Share, Share]


class Rule(_Strict, frozen=True):
    """Who sees what, where: a condition over the visitor's context, the variants, the caps.
    ``coverage`` is the share of eligible people in the experiment at all, and
    ``namespace`` keeps it apart from other experiments."""

    id: Name
    placement: Placement
    variants: Annotated[list[Variant], msgspec.Meta(min_length=1)]
    when: dict[str, Any] = {}
    show: Show = Show()
    limit: Limit = Limit()
    goal: str | None = None
    priority: int = 0
    schedule: Schedule | None = None
    coverage: Share = 1.0
    namespace: Namespace | None = None


class Identify(_Strict, frozen=True):
    """How far an email token reaches. A link may be forwarded: whoever opens it is
    identified as its contact in their browser, so a token identifies at most
    ``browsers_per_token`` browsers (the same browser again is not a new one); the next is
    treated as anonymous, and the refusal is recorded.

    An identified browser carries a snapshot of the person's attributes and server-side
    event counts and sums, read again from the database once it is older than ``refresh`` (a
    duration such as 15m, 1h or 1d): at most one read per identified browser per interval,
    never for an anonymous visitor."""

    browsers_per_token: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3
    refresh: Annotated[str, msgspec.Meta(pattern=_DURATION)] = "15m"


WebhookEvent = Literal[
    "form.submitted", "contact.identified", "goal.converted", "contact.erased", "decision.shown"
]
"""What a webhook may be told of; ``decision.shown`` (every exposure) only when listed."""
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_PATTERN_MEANING[_ENV_NAME] = "an environment variable's name, such as SITECUE_WEBHOOK_SECRET"


class Webhook(_Strict, frozen=True):
    """Another system told of what happens on the site: each message is POSTed to ``url``
    (https; http only to localhost), signed with the secret held in the environment
    variable ``secret_env``, its body rendered from the template ``body`` (relative to the
    config directory; left out, the plain JSON message), within ``timeout`` seconds."""

    id: Name
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    events: Annotated[list[WebhookEvent], msgspec.Meta(min_length=1)]
    secret_env: Annotated[str, msgspec.Meta(pattern=_ENV_NAME)]
    body: str | None = None
    timeout: Annotated[float, msgspec.Meta(gt=0, le=30)] = 10.0
    # Request headers the receiving platform wants (an API version, a content type), and
    # those that are secrets (an API key), read from the environment variable each names.
    headers: dict[str, str] = {}
    headers_env: dict[str, Annotated[str, msgspec.Meta(pattern=_ENV_NAME)]] = {}


class Frequency(_Strict, frozen=True):
    """A site-wide budget of overlays, across every rule: at most ``per_view`` decided in
    one page view (however many times a trigger re-decides it), ``per_session`` and
    ``per_day`` shown (impressions; a control's too), and at least ``cooldown`` between two
    shown. It covers the placements in ``applies_to`` (the overlays by default; inline and
    replace only when listed). See :mod:`sitecue.frequency`."""

    per_view: Annotated[int, msgspec.Meta(ge=1, le=10)] | None = None
    per_session: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    per_day: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    cooldown: Annotated[str, msgspec.Meta(pattern=_DURATION)] | None = None
    applies_to: Annotated[list[PlacementKind], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["modal", "slide-in", "bar"]
    )


class Retention(_Strict, frozen=True):
    """How long the raw log keeps a site's records: each decision and each event is deleted
    once older than this (a duration in days or hours, at least a day). The rollups that
    reports and results read, the first exposures, contacts and form submissions are kept;
    see :mod:`sitecue.retention`."""

    decisions: Annotated[str, msgspec.Meta(pattern=_KEEP)] = "90d"
    events: Annotated[str, msgspec.Meta(pattern=_KEEP)] = "400d"


_CATALOG_FIELD = r"^(?!(id|name|url|image|price|category|in_stock)$)[A-Za-z_][A-Za-z0-9_]{0,39}$"
_PATTERN_MEANING[_CATALOG_FIELD] = (
    "an identifier of letters, digits and _ (at most 40) other than a product's own fields"
)
_WITHIN = r"^([1-9][0-9]{0,2}d|[1-9][0-9]{0,3}h)$"
_PATTERN_MEANING[_WITHIN] = "a duration in days or hours, such as 30d or 12h"
Within = Annotated[str, msgspec.Meta(pattern=_WITHIN)]


_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(duration: str) -> int:
    """A duration of the config (``"15m"``, ``"12h"``, ``"90d"``) in milliseconds."""
    return int(duration[:-1]) * _UNIT_MS[duration[-1]]


class Catalog(_Strict, frozen=True):
    """The site's products (see sitecue.catalog) and what recommendations learn from.

    ``fields``: the extra product fields the site declares, with their types. ``from_pages``:
    a product a page describes (``sitecue('set', {product: {...}})``) is added to the
    catalogue, or updated, once ``confirm`` different visitors saw it described the same
    way; never one the site's own systems put there. ``cart`` and ``purchase`` name the
    events that carry the product added to the cart and the products bought. ``recent``:
    how many of the visitor's product views the state cookie keeps. Viewed together means
    viewed by one visitor within ``viewed_within``, bought together bought by one within
    ``bought_within``, counted once ``min_support`` people did; popularity counts the last
    ``popular_over``."""

    fields: dict[Annotated[str, msgspec.Meta(pattern=_CATALOG_FIELD)], AttributeType] = {}
    from_pages: bool = False
    confirm: Annotated[int, msgspec.Meta(ge=1, le=100)] = 2
    cart: Name | None = None
    purchase: Name | None = None
    recent: Annotated[int, msgspec.Meta(ge=1, le=20)] = 8
    min_support: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 2
    viewed_within: Within = "1d"
    bought_within: Within = "90d"
    popular_over: Within = "30d"


class SiteConfig(_Strict, frozen=True):
    """One site: where the tag may call from, its triggers, widgets and rules.

    ``consent``: ``implied`` keeps state unless the visitor declines, ``required`` only once
    they accept, ``none`` means the site does not ask (state is always kept)."""

    site: Name
    origins: list[Annotated[str, msgspec.Meta(pattern=_ORIGIN)]]
    consent: Literal["implied", "required", "none"] = "implied"
    timezone: str = "UTC"
    max_per_view: Annotated[int, msgspec.Meta(ge=1, le=10)] = 2  # decisions shown per page view
    attributes: dict[Name, AttributeType] = {}  # offsite attributes contacts may carry
    # What the page declares with sitecue('set', {...}), read by rules as page.data.<key>
    page_data: dict[DataKey, AttributeType] = {}
    identify: Identify = Identify()  # email tokens: how many browsers one may identify
    frequency: Frequency | None = None  # overlays across all rules (see Frequency)
    # The share of visitors kept out of every campaign, to measure all of them together.
    holdout: Annotated[float, msgspec.Meta(ge=0, le=0.5)] = 0.0
    triggers: dict[Name, Trigger] = {}
    widgets: dict[Name, Widget] = {}
    rules: list[Rule] = []
    # Named conditions and id lists, used as {"audience": name} (see sitecue.audiences).
    audiences: dict[Name, dict[str, Any]] = {}
    webhooks: list[Webhook] = []  # other systems told of submissions, conversions, erasures
    retention: Retention = Retention()  # how long raw decisions and events are kept
    catalog: Catalog | None = None  # products, and what recommendations learn from
    schema: str | None = msgspec.field(default=None, name="$schema")


def _problem(path: str, message: str) -> Problem:
    """msgspec's ``Expected int, got str`` at ``path`` as a Problem a marketer can act on."""
    for pattern, meaning in _PATTERN_MEANING.items():
        message = message.replace(f"`str` matching regex {pattern!r}", meaning)
    return Problem(path, message[0].lower() + message[1:])


def decode_site(raw: Any) -> tuple[SiteConfig, list[Problem]]:
    """Decode a site config from parsed JSON: every structural mistake (wrong type, unknown
    or missing field, value out of range or not of its enum, wrongly named entry), and the
    config with what is wrong standing in as defaults, so its meaning can still be checked
    (:func:`sitecue.rules.compile_file`). Never serve that config when there are mistakes."""
    if not isinstance(raw, dict):
        raise ConfigError([Problem("$", "expected an object with site, origins and rules")])
    try:
        return msgspec.convert(raw, SiteConfig), []  # the usual case: nothing to look for
    except msgspec.ValidationError:
        pass
    problems = [_problem(path, message) for path, message in mistakes(raw, SiteConfig)]
    config: SiteConfig = salvage(raw, SiteConfig)
    return config, problems


def parse_site(raw: Any) -> SiteConfig:
    """Decode a site config from parsed JSON, reporting every structural mistake at once."""
    config, problems = decode_site(raw)
    if problems:
        raise ConfigError(problems)
    return config


def read_site(path: Path) -> tuple[SiteConfig, list[Problem]]:
    """Read one site file as :func:`decode_site` does; a file that is not JSON (reported
    with line and column) or not readable raises ConfigError."""
    try:
        raw = json.loads(path.read_bytes())
    except json.JSONDecodeError as err:
        raise ConfigError(
            [Problem("$", f"valid JSON ({err.msg} at line {err.lineno}, column {err.colno})")]
        ) from err
    except OSError as err:
        raise ConfigError([Problem("$", f"a readable file ({err.strerror})")]) from err
    return decode_site(raw)


def load_site(path: Path) -> SiteConfig:
    """Read and decode one site file; a JSON syntax error is reported with line and column."""
    config, problems = read_site(path)
    if problems:
        raise ConfigError(problems)
    return config


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a site file, for editors; generated from the Structs above."""
    schema = msgspec.json.schema(SiteConfig)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sitecue site configuration"
    return schema
