"""A site with form widgets, for the tests of forms: written next to a copy of the shipped
config (whose templates and the shared ``widgets/_form.html`` partial it uses)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from sites import CONFIG_DIR

FORMS = "https://forms.example"
TEMPLATE = Path(__file__).resolve().parent / "forms_config" / "form-test.html"

SIGNUP_FORM: dict[str, Any] = {
    "fields": [
        {
            "name": "interests",
            "type": "choice",
            "label": "What do you read most?",
            "options": ["politics", "sport", "culture"],
            "multiple": True,
            "step": 1,
        },
        {"name": "email", "type": "email", "label": "Email", "required": True, "step": 2},
        {"name": "phone", "type": "phone", "label": "Phone", "step": 2},
        {"name": "age", "type": "number", "label": "Age", "min": 16, "max": 120, "step": 2},
        {"name": "city", "type": "text", "label": "City", "max_length": 40, "step": 2},
        {"name": "daily", "type": "checkbox", "label": "Daily", "step": 2},
        {"name": "edition", "type": "choice", "options": ["am", "pm"], "step": 2},
        {"name": "source", "type": "hidden", "value": "popup"},
        {
            "name": "consent",
            "type": "consent",
            "text": "Send me the newsletter",
            "required": True,
            "step": 2,
        },
    ],
}

FORMS_SITE: dict[str, Any] = {
    "site": "forms",
    "origins": [FORMS],
    "timezone": "UTC",
    "attributes": {"loyalty_tier": "string"},
    "widgets": {
        "signup": {
            "template": "widgets/form-test.html",
            "data": {"headline": "Join us", "button": "Sign me up", "success": "Thanks!"},
            "form": SIGNUP_FORM,
        },
        "plain": {"template": "widgets/form-test-plain.html", "data": {}},
        "sport-offer": {"template": "widgets/form-test-plain.html", "data": {}},
        "gold-offer": {"template": "widgets/form-test-plain.html", "data": {}},
    },
    "rules": [
        {
            "id": "newsletter",
            "placement": {"type": "modal"},
            "when": {"page.path": "/signup"},
            "limit": {"stop_after": ["convert"]},
            "variants": [{"id": "short", "weight": 100, "widget": "signup"}],
        },
        {
            "id": "plain",
            "placement": {"type": "bar"},
            "when": {"page.path": "/signup"},
            "variants": [{"id": "only", "weight": 100, "widget": "plain"}],
        },
        {
            "id": "sport",
            "placement": {"type": "slide-in"},
            "when": {"page.path": "/next", "attributes.interests": {"$in": ["sport"]}},
            "variants": [{"id": "only", "weight": 100, "widget": "sport-offer"}],
        },
        {
            "id": "gold",
            "placement": {"type": "inline", "selector": "#gold"},
            "when": {"page.path": "/next", "attributes.loyalty_tier": "gold"},
            "variants": [{"id": "only", "weight": 100, "widget": "gold-offer"}],
        },
    ],
}


def write_config(root: Path, site: dict[str, Any] | None = None) -> Path:
    """A config directory under ``root``: the shipped one, the test template, and the forms
    site (or ``site``) as sites/forms.json."""
    config = root / "config"
    shutil.copytree(CONFIG_DIR, config, ignore=shutil.ignore_patterns("demo"))
    shutil.copy(TEMPLATE, config / "widgets" / "form-test.html")
    (config / "widgets" / "form-test-plain.html").write_text("<p>offer</p>\n")
    (config / "sites" / "forms.json").write_text(json.dumps(site or FORMS_SITE))
    return config
