"""Preview links: check a campaign on the real page before it goes live.

``sitecue preview --site shop --rule free-express --url https://shop.example/cart`` (or the
dashboard's Preview button) prints the page's address with ``?sc_preview=<grant>``. The
grant names the rule and variant and when it expires, and is signed with the site's own
"preview" key (see :mod:`sitecue.keyring`): it cannot be altered, moved to another rule,
variant or site, or used after it expires. Opened in any browser, the page shows that rule's
variant, whatever its schedule, caps and conditions say, and the tag loads a small panel
listing every rule's verdict for this page view (the reasons of the decision log).

A preview counts nothing: no decision or trigger is logged, the visitor's state cookie is
neither read into nor written (so no cap or sticky variant changes), and the decision id is
issued to :data:`PREVIEWER`, which no visitor can be, so the impression the tag reports is
dropped and a form in the widget cannot be submitted. A grant that does not verify answers
400 naming ``preview``, and nothing is shown.

The link is a bearer grant for seeing one campaign early: whoever holds it sees the preview
until it expires (1 hour by default, 7 days at most), and it unlocks nothing else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import msgspec

from . import catalog, decision_ids
from .decide import Verdict, decide
from .errors import BadRequest
from .keyring import Keyring
from .personal import Recommender
from .protocol import DecideRequest, DecideResponse, Decision
from .rules import CompiledRule, CompiledSite
from .state import VisitorState

__all__ = [
    "MAX_TTL_S",
    "PARAMETER",
    "PREVIEWER",
    "PURPOSE",
    "Grant",
    "Panel",
    "PreviewResponse",
    "grant_in",
    "link",
    "mint",
    "show",
    "verify",
]

PURPOSE = "preview"  # the keyring purpose of the keys that sign preview grants
PARAMETER = "sc_preview"  # the page's query parameter the tag passes on (in page.url)
PREVIEWER = decision_ids.PREVIEW  # whom preview decisions are issued to: no visitor id is
# this short (they have 16 to 64 characters), so feedback on them is dropped
MAX_TTL_S = 7 * 86_400
_MAC_BYTES = 16
_MAX_GRANT = 400  # a rule and a variant id of at most 64 characters each, and the MAC


class Grant(msgspec.Struct, array_like=True, frozen=True):
    """What a preview link allows: this rule's variant, until ``expires`` (epoch seconds)."""

    rule: str
    variant: str
    expires: int


class Panel(msgspec.Struct, frozen=True):
    """What the preview panel shows: the rule forced, and every rule's real verdict."""

    rule: str
    variant: str
    expires: int  # epoch ms
    verdicts: list[Verdict]


class PreviewResponse(DecideResponse, frozen=True):
    """``/v1/decide``'s answer on a preview link: the forced decision only, and the panel."""

    preview: Panel | None = None


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Grant).decode


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def mint(keyring: Keyring, site: str, rule: str, variant: str, expires: int) -> str:
    """A grant for ``variant`` of ``rule`` on ``site`` until ``expires`` (epoch seconds)."""
    payload = _encode(Grant(rule, variant, expires))
    return f"{_b64(payload)}.{_b64(_mac(keyring.mac_key(PURPOSE, site), payload))}"


def verify(keyring: Keyring, site: CompiledSite, text: str, now_ms: int) -> tuple[Grant, int]:
    """The grant ``text`` carries and the index of its variant, if one of the site's preview
    keys signed it, it has not expired, and its rule and variant are still configured; else
    BadRequest naming ``preview``."""
    refused = f"preview: expected a link made by sitecue preview for site '{site.name}'"
    payload_text, dot, mac_text = text.partition(".")
    if len(text) > _MAX_GRANT or not dot:
        raise BadRequest(refused)
    try:
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except (binascii.Error, ValueError):
        raise BadRequest(refused) from None
    # compare_digest: how long the comparison takes says nothing about a forged MAC.
    if not any(
        hmac.compare_digest(mac, _mac(key, payload)) for key in keyring.mac_keys(PURPOSE, site.name)
    ):
        raise BadRequest(f"{refused} (this one was altered, or made for another site)")
    try:
        grant = _decode(payload)
    except msgspec.DecodeError:  # signed by us, so only a format from another version
        raise BadRequest(refused) from None
    if grant.expires * 1000 <= now_ms:
        raise BadRequest(f"preview: this link expired at {grant.expires} (epoch s); make a new one")
    rule = _rule(site, grant.rule)
    if rule is None:
        raise BadRequest(f"preview: rule '{grant.rule}' is no longer in site '{site.name}'")
    ids = [v.id for v in rule.variants]
    if grant.variant not in ids:
        raise BadRequest(f"preview: variant '{grant.variant}' is no longer in rule '{grant.rule}'")
    return grant, ids.index(grant.variant)


def _rule(site: CompiledSite, rule_id: str) -> CompiledRule | None:
    return next((r for r in site.rules if r.id == rule_id), None)


def grant_in(url: str) -> str | None:
    """The preview grant of a page address, if it carries one (cheap for those that don't)."""
    if PARAMETER not in url:
        return None
    try:
        values = parse_qs(urlsplit(url).query).get(PARAMETER)
    except ValueError:
        return None
    return values[0] if values else None


def link(url: str, grant: str) -> str:
    """``url`` with the grant added to its query (replacing any grant it had)."""
    parts = urlsplit(url)
    query = [(k, v) for k, vs in parse_qs(parts.query).items() for v in vs if k != PARAMETER]
    query.append((PARAMETER, grant))
    return urlunsplit(parts._replace(query=urlencode(query)))


def show(
    site: CompiledSite,
    state: VisitorState,
    request: DecideRequest,
    now: int,
    key: bytes,
    grant: Grant,
    index: int,
    recommender: Recommender | None = None,
) -> tuple[list[Decision], Panel]:
    """The forced decision and the panel. The verdicts are what this visitor would get
    (decided on their state, which the caller then drops), so the panel explains the live
    behaviour; only the granted rule's variant is shown, a personal widget rendered for
    this visitor (nothing, when it has no product to recommend them)."""
    verdicts = decide(site, state, request, now, key=key, recommender=recommender).verdicts
    rule = _rule(site, grant.rule)
    assert rule is not None  # verify() checked it
    variant = rule.variants[index]
    html = rule.html[index]
    personal = rule.personal[index] if rule.personal else None
    if personal is not None:
        raw = request.page.data.get("product")
        shown = catalog.page_view(site, request.page.url, raw, False) if raw is not None else None
        html = personal.render(state, shown[0] if shown else None, recommender)[0]
    view = request.view or f"@{now}"
    decision = Decision(
        id=decision_ids.issue(key, PREVIEWER, view, rule.id, variant.id, now),
        rule=rule.id,
        variant=variant.id,
        placement=rule.rule.placement,
        show=rule.rule.show,
        html=html,
    )
    return [decision], Panel(rule.id, variant.id, grant.expires * 1000, verdicts)
