"""Preview links: a signed grant shows one rule's variant, explains every rule, counts nothing."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from sitecue import preview
from sitecue.cli import main
from sitecue.keyring import Keyring
from sitecue.store import DecisionQuery

SHOP = "https://shop.example"
SECRET = "admin-test-secret-0000"  # the conftest env's
BROWSER = "preview-browser-0001"


def grant(rule: str = "free-express", variant: str = "slide-in", ttl: int = 3600,
          site: str = "shop", secret: str = SECRET) -> str:  # fmt: skip
    return preview.mint(Keyring([secret]), site, rule, variant, int(time.time()) + ttl)


def decide(client: TestClient, url: str, **extra: Any) -> Any:
    client.cookies.set("sc_vid", BROWSER, domain="news.example")
    body = {"site": "shop", "page": {"url": url}, "view": "view-1", **extra}
    return client.post("/v1/decide", json=body, headers={"origin": SHOP})


def test_a_preview_link_shows_its_rule_explains_every_rule_and_stores_nothing(
    client: TestClient,
) -> None:
    url = preview.link(f"{SHOP}/shop/?utm_source=mail", grant())
    response = decide(client, url)
    assert response.status_code == 200, response.text
    answer = response.json()
    # free-express needs an add_to_cart today and the cart page: shown anyway, alone.
    assert [(d["rule"], d["variant"]) for d in answer["decisions"]] == [
        ("free-express", "slide-in")
    ]
    assert answer["decisions"][0]["html"]
    panel = answer["preview"]
    assert (panel["rule"], panel["variant"]) == ("free-express", "slide-in")
    verdicts = {v["rule"]: v for v in panel["verdicts"]}
    assert set(verdicts) == {"loyalty-offer", "first-purchase", "free-express", "exit-discount",
                             "recently-viewed", "bought-together"}  # fmt: skip
    assert verdicts["free-express"]["reason"] == "condition: triggers.add_to_cart.1d"
    assert verdicts["first-purchase"] == {"rule": "first-purchase", "matched": True,
                                          "variant": "offer"}  # fmt: skip
    assert "set-cookie" not in response.headers  # no cap, no sticky variant, no session
    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    assert client.portal.call(store.decisions, DecisionQuery(site="shop")) == []
    assert client.portal.call(store.events, "shop", [BROWSER]) == []

    # The tag reports the impression: accepted (204) and dropped, so no result counts it.
    decision = answer["decisions"][0]
    event = {"type": "impression", "decision": decision["id"], "rule": "free-express",
             "variant": "slide-in"}  # fmt: skip
    sent = client.post(
        "/v1/events", json={"site": "shop", "events": [event]}, headers={"origin": SHOP}
    )
    assert sent.status_code == 204
    assert client.portal.call(store.events, "shop", [BROWSER]) == []

    # The same page without the link: ordinary, logged, and no panel.
    plain = decide(client, f"{SHOP}/shop/?utm_source=mail").json()
    assert "preview" not in plain and [d["rule"] for d in plain["decisions"]] == ["first-purchase"]


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: grant(ttl=-1), "preview: this link expired at"),
        (lambda: grant(site="news"), "preview: expected a link made by sitecue preview for site"),
        (lambda: grant(secret="another-secret-0000"), "altered, or made for another site"),
        # The rule named inside, swapped for another: the MAC no longer fits.
        (lambda: swapped(grant(), "exit-discount", "discount"), "altered"),
        (lambda: altered_mac(grant()), "altered"),
        (lambda: "nonsense", "preview: expected a link made by sitecue preview"),
        (lambda: "x" * 500, "preview: expected a link made by sitecue preview"),
        (lambda: grant(rule="gone"), "preview: rule 'gone' is no longer in site 'shop'"),
        (lambda: grant(variant="gone"), "preview: variant 'gone' is no longer in rule"),
    ],
)
def test_a_bad_link_is_refused_naming_preview(client: TestClient, make: Any, says: str) -> None:
    response = decide(client, preview.link(f"{SHOP}/shop/", make()))
    assert response.status_code == 400
    assert response.json()["error"].startswith("preview: ") and says in response.json()["error"]


def altered_mac(text: str) -> str:
    return text[:-2] + ("BB" if text.endswith("AA") else "AA")


def swapped(text: str, rule: str, variant: str) -> str:
    """The grant's payload rewritten for another rule, its MAC kept."""
    payload, mac = text.split(".")
    grant = preview._decode(preview._unb64(payload))
    forged = preview._encode(preview.Grant(rule, variant, grant.expires))
    return f"{preview._b64(forged)}.{mac}"


def test_the_cli_prints_a_link_the_server_accepts(
    env: dict[str, str], client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["preview", "--site", "shop", "--rule", "free-express",
                 "--url", f"{SHOP}/shop/cart.html"]) == 0  # fmt: skip
    link = capsys.readouterr().out.strip().splitlines()[-1]
    assert link.startswith(f"{SHOP}/shop/cart.html?sc_preview=")
    assert decide(client, link).json()["preview"]["variant"] == "slide-in"
    token = parse_qs(urlsplit(link).query)["sc_preview"][0]
    assert preview.grant_in(link) == token
    for bad, says in (
        (["--rule", "nope"], "--rule: expected a rule of shop"),
        (["--rule", "free-express", "--variant", "nope"], "--variant: expected a variant"),
        (["--rule", "free-express", "--ttl", "8d"], "--ttl: expected at most 7d"),
        (["--rule", "free-express", "--url", "https://evil.example/"], "--url: expected a page"),
    ):
        assert main(["preview", "--site", "shop", *bad]) == 2
        assert says in capsys.readouterr().err


def test_the_panel_script_is_served_apart_from_the_tag(client: TestClient) -> None:
    panel = client.get("/preview.js")
    assert panel.status_code == 200 and "sitecue-preview" in panel.text
    assert panel.headers["content-type"].startswith("text/javascript")
    tag = client.get("/cue.js").text
    assert "sitecue-preview" not in tag and "preview.js" in tag  # beside the tag
