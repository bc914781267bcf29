"""Opening a page the way the browser tests need it: wait until the tag has its decisions."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page


def open_page(page: Page, url: str) -> Any:
    """Go to ``url`` and return the tag's first answer from /v1/decide."""
    with page.expect_response(lambda r: "/v1/decide" in r.url) as answer:
        page.goto(url)
    return answer.value.json()
