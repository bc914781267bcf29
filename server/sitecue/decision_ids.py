"""Decision ids that prove the server issued them, checked without a database read.

An id is 24 URL-safe characters: a 6-byte nonce naming the page view, then a 12-byte MAC
(HMAC-SHA256, the site's "decision" key from the keyring) over the visitor, that nonce, the
rule and the variant. ``/v1/events`` accepts an impression, click, dismiss or convert only
with an id that verifies for the visitor sending it and the rule and variant it names, so
nobody can report feedback on a decision the server never made, and one visitor's ids are
worthless to another visitor, site, rule or variant. The nonce is derived from the tag's
page-view id, so a re-decision within one page view repeats the id (and the tag does not
render the widget twice).

    key = Keyring(["a long random secret"]).mac_key("decision", "news")
    d = issue(key, "visitor-1", "view-7", "paywall-faq", "faq")
    assert verify([key], d, "visitor-1", "paywall-faq", "faq")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import msgspec

__all__ = ["ANONYMOUS", "ID_LENGTH", "PREVIEW", "PURPOSE", "issue", "verify"]

PURPOSE = "decision"  # the keyring purpose of the keys that sign decision ids
ANONYMOUS = "anonymous"  # the visitor a decision is issued to when no state may be kept
PREVIEW = "preview"  # ... and on a preview link (sitecue.preview): it counts for nobody
_NONCE_BYTES = 6
_MAC_BYTES = 12  # 96 bits: a forger's chance per attempt is 2**-96
ID_LENGTH = 4 * (_NONCE_BYTES + _MAC_BYTES) // 3
_pack = msgspec.msgpack.Encoder().encode  # unambiguous framing of the MAC'd fields


def _mac(key: bytes, visitor: str, nonce: bytes, rule: str, variant: str) -> bytes:
    message = _pack((visitor, nonce, rule, variant))
    return hmac.new(key, message, hashlib.sha256).digest()[:_MAC_BYTES]


def issue(key: bytes, visitor: str, view: str, rule: str, variant: str) -> str:
    """The id of the decision showing ``variant`` of ``rule`` to ``visitor`` in page view
    ``view``: the same inputs always give the same id."""
    nonce = hashlib.blake2b(view.encode(), digest_size=_NONCE_BYTES).digest()
    return base64.urlsafe_b64encode(nonce + _mac(key, visitor, nonce, rule, variant)).decode()


def verify(keys: list[bytes], decision: str, visitor: str, rule: str, variant: str) -> bool:
    """Did one of ``keys`` (every key of the rotation) issue ``decision`` to ``visitor`` for
    this rule and variant?"""
    if len(decision) != ID_LENGTH:
        return False
    try:
        raw = base64.urlsafe_b64decode(decision.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    if len(raw) != _NONCE_BYTES + _MAC_BYTES:  # characters outside the alphabet were skipped
        return False
    nonce, mac = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
    # compare_digest: the time taken says nothing about how much of a forged MAC was right.
    return any(hmac.compare_digest(mac, _mac(key, visitor, nonce, rule, variant)) for key in keys)
