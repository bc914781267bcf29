"""What POST /v1/events takes: feedback on decisions this visitor was given, yesterday or
today; a decision made before that is refused (its replay would otherwise count again once
its idempotency key is pruned), and the whole batch with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from news_site import NEWS, at, news_app
from sitecue.decision_ids import ANONYMOUS, issue
from sitecue.errors import BadRequest
from sitecue.feedback import accept
from sitecue.keyring import Keyring
from sitecue.protocol import Feedback
from sitecue.store.retention import KEYS_KEEP_MS

DAY = 86_400_000
NOW = 20_400 * DAY + 10 * 3_600_000  # 10:00 UTC
KEYS = Keyring(["feedback-test-secret-0000"]).mac_keys("decision", "news")


def _seen(visitor: str, issued: int) -> Feedback:
    decision = issue(KEYS[0], visitor, "view-1", "paywall-faq", "faq", issued)
    return Feedback("impression", decision, "paywall-faq", "faq")


def test_feedback_on_a_decision_of_today_or_yesterday_is_taken() -> None:
    events = [_seen("v", NOW), _seen("v", NOW - DAY), _seen("v", NOW - 34 * 3_600_000)]
    assert accept(events, KEYS, "v", NOW) == events


@pytest.mark.parametrize("visitor", ["v", ANONYMOUS])
def test_feedback_on_a_decision_made_before_yesterday_refuses_the_batch(visitor: str) -> None:
    old = NOW - 35 * 3_600_000  # 23:00 the day before yesterday
    with pytest.raises(BadRequest) as refused:
        accept([_seen(visitor, NOW), _seen(visitor, old)], KEYS, "v", NOW)
    message = str(refused.value)
    assert message.startswith("$.events[1].decision: expired")
    assert "nothing in this batch was stored" in message


def test_feedback_replayed_after_its_key_is_pruned_is_refused_and_not_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with news_app(f"sqlite:///{tmp_path / 'sitecue.db'}", tmp_path, monkeypatch) as news:
        d = news.view("01")
        news.feedback("01", d, "impression", "click")
        news.clock[0] = at(3, 10)
        store = news.client.app.state.runtime.store  # type: ignore[attr-defined]
        limit = news.clock[0] - KEYS_KEEP_MS
        assert news.client.portal.call(store.prune_record_keys, limit, 1000) > 0  # type: ignore[union-attr]
        about = {"decision": d["id"], "rule": "newsletter", "variant": d["variant"]}
        body = {"site": "news", "events": [{"type": t, **about} for t in ("impression", "click")]}
        replayed = news.client.post("/v1/events", json=body, headers={"origin": NEWS})
        assert replayed.status_code == 400
        assert replayed.json()["error"].startswith("$.events[0].decision: expired")
        period = {"from": "2026-03-02", "to": "2026-03-05"}
        rows = news.get("/v1/reports", site="news", rule="newsletter", **period).json()["rows"]
        assert sum(r["impressions"] for r in rows) == 1 and sum(r["clicks"] for r in rows) == 1
