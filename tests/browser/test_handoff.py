"""The analytics hand-off in a real browser: every impression, click, dismiss, conversion and
form submission is pushed to the page's `dataLayer` (GTM's style, and Matomo's `_mtm`) and
dispatched as a `sitecue:<type>` CustomEvent, each naming its rule, variant and decision; and
a page whose data layer is broken keeps a working tag. The lab site is
tests/browser/lab/sites/handoff.json, its page tests/browser/lab/demo/handoff/index.html."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pages import open_page
from playwright.sync_api import BrowserContext, Page, expect


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    assert errors == []


def shown(page: Page, lab_url: str, layer: str) -> dict[str, dict[str, str]]:
    """Open the page with the data layer ``layer``, wait for both widgets, and return what
    each rule's hand-off should say: ``{rule: {rule, variant, decision}}``."""
    answer = open_page(page, f"{lab_url}/handoff/?layer={layer}")
    expect(page.get_by_role("link", name="Details")).to_be_visible()
    expect(page.get_by_label("Email")).to_be_visible()
    return {
        d["rule"]: {"rule": d["rule"], "variant": d["variant"], "decision": d["id"]}
        for d in answer["decisions"]
    }


def wait_for(page: Page, type_: str, count: int = 1) -> None:
    """Until ``count`` CustomEvents of ``type_`` were dispatched (no sleeping)."""
    page.wait_for_function(
        f"seen.filter((e) => e.type === 'sitecue:{type_}').length >= {count}", polling=20
    )


def act(page: Page, email: str) -> None:
    """Do everything a visitor can with the two widgets, waiting for each hand-off."""
    wait_for(page, "impression", 2)
    page.get_by_role("link", name="Details").click()
    wait_for(page, "click")
    page.get_by_role("link", name="Join now").click()
    wait_for(page, "convert")
    page.get_by_label("Email").fill(email)  # one each: an address may be sent 3 times an hour
    page.get_by_role("button", name="Sign me up").click()
    expect(page.get_by_text("You are in.")).to_be_visible()
    wait_for(page, "submit")
    page.get_by_role("button", name="No thanks").click()
    wait_for(page, "dismiss")


EXPECTED = [
    ("click", "offer"),
    ("convert", "offer"),
    ("dismiss", "offer"),
    ("impression", "offer"),
    ("impression", "signup"),
    ("submit", "signup"),
]


def test_every_action_reaches_the_data_layer_and_custom_events(page: Page, lab_url: str) -> None:
    about = shown(page, lab_url, "array")
    act(page, "every-action@example.com")
    events = page.evaluate("seen")
    assert sorted((e["type"], e["detail"]["rule"]) for e in events) == [
        (f"sitecue:{t}", r) for t, r in EXPECTED
    ]
    for e in events:
        assert e["detail"] == about[e["detail"]["rule"]]
    for name in ("dataLayer", "_mtm"):
        pushed = page.evaluate(
            f"window.{name}.filter((e) => String(e.event).startsWith('sitecue_'))"
        )
        assert sorted((e["event"], e["sitecue"]["rule"]) for e in pushed) == [
            (f"sitecue_{t}", r) for t, r in EXPECTED
        ]
        for e in pushed:
            assert e["sitecue"] == about[e["sitecue"]["rule"]]
            assert set(e) == {"event", "sitecue"}
    # A form's buttons are no click, and its taking is `submit`, not a `convert`.
    assert [e["detail"]["rule"] for e in events if e["type"] == "sitecue:convert"] == ["offer"]


def test_no_data_layer_is_made_for_a_page_without_one(page: Page, lab_url: str) -> None:
    shown(page, lab_url, "none")
    wait_for(page, "impression", 2)
    assert page.evaluate("typeof window.dataLayer + ' ' + typeof window._mtm") == (
        "undefined undefined"
    )


@pytest.mark.parametrize("layer", ["object", "throws", "getter"])
def test_a_broken_data_layer_never_breaks_the_tag(page: Page, lab_url: str, layer: str) -> None:
    """Not an array, a push that throws, a getter that throws: the widgets still work, the
    server still hears of each action, and the CustomEvents still go out."""
    about = shown(page, lab_url, layer)
    wait_for(page, "impression", 2)
    with page.expect_request(
        lambda r: "/v1/events" in r.url and '"convert"' in (r.post_data or "")
    ) as sent:
        page.get_by_role("link", name="Join now").click()
    assert about["offer"]["decision"] in (sent.value.post_data or "")
    wait_for(page, "convert")
    page.get_by_label("Email").fill(f"broken-{layer}@example.com")
    page.get_by_role("button", name="Sign me up").click()
    expect(page.get_by_text("You are in.")).to_be_visible()
    wait_for(page, "submit")
    if layer == "object":
        assert page.evaluate("typeof window.dataLayer.push") == "function"
    if layer == "throws":
        assert page.evaluate("window.dataLayer.length") == 0
