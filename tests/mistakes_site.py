"""A site file with ten mistakes of every kind, which ``sitecue check`` reports in one run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TEN_MISTAKES: dict[str, Any] = {
    "site": "news",
    "origins": ["news.example"],  # 1: not an origin
    "colour": "red",  # 2: no such setting
    "triggers": {
        "paywall_view": {"on": "visible", "selector": "#paywall"},
        "hover_card": {"on": "hover", "selector": ".card"},  # 3: no such kind
        "add_to_cart": {"on": "click"},  # 4: a click on what?
    },
    "widgets": {"subscription-faq": {"template": "widgets/faq.html", "data": {"days": 7}}},
    "rules": [
        {
            "id": "paywall-faq",
            "placement": {"type": "popup"},  # 5: no such placement
            "priority": "high",  # 6: not a number
            "when": {"page.path": {"$regex": "(("}},  # 7: not a regular expression
            "variants": [{"id": "faq", "weight": 100, "widget": "subscription-faqs"}],  # 8
        },
        {
            # 9: no id
            "placement": {"type": "modal"},
            "when": {"triggers.paywal_view.7d": {"$gte": 3}},  # 10: no such trigger
            "variants": [{"id": "faq", "weight": 100, "widget": "subscription-faq"}],
        },
    ],
}

# Each mistake's path and the start of what is said of it, in the order check says them.
TEN_PROBLEMS = [
    ("$.origins[0]", "expected an origin such as https://news.example"),
    ("$.colour", "unknown field; expected one of site, origins, consent,"),
    ("$.triggers.hover_card.on", "expected one of pageview, click, change, visible, video,"),
    ("$.rules[0].placement.type", "expected one of modal, slide-in, bar, inline, replace, got"),
    ("$.rules[0].priority", "expected `int`, got `str`"),
    ("$.rules[1].id", "expected this field, which is required"),
    ("$.triggers.add_to_cart.selector", "expected a CSS selector for a click trigger"),
    ('$.rules[0].when["page.path"].$regex', "expected a valid regular expression"),
    ("$.rules[0].variants[0].widget", "expected a declared widget or null (subscription-faq)"),
    ('$.rules[1].when["triggers.paywal_view.7d"]', "expected triggers.<declared trigger>"),
]


def write_ten_mistakes(root: Path) -> Path:
    """The config directory ``root`` with the site file above and its widget's template."""
    (root / "sites").mkdir(parents=True)
    (root / "widgets").mkdir()
    (root / "widgets" / "faq.html").write_text("<p>A {{ days }}-day free trial</p>")
    path = root / "sites" / "news.json"
    path.write_text(json.dumps(TEN_MISTAKES, indent=2))
    return path
