"""The wire protocol between the tag and the server: request and response bodies.

Field names are fixed by DESIGN.md so the tag, the server and outside checks agree. Every
string and list has a cap, so a body can never make the server do unbounded work.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from .config import Placement, Show
from .tokens import MAX_TOKEN

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_PRODUCTS",
    "MAX_VALUE",
    "PRODUCT_ID",
    "DecideRequest",
    "DecideResponse",
    "Decision",
    "EventsRequest",
    "Feedback",
    "FormRequest",
    "FormResponse",
    "Page",
    "PageEvent",
    "TriggerSpec",
]

MAX_BODY_BYTES = 16 * 1024

# No NUL in text: PostgreSQL refuses it, and one such record would fail its whole group of
# other visitors' records (or stay at the head of a spool, forwarded in vain). A 400 instead.
NO_NUL = "^[^\x00]*$"
Text = Annotated[str, msgspec.Meta(max_length=2048, pattern=NO_NUL)]
Short = Annotated[str, msgspec.Meta(max_length=128, pattern=NO_NUL)]
Millis = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
# An id the tag makes for each decide call and each event, so a retried request is answered
# again without being stored twice: random, from the browser, at least 8 URL-safe characters.
RetryId = Annotated[str, msgspec.Meta(min_length=8, max_length=64, pattern="^[A-Za-z0-9_-]+$")]
# Active reading seconds the tag has not reported yet (see reading.py): whole seconds, at most a
# day in one report (the server credits at most the time it saw pass).
ReadSeconds = Annotated[int, msgspec.Meta(ge=0, le=86_400)]


MAX_VALUE = 1e9
"""An event's value or a page-data number is finite and within ±MAX_VALUE (a bound, so
that sums stay exact to the hundredth and no body can carry an infinity)."""
Number = Annotated[float, msgspec.Meta(ge=-MAX_VALUE, le=MAX_VALUE)]

# A product id, as sitecue.catalog.PRODUCT_ID has it (the same literal; the server cannot
# know every product, so an event's ids are checked by pattern only): no control character,
# no space, nothing a URL, a CSV or a log line would have to escape, and at most 64.
# (?!\n): msgspec matches with re.search, where a bare $ also matches before a final newline.
PRODUCT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}(?!\n)$"
ProductId = Annotated[str, msgspec.Meta(pattern=PRODUCT_ID)]
MAX_PRODUCTS = 50
"""The most product ids one event carries (an order's lines)."""
ProductIds = Annotated[list[ProductId], msgspec.Meta(min_length=1, max_length=MAX_PRODUCTS)]


class Page(msgspec.Struct, frozen=True):
    """Where the page view happens, as the tag sees it; ``data`` is what the page declared
    with ``sitecue('set', {...})``, checked against the site's ``page_data`` in decide."""

    url: Text
    referrer: Text = ""
    title: Text = ""
    viewport: Literal["mobile", "tablet", "desktop"] | None = None
    # Each value is decoded when the site declares its key (see sitecue.page_data), so a bad
    # one is refused naming its key, and one no rule reads costs nothing.
    data: Annotated[dict[Short, msgspec.Raw], msgspec.Meta(max_length=100)] = {}


class PageEvent(msgspec.Struct, frozen=True):
    """A trigger (or custom event) that fired on the page since the last call; ``value``
    (``sitecue('event', 'purchase', {value: 59.9})``) is summed for a trigger that declares
    one."""

    name: Short
    at: Millis | None = None
    value: Number | None = None
    # The product an add-to-cart (or a click on a product) is about, and a purchase's lines:
    # ``sitecue('event', 'purchase', {value: 99.5, products: ['sku-1', 'sku-2']})``.
    product: ProductId | None = None
    products: ProductIds | None = None


class DecideRequest(msgspec.Struct, frozen=True):
    """``POST /v1/decide``: one per page view, and again when a watched trigger fires."""

    site: Short
    page: Page
    events: Annotated[list[PageEvent], msgspec.Meta(max_length=50)] = []
    token: Annotated[str, msgspec.Meta(max_length=MAX_TOKEN, pattern=NO_NUL)] | None = None
    # sitecue('identify', {id}): links the browser to a contact, unverified
    identify: Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=NO_NUL)] | None = (
        None
    )
    consent: bool | None = None
    # The page view's id: repeated calls in one view reuse decision ids and share the site's
    # per-view overlay budget (see frequency.py).
    view: Short | None = None
    pageview: bool = True  # false when re-deciding after a trigger within the same view
    call: RetryId | None = None  # this call's id: a retry repeats it, and is not stored again
    read: ReadSeconds | None = None  # reading seconds since the tag's last report


class Decision(msgspec.Struct, frozen=True):
    """What to show, where and when; ``html`` is null for a control variant."""

    id: str
    rule: str
    variant: str
    placement: Placement
    show: Show
    html: str | None


class TriggerSpec(msgspec.Struct, frozen=True, omit_defaults=True):
    """A trigger the tag should watch, because some rule counts it."""

    name: str
    on: str
    selector: str | None = None
    percent: int | None = None
    seconds: int | None = None


class DecideResponse(msgspec.Struct, frozen=True):
    visitor: str
    identified: bool
    decisions: list[Decision]
    triggers: list[TriggerSpec]
    goals: list[str]
    hide: list[str] = []  # selectors a `replace` may take over: hidden until the decision
    now: int = 0  # the server's clock (epoch ms): the tag dates its events by it
    reading: bool = False  # some rule reads reading time: the tag reports it
    data: list[str] = []  # page-data keys some rule reads: setting one asks for a re-decision


class Feedback(msgspec.Struct, frozen=True):
    """What happened to a decision (``impression``, ``click``, ``dismiss``, ``convert``), or a
    named page event (``event``, e.g. a goal such as ``subscribe``)."""

    type: Literal["impression", "click", "dismiss", "convert", "event"]
    decision: Short | None = None
    rule: Short | None = None
    variant: Short | None = None
    name: Short | None = None
    at: Millis | None = None  # within the last day, and at most a minute ahead of the server
    id: RetryId | None = None  # this event's id: a retry repeats it, and is not stored again
    # A click on a recommended product (a card's ``data-sc-product`` and ``data-sc-strategy``),
    # or an ``event``'s products (an add-to-cart's, a purchase's lines) and value (its total).
    product: ProductId | None = None
    products: ProductIds | None = None
    # Any name: one that is not a strategy of the decision's widget makes a plain click
    # (api/tag.py), never a refused batch (a site's own template may name its own).
    strategy: Short | None = None
    value: Number | None = None


class EventsRequest(msgspec.Struct, frozen=True):
    """``POST /v1/events``, usually sent with ``navigator.sendBeacon``: events, or reading
    time (``read``) reported as a page is hidden or left, or both."""

    site: Short
    # Left out only by a report of reading time alone; a list, when sent, has an event.
    events: Annotated[list[Feedback], msgspec.Meta(min_length=1, max_length=50)] = []
    read: ReadSeconds | None = None  # reading seconds since the tag's last report
    call: RetryId | None = None  # this call's id: a retry credits its reading only once


# A form's fields may hold any character here: forms.py refuses control characters (NUL
# included) with a 422 that names the field, as a person filling the form should see it.
FieldText = Annotated[str, msgspec.Meta(max_length=2048)]
FieldName = Annotated[str, msgspec.Meta(max_length=128)]
FieldValue = (
    FieldText | bool | int | float | Annotated[list[FieldName], msgspec.Meta(max_length=20)] | None
)
"""A submitted field: text; a multiple choice's options; a checkbox's or consent's boolean; a
number. Anything else (an object, a deeper list) is refused with a 400 naming the field."""


class FormRequest(msgspec.Struct, frozen=True):
    """``POST /v1/forms``: a form in a decided widget, submitted. ``id`` is the tag's id for
    this submission: a retry repeats it, and is stored once."""

    site: Short
    decision: Short
    rule: Short
    variant: Short
    fields: Annotated[dict[FieldName, FieldValue], msgspec.Meta(max_length=50)]
    id: RetryId | None = None


class FormResponse(msgspec.Struct, frozen=True):
    """A submission stored (or a retry of one): ``identified`` says whether the browser is
    identified as a contact by a verified link (a form never does that by itself)."""

    ok: bool
    identified: bool
