"""Email tokens: opaque, per-site, expiring credentials that name a contact.

A token is the contact id and its expiry sealed with AES-256-GCM (:mod:`sitecue.keyring`,
purpose ``token``, a key per site), in URL-safe base64 without padding::

    base64url( nonce[12] | AES-GCM( expiry[4, big-endian epoch seconds] | contact ) | tag[16] )

So a link reveals nothing about who it names (the contact id is often an email address),
and a token altered, sealed for another site or with a secret no longer held opens to
nothing. Secrets rotate as the keyring's do: the signing one seals, every one opens. A token
for ``alice.smith@example.com`` is 74 characters.

    codec = TokenCodec(["a long random secret"])
    token = codec.mint("shop", "customer-123", expires=1_800_000_000)
    assert codec.verify("shop", token, now=1_790_000_000) == "customer-123"
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections import Counter as Tally
from typing import NamedTuple

import itsdangerous

from .keyring import Keyring, Unsealable

__all__ = [
    "MAX_CONTACT_ID",
    "MAX_TOKEN",
    "Token",
    "TokenCodec",
    "TokenRejected",
    "parse_ttl",
]

MAX_CONTACT_ID = 128  # characters
MAX_TOKEN = 1024  # characters: a contact id of 128 four-byte characters seals to 726
PURPOSE = "token"
_EXPIRY = struct.Struct(">I")  # epoch seconds, good until 2106
_TTL = re.compile(r"([1-9][0-9]{0,3})([hd])")


class TokenRejected(Exception):
    """A token that identifies nobody; ``reason`` says why (for the log and the metrics)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Token(NamedTuple):
    """What an authentic token says: who, until when (epoch seconds), and its fingerprint,
    the name under which the store counts the browsers it identified."""

    contact: str
    expires: int
    fingerprint: str


def parse_ttl(text: str) -> int:
    """``30d`` or ``12h`` in seconds; a ValueError names what was expected."""
    match = _TTL.fullmatch(text)
    if match is None:
        raise ValueError(f"ttl: expected a lifetime such as 30d or 12h, got {text!r}")
    return int(match[1]) * (86_400 if match[2] == "d" else 3_600)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class TokenCodec:
    """Mints and opens email tokens. ``rejected`` counts the tokens refused, by reason, for
    the metrics (``bad signature``: not sealed by us for this site, or altered;
    ``malformed``; ``expired``;
    ``too many browsers``)."""

    def __init__(self, secrets: list[str]) -> None:
        self._keyring = Keyring(secrets)
        self._secrets = list(secrets)
        self.rejected: Tally[str] = Tally()

    def mint(self, site: str, contact: str, expires: int) -> str:
        """A token naming ``contact`` on ``site`` until ``expires`` (epoch seconds)."""
        if not 0 < len(contact) <= MAX_CONTACT_ID:
            raise ValueError(f"contact: expected an id of 1 to {MAX_CONTACT_ID} characters")
        if not 0 < expires < 2**32:
            raise ValueError(f"expires: expected epoch seconds before 2106, got {expires}")
        plain = _EXPIRY.pack(expires) + contact.encode()
        return _b64(self._keyring.sealer(PURPOSE, site).seal(plain))

    def read(self, site: str, token: str, now: int) -> Token:
        """What ``token`` says on ``site`` at ``now`` (epoch seconds), or TokenRejected with
        the reason (counted in ``rejected``)."""
        if "." in token:  # never in unpadded base64: a signed token of an earlier version
            return self._read_legacy(site, token, now)
        try:
            sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise self.refuse("malformed") from None
        # The decoder skips characters outside the alphabet and ignores spare low bits: only
        # the canonical spelling is accepted, so one token cannot pass for several (each a
        # "new" token with a fresh allowance of browsers).
        if _b64(sealed) != token:
            raise self.refuse("malformed")
        try:
            plain = self._keyring.sealer(PURPOSE, site).open(sealed)
            (expires,) = _EXPIRY.unpack_from(plain)
            contact = plain[_EXPIRY.size :].decode()
        except Unsealable:
            raise self.refuse("bad signature") from None
        except (struct.error, UnicodeDecodeError):
            raise self.refuse("malformed") from None  # sealed by us, so never in practice
        if expires <= now:
            raise self.refuse("expired")
        # The store keeps a hash, not the token, so its rows cannot be replayed as links.
        fingerprint = hashlib.sha256(sealed).hexdigest()[:32]
        return Token(contact, expires, fingerprint)

    def _read_legacy(self, site: str, token: str, now: int) -> Token:
        """A signed (readable) token minted before tokens were sealed: still honoured until
        it expires, so links in campaigns already sent keep working after an upgrade, with
        the same limit of browsers. Its fingerprint hashes what was signed, so however the
        signature is spelled it counts as one token."""
        salt = f"sitecue.token:{site}".encode()
        keys = [hashlib.sha256(salt + b"signer" + s.encode()).digest() for s in self._secrets]
        signer = itsdangerous.Signer(
            keys, salt=salt, key_derivation="none", digest_method=hashlib.sha256
        )
        try:
            payload = signer.unsign(token)
            name, _, expiry = payload.decode().partition(".")
            contact = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
            expires = int(expiry, 36)
        except itsdangerous.BadSignature:
            raise self.refuse("bad signature") from None
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise self.refuse("malformed") from None
        if expires <= now:
            raise self.refuse("expired")
        fingerprint = hashlib.sha256(salt + b"|" + payload).hexdigest()[:32]
        return Token(contact, expires, fingerprint)

    def verify(self, site: str, token: str, now: int) -> str:
        """The contact ``token`` names on ``site`` at ``now`` (epoch seconds), or
        TokenRejected with the reason."""
        return self.read(site, token, now).contact

    def refuse(self, reason: str) -> TokenRejected:
        """Count a refusal by ``reason`` and return the error to raise."""
        self.rejected[reason] += 1
        return TokenRejected(reason)
