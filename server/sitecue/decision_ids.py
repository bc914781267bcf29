"""Decision ids that prove the server issued them, and when, checked without a database read.

An id is 24 URL-safe characters: a 6-byte nonce, then a 12-byte MAC (HMAC-SHA256, the site's
"decision" key from the keyring) over the visitor, that nonce, the rule and the variant. The
nonce is the UTC day of issue (2 bytes: the day number mod 65536) and 4 bytes derived from
the tag's page-view id, so a re-decision within one page view on the same day repeats the id
(and the tag does not render the widget twice). ``/v1/events`` accepts an impression, click,
dismiss or convert only with an id that verifies for the visitor sending it and the rule
and variant it names, so nobody can report feedback on a decision the server never made,
and one visitor's ids are worthless to another visitor, site, rule or variant; and only
while the id is ``current`` (issued yesterday, today or, clocks drifting, tomorrow), so
feedback replayed after its idempotency key was pruned (two days) cannot count twice.

    key = Keyring(["a long random secret"]).mac_key("decision", "news")
    d = issue(key, "visitor-1", "view-7", "paywall-faq", "faq", now=1_790_000_000_000)
    assert verify([key], d, "visitor-1", "paywall-faq", "faq")
    assert current(d, 1_790_000_000_000 + 86_400_000)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

import msgspec

__all__ = ["ANONYMOUS", "ID_LENGTH", "PREVIEW", "PURPOSE", "current", "issue", "verify"]

PURPOSE = "decision"  # the keyring purpose of the keys that sign decision ids
ANONYMOUS = "anonymous"  # the visitor a decision is issued to when no state may be kept
PREVIEW = "preview"  # ... and on a preview link (sitecue.preview): it counts for nobody
_NONCE_BYTES = 6
_DAY_BYTES = 2  # of the nonce: the UTC day of issue, mod 65536 (179 years)
_DAYS = 1 << (8 * _DAY_BYTES)
_DAY_MS = 86_400_000
_MAC_BYTES = 12  # 96 bits: a forger's chance per attempt is 2**-96
ID_LENGTH = 4 * (_NONCE_BYTES + _MAC_BYTES) // 3
_pack = msgspec.msgpack.Encoder().encode  # unambiguous framing of the MAC'd fields


def _mac(key: bytes, visitor: str, nonce: bytes, rule: str, variant: str) -> bytes:
    message = _pack((visitor, nonce, rule, variant))
    return hmac.digest(key, message, "sha256")[:_MAC_BYTES]  # one-shot, in C


def _day(now: int) -> int:
    return now // _DAY_MS % _DAYS


def issue(key: bytes, visitor: str, view: str, rule: str, variant: str, now: int) -> str:
    """The id of the decision showing ``variant`` of ``rule`` to ``visitor`` in page view
    ``view`` at ``now`` (epoch ms): the same inputs on the same UTC day give the same id."""
    view_part = hashlib.blake2b(view.encode(), digest_size=_NONCE_BYTES - _DAY_BYTES).digest()
    nonce = _day(now).to_bytes(_DAY_BYTES, "big") + view_part
    return base64.urlsafe_b64encode(nonce + _mac(key, visitor, nonce, rule, variant)).decode()


def _decode(decision: str) -> bytes | None:
    """The bytes of a well-formed id, or None. Only the one spelling ``issue`` makes is
    taken: base64 decoders also accept ``+`` and ``/`` and skip stray characters, and each
    other spelling of one id would be counted (and deduplicated) as an id of its own."""
    if len(decision) != ID_LENGTH:
        return None
    try:
        raw = base64.urlsafe_b64decode(decision.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    if len(raw) != _NONCE_BYTES + _MAC_BYTES or base64.urlsafe_b64encode(raw) != decision.encode():
        return None
    return raw


def verify(keys: Sequence[bytes], decision: str, visitor: str, rule: str, variant: str) -> bool:
    """Did one of ``keys`` (every key of the rotation) issue ``decision`` to ``visitor`` for
    this rule and variant?"""
    raw = _decode(decision)
    if raw is None:
        return False
    nonce, mac = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
    # compare_digest: the time taken says nothing about how much of a forged MAC was right.
    return any(hmac.compare_digest(mac, _mac(key, visitor, nonce, rule, variant)) for key in keys)


def current(decision: str, now: int) -> bool:
    """Was ``decision`` (an id that verified) issued on the UTC day of ``now`` or the day
    before (or after: another node's clock may be past midnight already)? The day is inside
    the MAC'd nonce, so nobody can move it."""
    raw = _decode(decision)
    if raw is None:
        return False
    issued = int.from_bytes(raw[:_DAY_BYTES], "big")
    return (_day(now) - issued) % _DAYS in (0, 1, _DAYS - 1)
