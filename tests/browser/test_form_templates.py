"""Forms in widgets (lead capture), in a real browser, for each form template: the newsletter
sign-up inline (a question, then the email: two steps) and in a modal, the exit-intent
discount that reveals its code once the email is given, and the one-question poll.

Each is filled in with the keyboard alone, refuses a wrong email beside the field (the
browser's own check, then the server's), hides its campaign once sent, shows up over the
operators' API, and a second browser typing the same address never gets the first browser's
answers. The lab site is tests/browser/lab/sites/forms.json."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pages import open_page
from playwright.sync_api import BrowserContext, Page, Request, expect
from test_paywall_faq import visitor_in_variant


@dataclass(frozen=True)
class Template:
    name: str  # the lab page, /forms/<name>.html
    rule: str
    question: str | None  # a choice asked first (step 1), answered with the keyboard
    email: bool  # asks for an email address
    exit_intent: bool = False  # shown when the pointer leaves through the top


NEWSLETTER = Template("newsletter", "briefing", question="topic", email=True)
MODAL = Template("modal", "briefing-modal", question=None, email=True)
DISCOUNT = Template("discount", "discount", question=None, email=True, exit_intent=True)
POLL = Template("poll", "poll", question="wish", email=False)
TEMPLATES = [NEWSLETTER, MODAL, DISCOUNT, POLL]
WITH_EMAIL = [t for t in TEMPLATES if t.email]


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    assert errors == []


@pytest.fixture(scope="module")
def api(lab_url: str, lab_operator: Callable[..., str]) -> Callable[[str], Any]:
    """GET an operators' API path of the lab's `forms` site, with a key for it."""
    key = lab_operator("apikey", "create", "--site", "forms")

    def get(path: str) -> Any:
        request = urllib.request.Request(
            f"{lab_url}/sc{path}", headers={"authorization": f"Bearer {key}"}
        )
        with urllib.request.urlopen(request) as response:
            return json.load(response)

    return get


def show(page: Page, lab_url: str, template: Template) -> Any:
    """Open the template's page and wait until its form is on it; the decide answer."""
    answer = open_page(page, f"{lab_url}/forms/{template.name}.html")
    if template.exit_intent:
        # The tag watches for the exit once it has applied its answer (and kept what to hide).
        page.wait_for_function("localStorage.getItem('sc_hide_forms') !== null")
        page.mouse.move(200, 200)
        page.mouse.move(200, 5)
        page.mouse.move(200, -20)  # out through the top, towards the tabs
    expect(page.locator("form[data-sc-form]")).to_be_visible()
    return answer


def form_posts(page: Page) -> list[Request]:
    """Every request the page sends to /v1/forms, as it sends it."""
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if "/v1/forms" in r.url else None)
    return sent


def keyboard_fill(page: Page, template: Template, email: str, answer_index: int = 1) -> None:
    """Fill the form in with the keyboard alone: Tab into it, arrow keys for a choice, Space
    for a checkbox, Enter on the buttons."""
    if template.name in ("modal", "discount"):
        expect(page.get_by_role("dialog")).to_be_focused()  # a modal takes the focus
    else:
        page.locator("#start").focus()
    page.keyboard.press("Tab")  # the first control of the form
    if template.question:
        expect(page.locator(f"input[name={template.question}]").first).to_be_focused()
        page.keyboard.press("Space")  # choose the first option ...
        for _ in range(answer_index):
            page.keyboard.press("ArrowRight")  # ... then move the choice along
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")  # Next, or the poll's Vote
    if template.email:
        email_input = page.locator("input[name=email]")
        expect(email_input).to_be_focused()  # step 2 starts at its first field
        page.keyboard.type(email)
        page.keyboard.press("Tab")
        if template is NEWSLETTER:  # its consent checkbox
            expect(page.locator("input[name=consent]")).to_be_focused()
            page.keyboard.press("Space")
            page.keyboard.press("Tab")
        expect(page.locator("form[data-sc-form] button[type=submit]")).to_be_focused()
        page.keyboard.press("Enter")


def email_for(test: str, template: Template) -> str:
    return f"{test}-{template.name}@example.com"


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.name)
def test_keyboard_only_submission_hides_the_campaign(
    page: Page, lab_url: str, api: Callable[[str], Any], template: Template
) -> None:
    show(page, lab_url, template)
    email = email_for("keyboard", template)
    with page.expect_response(lambda r: "/v1/forms" in r.url) as posted:
        keyboard_fill(page, template, email)
    assert posted.value.status == 200
    body = json.loads(posted.value.request.post_data or "")
    assert body["site"] == "forms" and body["rule"] == template.rule
    assert body["fields"]["sc_hp"] == ""  # the honeypot, left empty as a person does
    success = page.locator("[data-sc-success]").first
    expect(success).to_be_visible()
    expect(success).to_be_focused()  # read out, and the keyboard stays with it
    expect(page.locator("form[data-sc-form]")).to_be_hidden()
    if template is DISCOUNT:
        expect(page.locator(".sc-code")).to_have_text("LAB10")  # revealed after the email
        expect(page.locator(".sc-code")).to_be_visible()

    # The server counted the submission as the conversion: the campaign is over for this
    # browser, on the next page view as on any other.
    again = open_page(page, f"{lab_url}/forms/{template.name}.html")
    assert template.rule not in {d["rule"] for d in again["decisions"]}
    expect(page.locator("form[data-sc-form]")).to_have_count(0)

    # Over the operators' API: the submission, and the contact it names.
    if template.email:
        query = urllib.parse.urlencode({"site": "forms", "contact": email})
        items = api(f"/v1/submissions?{query}")["items"]
        assert [i["rule"] for i in items] == [template.rule]
        assert items[0]["fields"]["email"] == email
        if template is NEWSLETTER:
            assert items[0]["fields"]["topic"] == "sport"
            assert items[0]["consents"] == {"consent": "Send me the briefing"}
        contact = api(f"/v1/contacts/{urllib.parse.quote(email)}?site=forms")
        assert contact["id"] == email
    else:
        items = api("/v1/submissions?site=forms&rule=poll")["items"]
        assert {"wish": "tech"} in [
            {k: v for k, v in i["fields"].items() if k == "wish"} for i in items
        ]
        assert all(i["contact"] is None for i in items)  # a poll names nobody


@pytest.mark.parametrize("template", WITH_EMAIL, ids=lambda t: t.name)
def test_a_wrong_email_is_shown_beside_the_field(
    page: Page, lab_url: str, template: Template
) -> None:
    show(page, lab_url, template)
    sent = form_posts(page)
    if template.question:  # answer the question and move on to the email
        page.locator(f"input[name={template.question}]").first.check()
        page.locator("[data-sc-next]").click()
    email = page.locator("input[name=email]")
    error = page.locator("[data-sc-error=email]")
    described = email.get_attribute("aria-describedby")
    assert described == error.get_attribute("id")  # read out with the field
    if template is NEWSLETTER:
        page.locator("input[name=consent]").check()

    # The browser's own check: nothing is sent.
    email.fill("not-an-email")
    page.locator("form[data-sc-form] button[type=submit]").click()
    expect(error).not_to_be_empty()
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_be_focused()
    assert sent == []

    # The server's: an address the browser lets through, refused with a 422 beside the field.
    email.fill("reader@localhost")
    expect(email).not_to_have_attribute("aria-invalid", "true")  # fixed, as far as it knows
    with page.expect_response(lambda r: "/v1/forms" in r.url) as posted:
        page.locator("form[data-sc-form] button[type=submit]").click()
    assert posted.value.status == 422
    expect(error).to_have_text(posted.value.json()["fields"]["email"])
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_be_focused()
    expect(page.locator("[data-sc-success]").first).to_be_hidden()

    email.fill(email_for("fixed", template))
    with page.expect_response(lambda r: "/v1/forms" in r.url) as posted:
        page.locator("form[data-sc-form] button[type=submit]").click()
    assert posted.value.status == 200
    expect(error).to_be_empty()
    expect(page.locator("[data-sc-success]").first).to_be_visible()


def test_the_poll_asks_for_its_answer_beside_the_question(page: Page, lab_url: str) -> None:
    show(page, lab_url, POLL)
    sent = form_posts(page)
    page.get_by_role("button", name="Vote").click()
    error = page.locator("[data-sc-error=wish]")
    expect(error).not_to_be_empty()
    expect(page.locator("input[name=wish]").first).to_be_focused()
    assert sent == []
    page.locator("input[name=wish]").nth(2).check()
    expect(error).to_be_empty()  # cleared as soon as it is answered
    with page.expect_response(lambda r: "/v1/forms" in r.url) as posted:
        page.get_by_role("button", name="Vote").click()
    assert posted.value.status == 200
    assert json.loads(posted.value.request.post_data or "")["fields"]["wish"] == "sport"


@pytest.mark.parametrize("template", WITH_EMAIL, ids=lambda t: t.name)
def test_a_second_browser_typing_the_same_address_gets_nothing_of_the_first(
    browser_context_pair: tuple[BrowserContext, BrowserContext], lab_url: str, template: Template
) -> None:
    first, second = (c.new_page() for c in browser_context_pair)
    email = email_for("shared", template)

    # The first browser says it reads sport: its own rules use that at once.
    show(first, lab_url, NEWSLETTER)
    with first.expect_response(lambda r: "/v1/forms" in r.url) as posted:
        keyboard_fill(first, NEWSLETTER, email, answer_index=1)
    assert posted.value.status == 200
    answer = open_page(first, f"{lab_url}/forms/poll.html")
    assert "sport-readers" in {d["rule"] for d in answer["decisions"]}
    expect(first.locator("#for-you .sc-note")).to_have_text("sport-readers shown")

    # The second types the same address into this template (and says politics, if asked):
    # typing an address proves nothing, so nothing of the first browser's comes along.
    show(second, lab_url, template)
    with second.expect_response(lambda r: "/v1/forms" in r.url) as posted:
        keyboard_fill(second, template, email, answer_index=0)
    assert posted.value.status == 200
    answer = open_page(second, f"{lab_url}/forms/poll.html")
    assert "sport-readers" not in {d["rule"] for d in answer["decisions"]}
    expect(second.locator("#for-you .sc-note")).to_have_count(0)


def test_a_form_is_styled_and_works_under_a_strict_csp(page: Page, lab_url: str) -> None:
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Security Policy" in m.text else None)
    open_page(page, f"{lab_url}/forms/modal-csp.html")
    card = page.locator(".sc-card")
    expect(card).to_be_visible()
    # The template's own <style> applies (as a constructed sheet): its button is the accent.
    button = page.locator("form[data-sc-form] button[type=submit]")
    assert button.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(36, 80, 200)"
    assert page.locator(".sc-w style").count() == 0
    page.locator("input[name=email]").fill("csp@example.com")
    with page.expect_response(lambda r: "/v1/forms" in r.url) as posted:
        button.click()
    assert posted.value.status == 200
    expect(page.locator("[data-sc-success]").first).to_be_visible()
    assert violations == []


def test_the_news_front_page_sign_up_collects_an_email(
    context: BrowserContext, demo_url: str, operator: Callable[..., str]
) -> None:
    visitor = visitor_in_variant("newsletter", [0.34, 0.33, 0.33], wanted=0, nth=3)  # short
    context.add_cookies([{"name": "sc_vid", "value": visitor, "url": f"{demo_url}/sc/"}])
    page = context.new_page()
    open_page(page, f"{demo_url}/news/")
    signup = page.locator("#newsletter")
    expect(signup.get_by_role("heading")).to_have_text("The morning briefing")
    signup.get_by_label("Email address").fill("Reader.One@Example.com ")
    signup.get_by_label("Send me the morning briefing every weekday.").check()
    with page.expect_response(lambda r: "/v1/forms" in r.url) as posted:
        signup.get_by_role("button", name="Sign me up").click()
    assert posted.value.status == 200
    expect(signup.locator("[data-sc-success]")).to_have_text(
        "Thanks — check your inbox to confirm."
    )
    key = operator("apikey", "create", "--site", "news")
    request = urllib.request.Request(
        f"{demo_url}/sc/v1/submissions?site=news&rule=newsletter",
        headers={"authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request) as response:
        items = json.load(response)["items"]
    assert "reader.one@example.com" in [i["contact"] for i in items]  # trimmed, lower-cased


def test_the_shop_offers_a_discount_on_leaving_the_checkout(
    context: BrowserContext, demo_url: str
) -> None:
    page = context.new_page()
    open_page(page, f"{demo_url}/shop/checkout.html")
    page.wait_for_function("localStorage.getItem('sc_hide_shop') !== null")
    expect(page.get_by_role("dialog")).to_have_count(0)  # not before the visitor leaves
    page.mouse.move(200, 200)
    page.mouse.move(200, 5)
    page.mouse.move(200, -20)
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_focused()
    expect(dialog).to_contain_text("15% off")
    code = dialog.locator(".sc-code")
    expect(code).to_be_hidden()  # only once the email is given
    page.keyboard.press("Tab")
    page.keyboard.type("leaving@example.com")
    page.keyboard.press("Enter")
    expect(code).to_be_visible()
    expect(code).to_have_text("STAY15")
