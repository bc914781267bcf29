"""Small site configs for tests, built inline so each test shows what it depends on."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from sitecue.config import parse_site
from sitecue.rules import CompiledSite, compile_site

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

NEWS: dict[str, Any] = {
    "site": "news",
    "origins": ["https://news.example"],
    "timezone": "UTC",
    "triggers": {
        "paywall_view": {"on": "visible", "selector": "#paywall"},
        "article_read": {"on": "pageview", "path": {"$regex": "^/articles/"}},
        "subscribe": {"on": "custom"},
    },
    "widgets": {
        "faq": {
            "template": "widgets/faq.html",
            "data": {"trial_days": 7, "price": "€9", "cta_url": "/s"},
        }
    },
    "rules": [
        {
            "id": "paywall-faq",
            "placement": {"type": "replace", "selector": "#paywall"},
            "when": {"triggers.paywall_view.7d": {"$gte": 3}},
            "limit": {"stop_after": ["convert", "dismiss"]},
            "variants": [
                {"id": "faq", "weight": 90, "widget": "faq"},
                {"id": "control", "weight": 10, "widget": None},
            ],
            "goal": "subscribe",
            "priority": 10,
        }
    ],
}


def site(raw: dict[str, Any] | None = None, **changes: Any) -> CompiledSite:
    """Compile ``raw`` (default: NEWS) with top-level ``changes`` applied."""
    data = copy.deepcopy(raw if raw is not None else NEWS)
    data.update(changes)
    return compile_site(parse_site(data), CONFIG_DIR)


def rule(**fields: Any) -> dict[str, Any]:
    """NEWS's rule with ``fields`` replaced."""
    data = copy.deepcopy(NEWS["rules"][0])
    data.update(fields)
    return data
