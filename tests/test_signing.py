"""The Sitecue-Signature header: what it signs, and what a receiver refuses."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

from sitecue.webhooks.signing import TOLERANCE_S, sign, verify

SECRET = b"webhook-secret-0123456789"
BODY = b'{"event":"form.submitted"}'
T = 1_764_000_000


def test_the_header_is_t_and_the_hmac_of_t_dot_body() -> None:
    mac = hmac.new(SECRET, f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, T) == f"t={T},v1={mac}"


def test_a_signature_verifies_within_the_tolerance_only() -> None:
    header = sign(SECRET, BODY, T)
    assert verify(SECRET, BODY, header, T)
    assert verify(SECRET, BODY, header, T + TOLERANCE_S)
    assert not verify(SECRET, BODY, header, T + TOLERANCE_S + 1)  # replayed later


def test_another_body_secret_or_time_does_not_verify() -> None:
    header = sign(SECRET, BODY, T)
    assert not verify(SECRET, BODY + b" ", header, T)
    assert not verify(b"another-secret-000000", BODY, header, T)
    forged_time = header.replace(f"t={T}", f"t={T + 1}")
    assert not verify(SECRET, BODY, forged_time, T)


def test_garbage_headers_are_refused_not_raised() -> None:
    for header in ["", "t=", "v1=abc", f"t={T}", f"t={T},v1=é", "t=x,v1=00", f"t={'9' * 40},v1=0",
                   "t=\u00b2,v1=00", "t=\u0663,v1=00"]:  # fmt: skip
        assert not verify(SECRET, BODY, header, T)


def test_any_of_several_v1_may_match_while_a_secret_rotates() -> None:
    good = sign(SECRET, BODY, T).split(",")[1]
    assert verify(SECRET, BODY, f"t={T},v1={'0' * 64},{good}", T)


def test_the_readme_snippet_verifies_what_sitecue_signs() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)  # the README's own code, as a receiver would paste it
    verified = namespace["verified"]
    header = sign(SECRET, BODY, int(time.time()))
    assert verified(SECRET, BODY, header)
    assert not verified(SECRET, BODY + b"x", header)
    assert not verified(SECRET, BODY, sign(SECRET, BODY, int(time.time()) - 301))
    assert not verified(SECRET, BODY, "t=\u00b2,v1=00")  # a digit int() refuses: no crash
