"""The keyring: every key sitecue uses is derived from the operator's secrets, one key per
purpose and site, so a token or a cookie made for one site (or one use) is worthless for any
other.

``SITECUE_SECRETS`` lists the secrets; the first one (after :mod:`sitecue.settings` has put the
one ``SITECUE_SIGNING_KEY`` names first) seals and signs, every one opens and verifies. So a
secret is rotated in three steps, each rolled out node by node: add the new one to every node
(the old one still signs), then name it the signing key on every node, and drop the old one
once what it signed has expired. At no moment does one node sign with a key another node
cannot verify.
Sealing is authenticated encryption (AES-256-GCM from the ``cryptography`` package): what is
sealed cannot be read, altered or moved to another site or purpose by whoever holds it.

    ring = Keyring(["a long random secret"])
    box = ring.sealer("token", "shop")
    assert box.open(box.seal(b"alice")) == b"alice"
"""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["Keyring", "Sealer", "Unsealable", "fingerprint"]

NONCE_BYTES = 12
OVERHEAD = NONCE_BYTES + 16  # the nonce and the GCM tag: what sealing adds to a plaintext


class Unsealable(ValueError):
    """Sealed with none of our keys, for another site or purpose, or altered."""


def fingerprint(secret: str) -> str:
    """A short public name for ``secret`` (8 hex digits of a MAC keyed by it), to log and to
    name it in ``SITECUE_SIGNING_KEY`` without writing the secret twice. It tells nothing
    of the secret that the cookies sealed with it do not already."""
    return hmac.new(secret.encode(), b"sitecue/fingerprint", hashlib.sha256).hexdigest()[:8]


def derive(secret: str, purpose: str, site: str) -> bytes:
    """A 256-bit key for one purpose on one site (HMAC-SHA256 as a KDF, as HKDF's extract
    step does): knowing one derived key tells nothing about another."""
    info = f"sitecue/{purpose}/{site}".encode()
    return hmac.new(secret.encode(), info, hashlib.sha256).digest()


class Sealer:
    """Seals with the first key (the signing one), opens with any; ``aad`` binds a value to
    its context (for example the visitor it belongs to) without carrying it."""

    def __init__(self, keys: list[bytes]) -> None:
        self._ciphers = [AESGCM(k) for k in keys]  # the signing key first
        self.keys = list(keys)

    def seal(self, plaintext: bytes, aad: bytes | None = None) -> bytes:
        # A random 96-bit nonce per message; with a key per site and purpose, a key seals
        # far fewer than the 2**32 messages at which random nonces start to risk a repeat.
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._ciphers[0].encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes | None = None) -> bytes:
        if len(sealed) < OVERHEAD:
            raise Unsealable("too short")
        nonce, body = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        for cipher in self._ciphers:
            try:
                return cipher.decrypt(nonce, body, aad)
            except InvalidTag:
                continue
        raise Unsealable("sealed with none of our keys, or altered")


class Keyring:
    """The operator's secrets, the signing one first, and the keys derived from them per
    purpose and site."""

    def __init__(self, secrets: list[str]) -> None:
        if not secrets:
            raise ValueError("the keyring needs at least one secret")
        self.secrets = list(secrets)
        # Derived once per purpose and site: each derivation is an HMAC, and the tag's
        # endpoints ask on every request.
        self.sealer = cache(self._sealer)
        self.mac_key = cache(self._mac_key)
        self.mac_keys = cache(self._mac_keys)

    def _sealer(self, purpose: str, site: str) -> Sealer:
        return Sealer([derive(s, purpose, site) for s in self.secrets])

    def _mac_key(self, purpose: str, site: str) -> bytes:
        """The key that signs (MACs) for ``purpose`` on ``site``: the signing secret's."""
        return derive(self.secrets[0], purpose, site)

    def _mac_keys(self, purpose: str, site: str) -> tuple[bytes, ...]:
        """Every key that may have signed, the signing one first (for verifying across a
        rotation)."""
        return tuple(derive(s, purpose, site) for s in self.secrets)
