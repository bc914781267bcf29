"""The dashboard's sign-in: a signed, HttpOnly cookie on the dashboard's path; a tampered or
signed-out cookie shows the sign-in form again, never the data."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from admin_keys import new_key


def sign_in(client: TestClient, key: str) -> str:
    response = client.post("/dashboard/login", data={"key": key}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    cookie = response.headers["set-cookie"]
    assert "Path=/dashboard" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    return cookie.split(";")[0].split("=", 1)[1]


def test_a_key_shows_its_sites_only(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    session = sign_in(client, new_key(capsys, "news"))
    assert session
    page = client.get("/dashboard")  # the client keeps the cookie, as a browser would
    assert page.status_code == 200 and 'id="site-news"' in page.text
    assert 'id="site-shop"' not in page.text and "paywall-faq" in page.text


def test_a_tampered_session_shows_the_sign_in_form(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    session = sign_in(client, new_key(capsys, "news"))
    forged = session[:-2] + ("AA" if not session.endswith("AA") else "BB")
    client.cookies.clear()
    client.cookies.set("sc_admin", forged, domain="news.example", path="/dashboard")
    page = client.get("/dashboard")
    assert 'name="key"' in page.text and "paywall-faq" not in page.text


def test_a_wrong_key_is_told_so(client: TestClient) -> None:
    page = client.post("/dashboard/login", data={"key": "sck_nope"})
    assert page.status_code == 200 and "expected &#39;Bearer sck_…&#39;" in page.text
    assert "set-cookie" not in page.headers


def test_sign_out_forgets_the_session(client: TestClient) -> None:
    response = client.post("/dashboard/logout", follow_redirects=False)
    assert response.status_code == 303 and "sc_admin=; Max-Age=0" in response.headers["set-cookie"]
