"""Email tokens: opaque, sealed per site, expiring, and short enough for a link."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import pytest

from sitecue.tokens import TokenCodec, TokenRejected, parse_ttl

NOW = 1_790_000_000  # epoch seconds
EMAIL = "alice.smith@example.com"
codec = TokenCodec(["token-test-secret-0000"])


def test_a_token_names_its_contact_until_it_expires() -> None:
    token = codec.mint("news", "customer-123", NOW + 30 * 86_400)
    assert codec.verify("news", token, NOW) == "customer-123"
    assert codec.verify("news", token, NOW + 30 * 86_400 - 1) == "customer-123"
    with pytest.raises(TokenRejected, match="expired"):
        codec.verify("news", token, NOW + 30 * 86_400)


def test_a_token_reveals_nothing_of_whom_it_names() -> None:
    """The contact id is often an email address: no spelling of it is in the link, and two
    tokens for the same person look unrelated."""
    first, second = (codec.mint("news", EMAIL, NOW + 86_400) for _ in range(2))
    assert first != second
    shifted = [EMAIL, "." + EMAIL, ".." + EMAIL]  # base64 at each of its three alignments
    for text in shifted:
        spelled = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
        for token in (first, second):
            assert EMAIL not in token and spelled[4:-4] not in token
    assert first[:16] != second[:16]  # not even a shared prefix for the same person


def test_a_token_is_short_enough_for_a_link(capsys: pytest.CaptureFixture[str]) -> None:
    token = codec.mint("news", EMAIL, NOW + 30 * 86_400)
    with capsys.disabled():
        print(f"\n  token for {EMAIL} ({len(token)} characters): {token}")
    assert len(token) < 100 and token.isascii()
    assert all(c.isalnum() or c in "-_" for c in token)  # nothing to escape in a URL


def _flip(token: str, at: int) -> str:
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda t: _flip(t, 5), "bad signature"),  # the nonce
        (lambda t: _flip(t, 20), "bad signature"),  # the sealed expiry and contact
        (lambda t: _flip(t, len(t) - 3), "bad signature"),  # the tag
        (lambda t: t[: len(t) - len(t) % 4 - 4], "bad signature"),  # cut short
        (lambda t: "", "bad signature"),
        (lambda t: t + "=", "malformed"),
        (lambda t: t[:10] + "!" + t[10:], "malformed"),  # skipped by a lax decoder
        (lambda t: "Y3VzdG9tZXItMTIz.ta7mdc.c2lnbmF0dXJl", "bad signature"),  # forged, old form
        (lambda t: "not a token at all", "malformed"),
    ],
)
def test_an_altered_token_is_refused_with_its_reason(
    tamper: Callable[[str], str], reason: str
) -> None:
    token = codec.mint("news", "customer-123", NOW + 86_400)
    before = codec.rejected[reason]
    with pytest.raises(TokenRejected, match=reason):
        codec.verify("news", tamper(token), NOW)
    assert codec.rejected[reason] == before + 1


def test_one_token_has_one_spelling_and_one_fingerprint() -> None:
    """Base64 decoders ignore spare low bits: a token whose last character is changed in
    them only must be refused, or each spelling would count as a new token (with a fresh
    allowance of browsers)."""
    for contact in ("c", "cu", "cus"):  # each remainder of the sealed length modulo 3
        token = codec.mint("news", contact, NOW + 86_400)
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        for c in alphabet:
            other = token[:-1] + c
            if other == token:
                continue
            same = base64.urlsafe_b64decode(other + "=" * (-len(other) % 4)) == decoded
            with pytest.raises(TokenRejected) as refused:
                codec.verify("news", other, NOW)
            assert refused.value.reason == "malformed" or not same
        assert codec.read("news", token, NOW).fingerprint == codec.read("news", token, NOW)[2]


def test_a_token_is_worthless_on_another_site_or_with_another_secret() -> None:
    token = codec.mint("shop", "customer-123", NOW + 86_400)
    with pytest.raises(TokenRejected, match="bad signature"):
        codec.verify("news", token, NOW)
    with pytest.raises(TokenRejected, match="bad signature"):
        TokenCodec(["another-secret-00000000"]).verify("shop", token, NOW)


def test_rotation_keeps_old_tokens_valid() -> None:
    old = TokenCodec(["old-secret-0000000000"]).mint("news", "c-1", NOW + 60)
    rotated = TokenCodec(["new-secret-0000000000", "old-secret-0000000000"])  # new signs
    assert rotated.verify("news", old, NOW) == "c-1"
    new = rotated.mint("news", "c-2", NOW + 60)
    assert rotated.verify("news", new, NOW) == "c-2"
    with pytest.raises(TokenRejected, match="bad signature"):  # the first secret seals
        TokenCodec(["old-secret-0000000000"]).verify("news", new, NOW)


def test_contact_ids_and_expiries_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="contact: expected an id of 1 to 128"):
        codec.mint("news", "x" * 129, NOW)
    with pytest.raises(ValueError, match="expires: expected epoch seconds before 2106"):
        codec.mint("news", "c", 2**32)


def test_minting_a_campaign_list_takes_seconds() -> None:
    """Behaviour, not a benchmark (bench/tokens.py is one): 100,000 tokens in well under the
    time a person waits."""
    start = time.process_time()  # CPU time: a busy machine cannot fail it
    tokens = {codec.mint("news", f"customer-{i}", NOW + 86_400) for i in range(100_000)}
    assert len(tokens) == 100_000 and time.process_time() - start < 30


def test_ttl() -> None:
    assert parse_ttl("30d") == 30 * 86_400 and parse_ttl("12h") == 12 * 3_600
    with pytest.raises(ValueError, match="ttl: expected a lifetime such as 30d"):
        parse_ttl("forever")


def _legacy_token(secret: str, site: str, contact: str, expires: int) -> str:
    """A token as versions before sealing minted it (signed, readable)."""
    import base64
    import hashlib

    import itsdangerous

    salt = f"sitecue.token:{site}".encode()
    key = hashlib.sha256(salt + b"signer" + secret.encode()).digest()
    signer = itsdangerous.Signer(
        [key], salt=salt, key_derivation="none", digest_method=hashlib.sha256
    )
    name = base64.urlsafe_b64encode(contact.encode()).rstrip(b"=").decode()
    return signer.sign(f"{name}.{_base36(expires)}").decode()


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def test_a_token_of_an_earlier_version_is_honoured_until_it_expires() -> None:
    """Links in campaigns sent before the upgrade keep identifying, as one token whatever
    the spelling; forged, other-site and expired ones do not."""
    secret = "token-test-secret-0000"
    old = _legacy_token(secret, "news", "customer-123", NOW + 86_400)
    legacy = TokenCodec([secret])
    held = legacy.read("news", old, NOW)
    assert (held.contact, held.expires) == ("customer-123", NOW + 86_400)
    with pytest.raises(TokenRejected, match="expired"):
        legacy.verify("news", old, NOW + 86_400)
    with pytest.raises(TokenRejected, match="bad signature"):
        legacy.verify("shop", old, NOW)
    with pytest.raises(TokenRejected, match="bad signature"):
        TokenCodec(["another-secret-00000000"]).verify("news", old, NOW)
