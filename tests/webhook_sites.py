"""A site with one webhook, compiled as the server compiles it, for the webhook tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sitecue.config import parse_site
from sitecue.rules import CompiledSite, compile_site

SECRET_ENV = "SITECUE_TEST_WEBHOOK_SECRET"
SECRET = "webhook-test-secret-0123456789"


def webhook(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "esp",
        "url": url,
        "events": ["form.submitted", "contact.identified", "goal.converted", "contact.erased"],
        "secret_env": SECRET_ENV,
        "timeout": 2,
        **extra,
    }


def shop(
    monkeypatch: pytest.MonkeyPatch, root: Path, *hooks: dict[str, Any], **extra: Any
) -> CompiledSite:
    """The site ``shop`` with these webhooks (the secret set in the environment)."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    config = {"site": "shop", "origins": ["https://shop.example"], "webhooks": list(hooks)}
    return compile_site(parse_site({**config, **extra}), root)
