"""Email tokens, attribute checks, and a person's state rebuilt from every browser's history."""

from __future__ import annotations

import time

import pytest

from sitecue.decide import decide
from sitecue.errors import BadRequest
from sitecue.identity import TokenCodec, TokenRejected, check_attributes, parse_ttl, rebuild
from sitecue.protocol import DecideRequest, Page, PageEvent
from sitecue.state import VisitorState, day_of
from sitecue.store import DecisionRecord, EventRecord
from sites import site

NOW = 1_790_000_000  # epoch seconds
NOW_MS = NOW * 1000
DAY_MS = 86_400_000
codec = TokenCodec(["token-test-secret-0000"])


def test_a_token_names_its_contact_until_it_expires() -> None:
    token = codec.mint("news", "customer-123", NOW + 30 * 86_400)
    assert codec.verify("news", token, NOW) == "customer-123"
    assert codec.verify("news", token, NOW + 30 * 86_400 - 1) == "customer-123"
    with pytest.raises(TokenRejected, match="expired"):
        codec.verify("news", token, NOW + 30 * 86_400)


def test_a_token_is_short_enough_for_a_link() -> None:
    token = codec.mint("news", "customer-123", NOW + 30 * 86_400)
    assert len(token) <= 72 and token.isascii()
    assert all(c.isalnum() or c in "-_." for c in token)  # nothing to escape in a URL


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # the signature
        lambda t: "Y3VzdG9tZXItOTk5" + t[t.index(".") :],  # another contact, same signature
        lambda t: t.rsplit(".", 1)[0],  # unsigned
        lambda t: "",
        lambda t: "not a token at all",
    ],
)
def test_an_altered_or_unsigned_token_is_refused(tamper: object) -> None:
    token = codec.mint("news", "customer-123", NOW + 86_400)
    with pytest.raises(TokenRejected, match="bad signature"):
        codec.verify("news", tamper(token), NOW)  # type: ignore[operator]


def test_a_token_is_worthless_on_another_site_or_with_another_secret() -> None:
    token = codec.mint("shop", "customer-123", NOW + 86_400)
    with pytest.raises(TokenRejected, match="bad signature"):
        codec.verify("news", token, NOW)
    with pytest.raises(TokenRejected, match="bad signature"):
        TokenCodec(["another-secret-00000000"]).verify("shop", token, NOW)


def test_rotation_keeps_old_tokens_valid() -> None:
    old = TokenCodec(["old-secret-0000000000"]).mint("news", "c-1", NOW + 60)
    rotated = TokenCodec(["old-secret-0000000000", "new-secret-0000000000"])
    assert rotated.verify("news", old, NOW) == "c-1"
    assert rotated.verify("news", rotated.mint("news", "c-2", NOW + 60), NOW) == "c-2"


def test_minting_a_campaign_list_takes_seconds() -> None:
    """Behaviour, not a benchmark: 100,000 tokens in well under the time a person waits.
    Counted in this process's CPU time, so other work on a busy machine cannot fail it."""
    start = time.process_time()
    tokens = {codec.mint("news", f"customer-{i}", NOW + 86_400) for i in range(100_000)}
    assert len(tokens) == 100_000 and time.process_time() - start < 30


def test_ttl() -> None:
    assert parse_ttl("30d") == 30 * 86_400 and parse_ttl("12h") == 12 * 3_600
    with pytest.raises(ValueError, match="ttl: expected a lifetime such as 30d"):
        parse_ttl("forever")


DECLARED = {"customer": "boolean", "tier": "string", "aov": "number"}


def test_declared_attributes_of_their_type_pass() -> None:
    check_attributes(DECLARED, {"customer": True, "tier": "gold", "aov": 87.5}, "attributes")
    check_attributes(DECLARED, {"aov": 87}, "attributes")  # a whole number is a number
    check_attributes(DECLARED, {"tier": None}, "attributes")  # cleared


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tierr": "gold"}, "attributes.tierr: expected an attribute the site declares (aov,"),
        ({"aov": "87"}, "attributes.aov: expected a number, got '87'"),
        ({"aov": True}, "attributes.aov: expected a number, got True"),
        ({"customer": "yes"}, "attributes.customer: expected a boolean, got 'yes'"),
        ([1], "attributes: expected an object of attributes"),
    ],
)
def test_undeclared_or_mistyped_attributes_are_named(values: object, message: str) -> None:
    with pytest.raises(BadRequest, match=message.replace("(", r"\(")):
        check_attributes(DECLARED, values, "attributes")  # type: ignore[arg-type]


def test_rebuild_counts_every_browser_of_the_person() -> None:
    """Two paywall views on the laptop and one on the phone make three for the person: the
    rule that needs three shows on the phone at once."""
    compiled = site()
    laptop = [
        EventRecord("news", "laptop", "trigger", NOW_MS - 2 * DAY_MS, name="paywall_view"),
        EventRecord("news", "laptop", "trigger", NOW_MS - DAY_MS, name="paywall_view"),
        EventRecord("news", "laptop", "trigger", NOW_MS - 9 * DAY_MS, name="paywall_view"),
    ]
    phone = VisitorState(visitor="phone-visitor-000001")
    request = DecideRequest(site="news", page=Page(url="https://news.example/news/a/1"))
    assert decide(compiled, phone, request, NOW_MS).decisions == []
    rebuild(compiled, phone, laptop, [])
    counter = phone.triggers["paywall_view"]
    assert counter.total == 3 and counter.count("7d", day_of(NOW_MS, compiled.zone)) == 2
    again = DecideRequest(site="news", page=request.page, events=[PageEvent(name="paywall_view")])
    assert [d.rule for d in decide(compiled, phone, again, NOW_MS).decisions] == ["paywall-faq"]


def test_rebuild_keeps_dismissals_and_the_person_s_first_variant() -> None:
    compiled = site()
    state = VisitorState(visitor="phone-visitor-000002")
    state.rule("paywall-faq").variant = "control"
    history = [
        EventRecord(
            "news", "laptop", "impression", NOW_MS - DAY_MS, None, "paywall-faq", "faq", "d1"
        ),
        EventRecord(
            "news", "laptop", "dismiss", NOW_MS - DAY_MS + 5, None, "paywall-faq", "faq", "d1"
        ),
    ]
    pageviews = [
        DecisionRecord(
            "d0", "news", "laptop", NOW_MS - DAY_MS, "https://x/news/articles/1.html", []
        )
    ]
    rebuild(compiled, state, history, pageviews)
    memory = state.rules["paywall-faq"]
    assert memory.variant == "faq"  # the laptop's, first: the same on every device
    assert memory.dismissed and memory.shown.total == 1
    assert memory.shown.session == 0  # impressions on the laptop are not this session's
