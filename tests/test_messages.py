"""Which outbox messages an event produces, for which webhooks, with which payload."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitecue.config import Form, FormField
from sitecue.protocol import Feedback
from sitecue.store import Submission
from sitecue.webhooks import messages
from sitecue.webhooks.bodies import SAMPLES
from webhook_sites import shop, webhook

AT = 1_764_000_000_000
RULES = [
    {"id": "offer", "placement": {"type": "modal"}, "goal": "purchase",
     "variants": [{"id": "a", "weight": 100, "widget": None}]},
]  # fmt: skip


def site(monkeypatch: pytest.MonkeyPatch, root: Path, *events: str):  # type: ignore[no-untyped-def]
    hook = webhook("https://hooks.example/in", events=list(events))
    return shop(monkeypatch, root, hook, rules=RULES)


def test_a_form_submission_carries_contact_email_fields_and_consents(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s = Submission("sub-1", "shop", "offer", "a", "dec-1", "browser-1", "a@b.se",
                   {"email": "a@b.se", "city": "Lund"}, {"consent": "Mail me"}, AT)  # fmt: skip
    form = Form([FormField("email", "email"), FormField("city", "text")])
    (m,) = messages.form_submitted(site(monkeypatch, tmp_path, "form.submitted"), s, form)
    assert (m.site, m.webhook, m.event, m.at, m.contact, m.visitor) == (
        "shop", "esp", "form.submitted", AT, "a@b.se", "browser-1"
    )  # fmt: skip
    assert m.payload == {
        "submission": "sub-1", "rule": "offer", "variant": "a", "decision": "dec-1",
        "contact": "a@b.se", "email": "a@b.se", "fields": {"email": "a@b.se", "city": "Lund"},
        "consents": {"consent": "Mail me"},
    }  # fmt: skip
    assert m.key == "esp:form.submitted:sub-1"


def test_only_the_webhooks_listening_get_a_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s = site(monkeypatch, tmp_path, "contact.erased")
    assert messages.contact_identified(s, "c-1", "browser-1", AT) == []
    (erased,) = messages.contact_erased(s, "c-1", AT)
    assert erased.payload == {"contact": "c-1"} and erased.contact is None


def test_goals_convert_and_impressions_are_shown_only_when_listed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    events = [
        Feedback("event", name="purchase", at=AT - 5, id="e1"),
        Feedback("convert", "dec-1", "offer", "a", id="e2"),
        Feedback("impression", "dec-1", "offer", "a", id="e3"),
        Feedback("click", "dec-1", "offer", "a", id="e4"),
        Feedback("event", name="not_a_goal", id="e5"),
    ]
    goals = site(monkeypatch, tmp_path, "goal.converted")
    told = messages.feedback(goals, events, "browser-1", "c-1", True, AT)
    assert [(m.event, m.at, m.payload["goal"], m.payload["rule"]) for m in told] == [
        ("goal.converted", AT - 5, "purchase", None),
        ("goal.converted", AT, "purchase", "offer"),
    ]
    assert told[1].payload == {"goal": "purchase", "rule": "offer", "variant": "a",
                               "decision": "dec-1", "contact": "c-1", "verified": True,
                               "claimed": None}  # fmt: skip
    shown = site(monkeypatch, tmp_path, "decision.shown")
    (m,) = messages.feedback(shown, events, "browser-1", None, False, AT)
    assert m.event == "decision.shown" and m.key == "esp:decision.shown:e3"
    assert m.payload == {"rule": "offer", "variant": "a", "decision": "dec-1",
                         "contact": None, "verified": False, "claimed": None}  # fmt: skip


def test_goal_messages_are_one_per_goal_and_event_id_and_only_for_a_kept_browser(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    goals = site(monkeypatch, tmp_path, "goal.converted")
    flood = [Feedback("event", name="purchase") for _ in range(50)]  # no id, no decision
    (m,) = messages.feedback(goals, flood, "browser-1", None, False, AT)
    assert m.key == "esp:goal.converted:browser-1:purchase:"
    # The same again (a replay) is stored under the same key: once, by the unique index.
    (again,) = messages.feedback(goals, flood[:1], "browser-1", None, False, AT)
    assert again.key == m.key
    twice = [
        Feedback("event", name="purchase", id="e1"),
        Feedback("event", name="purchase", id="e1"),
    ]
    assert len(messages.feedback(goals, twice, "browser-1", None, False, AT)) == 1
    other = messages.feedback(goals, [Feedback("event", name="purchase", id="e2")], "browser-1",
                              None, False, AT)  # fmt: skip
    assert [x.key for x in other] == ["esp:goal.converted:browser-1:purchase:e2"]
    assert messages.feedback(goals, flood, "-", None, False, AT) == []  # no state kept


def test_a_link_opened_again_in_one_browser_is_one_contact_identified(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s = site(monkeypatch, tmp_path, "contact.identified")
    first = messages.contact_identified(s, "c-1", "browser-1", AT, key="fp1:browser-1")
    again = messages.contact_identified(s, "c-1", "browser-1", AT + 9, key="fp1:browser-1")
    assert (
        [m.key for m in first] == [m.key for m in again] == ["esp:contact.identified:fp1:browser-1"]
    )  # stored once: the outbox keeps one message per (site, key)


def test_a_late_goal_keeps_its_time_and_is_queued_now(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    goals = site(monkeypatch, tmp_path, "goal.converted")
    events = [Feedback("event", name="purchase", at=AT - 3_600_000, id="e1")]
    (m,) = messages.feedback(goals, events, "browser-1", None, False, AT)
    assert (m.at, m.queued) == (AT - 3_600_000, AT)


def test_a_contact_only_claimed_is_not_sent_as_the_person_and_samples_have_the_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s = site(monkeypatch, tmp_path, "goal.converted", "decision.shown")
    events = [
        Feedback("event", name="purchase", id="e1"),
        Feedback("impression", "d", "offer", "a"),
    ]
    told = messages.feedback(s, events, "browser-1", "victim@example.com", False, AT)
    assert [(m.payload["contact"], m.payload["claimed"]) for m in told] == [
        (None, "victim@example.com"),
        (None, "victim@example.com"),
    ]
    for m in told:  # what a template is checked against has what is sent
        assert any(x["event"] == m.event and x.keys() - {"id", "event", "at", "site"}
                   == m.payload.keys() for x in SAMPLES)  # fmt: skip
