"""The ``Sitecue-Signature`` header: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``.

The time is signed with the body, so a receiver that checks it within a tolerance refuses a
delivery replayed later; the receiver also dedupes by the ``Sitecue-Delivery`` id. The
scheme is the one Stripe and others use, so receivers' existing code fits it.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["HEADER", "TOLERANCE_S", "sign", "verify"]

HEADER = "Sitecue-Signature"
TOLERANCE_S = 300
"""How far a signature's time may be from the receiver's clock (seconds)."""


def _mac(secret: bytes, t: int, body: bytes) -> str:
    return hmac.new(secret, b"%d." % t + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, t: int) -> str:
    """The header's value for ``body`` sent at ``t`` (unix seconds).

    >>> sign(b"0123456789abcdef", b"{}", 1764000000)[:13]
    't=1764000000,'
    """
    return f"t={t},v1={_mac(secret, t, body)}"


def verify(secret: bytes, body: bytes, header: str, now: int, tolerance: int = TOLERANCE_S) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` at a time within ``tolerance``
    seconds of ``now``. Any ``v1`` may match (several appear while a secret is rotated)."""
    t: int | None = None
    macs: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        # isdigit alone takes "²" (and other digits int() refuses): ASCII digits only.
        if name == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            t = int(value)
        elif name == "v1":
            macs.append(value)
    if t is None or abs(now - t) > tolerance:
        return False
    expected = _mac(secret, t, body).encode()
    # compare_digest takes as long whatever the first wrong character: a receiver that
    # answers faster for a closer guess would let an attacker find a valid MAC byte by byte.
    return any(hmac.compare_digest(expected, mac.encode()) for mac in macs)
