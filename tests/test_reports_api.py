"""GET /v1/reports: a rule's numbers per day or ISO week from the rollups; first the pure
parts (periods, zero rows, rates, CSV, the query's range), then through the real app on
records written through the real endpoints at fixed times."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from news_site import NEWS, News, at, news_app
from sitecue.api.reports import (
    COLUMNS,
    build_rows,
    covered,
    csv_rows,
    day_number,
    parse_range,
    totals,
)
from sitecue.decide import Verdict
from sitecue.errors import BadRequest
from sitecue.ids import record_id
from sitecue.store import DAY_MS, DayCounts, DecisionRecord


def counts(day: date, variant: str, *values: float) -> DayCounts:
    """DayCounts of ``day``: decisions, visitors, impressions, clicks, dismissals,
    submissions, conversions, revenue (revenue_sq left 0), zeros for any not given."""
    filled = [*values, *[0] * (8 - len(values))]
    return DayCounts(day_number(day), variant, *map(int, filled[:7]), float(filled[7]), 0.0)


def test_a_day_number_is_the_epoch_ms_of_any_time_of_it_over_a_day() -> None:
    for moment in (
        datetime(2026, 3, 29, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 23, 59, 59, tzinfo=UTC),
    ):
        assert day_number(moment.date()) == int(moment.timestamp() * 1000) // DAY_MS
    assert day_number(date(1970, 1, 1)) == 0


def test_every_day_and_variant_has_a_row_zeros_included() -> None:
    data = [counts(date(2026, 3, 2), "short", 10, 4, 8, 2, 1, 0, 1, 25.5),
            counts(date(2026, 3, 4), "control", 6, 3),
            counts(date(2026, 2, 28), "short", 99, 99)]  # fmt: skip  # outside: ignored
    rows = build_rows(data, ["short", "control"], date(2026, 3, 2), date(2026, 3, 4), "day")
    assert [(r.period, r.variant) for r in rows] == [
        ("2026-03-02", "short"), ("2026-03-02", "control"),
        ("2026-03-03", "short"), ("2026-03-03", "control"),
        ("2026-03-04", "short"), ("2026-03-04", "control"),
    ]  # fmt: skip
    short = rows[0]
    assert (short.decisions, short.visitors, short.impressions, short.clicks) == (10, 4, 8, 2)
    assert (short.dismissals, short.submissions, short.conversions) == (1, 0, 1)
    assert (short.revenue, short.ctr, short.conversion_rate) == (25.5, 0.25, 0.25)
    assert short.revenue_per_visitor == pytest.approx(25.5 / 4)
    empty = rows[2]
    assert (empty.decisions, empty.visitors, empty.revenue) == (0, 0, 0.0)
    # No denominator, no rate: null in JSON, an empty CSV cell, never a made-up 0%.
    assert (empty.ctr, empty.conversion_rate, empty.revenue_per_visitor) == (None, None, None)
    assert rows[5].visitors == 3 and rows[5].ctr is None and rows[5].conversion_rate == 0


def test_weeks_are_iso_weeks_from_monday_and_sum_their_days() -> None:
    # 2026-01-01 is a Thursday: its ISO week starts on Monday 2025-12-29.
    since, until = covered(date(2026, 1, 1), date(2026, 1, 13), "week")
    assert (since, until) == (date(2025, 12, 29), date(2026, 1, 18))
    assert since.isoweekday() == 1 and until.isoweekday() == 7
    assert covered(date(2026, 1, 1), date(2026, 1, 13), "day") == (
        date(2026, 1, 1),
        date(2026, 1, 13),
    )
    data = [counts(date(2025, 12, 29), "a", 1, 1), counts(date(2026, 1, 4), "a", 2, 2),
            counts(date(2026, 1, 5), "a", 4, 4), counts(date(2026, 1, 18), "a", 8, 8)]  # fmt: skip
    rows = build_rows(data, ["a"], since, until, "week")
    assert [(r.period, r.decisions, r.visitors) for r in rows] == [
        ("2025-12-29", 3, 3), ("2026-01-05", 4, 4), ("2026-01-12", 8, 8),
    ]  # fmt: skip


def test_totals_sum_the_rows_and_recompute_the_rates() -> None:
    data = [counts(date(2026, 3, 2), "a", 10, 4, 10, 1, 0, 0, 1, 10.0),
            counts(date(2026, 3, 3), "a", 10, 6, 30, 5, 0, 0, 2, 20.0)]  # fmt: skip
    rows = build_rows(data, ["a", "b"], date(2026, 3, 2), date(2026, 3, 3), "day")
    a, b = totals(rows, ["a", "b"], date(2026, 3, 2))
    assert (a.period, a.decisions, a.visitors, a.impressions, a.conversions) == (
        "2026-03-02",
        20,
        10,
        40,
        3,
    )
    assert (a.ctr, a.conversion_rate, a.revenue_per_visitor) == (0.15, 0.3, 3.0)
    assert (b.variant, b.visitors, b.conversion_rate) == ("b", 0, None)


def test_csv_has_a_header_and_one_line_a_row() -> None:
    data = [counts(date(2026, 3, 2), "short", 10, 4, 8, 2, 1, 0, 1, 25.5)]
    rows = build_rows(data, ["short", "control"], date(2026, 3, 2), date(2026, 3, 2), "day")
    text = csv_rows(rows).decode()
    assert text.endswith("\r\n")
    header, *lines = list(csv.reader(io.StringIO(text)))
    assert tuple(header) == COLUMNS
    assert header[:3] == ["period", "variant", "decisions"]
    assert header[-3:] == ["ctr", "conversion_rate", "revenue_per_visitor"]
    assert lines == [
        [
            "2026-03-02",
            "short",
            "10",
            "4",
            "8",
            "2",
            "1",
            "0",
            "1",
            "25.5",
            "0.25",
            "0.25",
            "6.375",
        ],
        ["2026-03-02", "control", "0", "0", "0", "0", "0", "0", "0", "0.0", "", "", ""],
    ]
    assert csv_rows(rows, header=False).decode().count("\r\n") == 2


TODAY = date(2026, 11, 26)


def test_the_range_defaults_to_the_last_30_days() -> None:
    assert parse_range({}, TODAY) == (date(2026, 10, 28), TODAY, "day")
    assert parse_range({"to": "2026-02-10"}, TODAY)[:2] == (date(2026, 1, 12), date(2026, 2, 10))
    assert parse_range({"from": "2026-11-20"}, TODAY)[:2] == (date(2026, 11, 20), TODAY)
    full = parse_range({"from": "2025-10-23", "to": "2026-11-26", "interval": "week"}, TODAY)
    assert full == (date(2025, 10, 23), TODAY, "week")  # 400 days: the most


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2026-13-01"}, "from: expected a date as YYYY-MM-DD, got '2026-13-01'"),
        ({"to": "20261126"}, "to: expected a date as YYYY-MM-DD, got '20261126'"),
        ({"to": "2026-W48-4"}, "to: expected a date as YYYY-MM-DD"),
        ({"from": "yesterday"}, "from: expected a date as YYYY-MM-DD"),
        ({"from": "2026-11-27", "to": "2026-11-26"}, "from: expected a date on or before to"),
        ({"from": "2025-10-22", "to": "2026-11-26"}, "to: expected at most 400 days from 'from'"),
        ({"to": "0001-01-01"}, "to: expected a date from 1970-01-01 to 9999-12-24"),
        ({"from": "9999-12-31"}, "from: expected a date from 1970-01-01 to 9999-12-24"),
        ({"interval": "month"}, "interval: expected day or week, got 'month'"),
    ],
)  # fmt: skip
def test_a_bad_range_names_the_field(params: dict[str, str], message: str) -> None:
    with pytest.raises(BadRequest) as raised:
        parse_range(params, TODAY)
    assert message in str(raised.value)


# Through the real app, on each engine: records written by the real endpoints (and one
# straight through the store's writer) at fixed times, then the report read back.
@pytest.fixture
def news(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[News]:
    with news_app(store_url, tmp_path, monkeypatch) as app:
        yield app


def traffic(news: News) -> None:
    """Four days of the newsletter experiment (the variants are the readers' fixed buckets:
    01 and 02 short, 05 long, 03 and 06 control):

    Monday 10:00   01, 02, 03, 05 see it, each reported; 01 clicks, 02 dismisses
    Monday 12:00   01 signs up, paying 40
    Tuesday 09:00  03 (again) and 06 (new) see it, each reported
    Tuesday 10:00  02 signs up paying 10, then pays 5 more (its Monday cohort's revenue)
    Wednesday      nothing
    Thursday 09:00 06 signs up, paying nothing (its Tuesday cohort's conversion)
    """
    shown = {}
    for reader in ("01", "02", "03", "05"):
        shown[reader] = news.view(reader)
        news.feedback(reader, shown[reader], "impression")
    assert {r: d["variant"] for r, d in shown.items()} == {
        "01": "short", "02": "short", "03": "control", "05": "long",
    }  # fmt: skip
    news.feedback("01", shown["01"], "click")
    news.feedback("02", shown["02"], "dismiss")
    news.clock[0] = at(0, 12)
    news.view("01", "/news/articles/1.html", name="newsletter_signup", value=40)
    news.clock[0] = at(1, 9)
    for reader in ("03", "06"):
        again = news.view(reader)
        assert again["variant"] == "control"
        news.feedback(reader, again, "impression")
    news.clock[0] = at(1, 10)
    for value in (10, 5):
        news.view("02", "/news/articles/2.html", name="newsletter_signup", value=value)
    news.clock[0] = at(3, 9)
    news.view("06", "/news/articles/3.html", name="newsletter_signup")


# (period, variant): decisions, visitors, impressions, clicks, dismissals, submissions,
# conversions, revenue, ctr, conversion rate, revenue per visitor; every other row is zeros.
EXPECTED = {
    ("2026-03-02", "short"): (2, 2, 2, 1, 1, 0, 2, 55.0, 0.5, 1.0, 27.5),
    ("2026-03-02", "long"): (1, 1, 1, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0),
    ("2026-03-02", "control"): (1, 1, 1, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0),
    ("2026-03-03", "control"): (2, 1, 2, 0, 0, 0, 1, 0.0, 0.0, 1.0, 0.0),
}
ZERO = (0, 0, 0, 0, 0, 0, 0, 0.0, None, None, None)
NUMBERS = COLUMNS[2:]


def test_a_report_has_every_day_and_variant_with_the_day_s_numbers(news: News) -> None:
    traffic(news)
    response = news.get("/v1/reports", site="news", rule="newsletter",
                        **{"from": "2026-03-02", "to": "2026-03-05"})  # fmt: skip
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["site"], report["rule"], report["interval"]) == ("news", "newsletter", "day")
    assert (report["from"], report["to"]) == ("2026-03-02", "2026-03-05")
    assert report["variants"] == ["short", "long", "control"]
    days = ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]
    assert [(r["period"], r["variant"]) for r in report["rows"]] == [
        (d, v) for d in days for v in ("short", "long", "control")
    ]
    for row in report["rows"]:
        expected = EXPECTED.get((row["period"], row["variant"]), ZERO)
        assert tuple(row[c] for c in NUMBERS) == expected, row


def test_weeks_sum_their_days_and_cover_whole_weeks(news: News) -> None:
    traffic(news)
    response = news.get("/v1/reports", site="news", rule="newsletter", interval="week",
                        **{"from": "2026-03-04", "to": "2026-03-10"})  # fmt: skip
    report = response.json()
    assert (report["from"], report["to"]) == ("2026-03-02", "2026-03-15")
    by = {(r["period"], r["variant"]): tuple(r[c] for c in NUMBERS) for r in report["rows"]}
    assert sorted({p for p, _ in by}) == ["2026-03-02", "2026-03-09"]
    assert by["2026-03-02", "control"] == (3, 2, 3, 0, 0, 0, 1, 0.0, 0.0, 0.5, 0.0)
    assert by["2026-03-02", "short"] == EXPECTED["2026-03-02", "short"]
    assert all(by["2026-03-09", v] == ZERO for v in ("short", "long", "control"))


def test_csv_and_ndjson_carry_the_same_rows(news: News) -> None:
    traffic(news)
    span = {"site": "news", "rule": "newsletter", "from": "2026-03-02", "to": "2026-03-03"}
    rows = news.get("/v1/reports", **span).json()["rows"]
    as_csv = news.get("/v1/reports", format="csv", **span)
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert as_csv.headers["content-disposition"] == (
        'attachment; filename="news-newsletter-2026-03-02-2026-03-03.csv"'
    )
    header, *lines = list(csv.reader(io.StringIO(as_csv.text)))
    assert tuple(header) == COLUMNS and len(lines) == len(rows) == 6
    assert lines[0] == ["2026-03-02", "short", "2", "2", "2", "1", "1", "0", "2", "55.0",
                        "0.5", "1.0", "27.5"]  # fmt: skip
    assert lines[4][-3:] == ["", "", ""]  # Tuesday's long: no denominators
    by_accept = news.get("/v1/reports", accept="text/csv", **span)
    assert by_accept.text == as_csv.text
    for asked in ({"format": "ndjson"}, {"accept": "application/x-ndjson"}):
        lined = news.get("/v1/reports", **asked, **span)
        assert lined.headers["content-type"].startswith("application/x-ndjson")
        assert [json.loads(line) for line in lined.text.splitlines()] == rows


def test_a_variant_no_longer_configured_keeps_its_rows(news: News) -> None:
    """A variant the data holds but the config no longer has (renamed, say) is reported
    after the configured ones; written straight through the store's writer."""
    store = news.client.app.state.runtime.store  # type: ignore[attr-defined]
    old = at(0, 8)
    retired = DecisionRecord(record_id(old), "news", "reader-99-0000000000", old, f"{NEWS}/news/",
                             [Verdict("newsletter", True, variant="retired")])  # fmt: skip
    news.client.portal.call(store.write, [], [retired])
    report = news.get("/v1/reports", site="news", rule="newsletter",
                      **{"from": "2026-03-02", "to": "2026-03-02"}).json()  # fmt: skip
    assert report["variants"] == ["short", "long", "control", "retired"]
    (row,) = [r for r in report["rows"] if r["variant"] == "retired"]
    assert (row["decisions"], row["visitors"]) == (1, 1)


def test_the_default_is_the_last_30_days_to_today(news: News) -> None:
    news.clock[0] = at(0, 23)
    report = news.get("/v1/reports", site="news", rule="paywall-faq").json()
    assert (report["from"], report["to"]) == ("2026-02-01", "2026-03-02")
    assert len(report["rows"]) == 30 * 2 and report["variants"] == ["faq", "control"]


NEWSLETTER = {"site": "news", "rule": "newsletter"}


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({}, 400, "site: expected the site of the report"),
        ({"site": "news"}, 400, "rule: expected the id of the rule to report on"),
        ({"site": "news", "rule": "nope"}, 404, "rule: site 'news' has no rule 'nope'"),
        ({"site": "nowhere", "rule": "nope"}, 403, "may not act on nowhere"),
        ({"site": "shop", "rule": "loyalty-offer"}, 403, "may not act on shop"),
        ({**NEWSLETTER, "from": "2026-02-30"}, 400, "from: expected a date as YYYY-MM-DD"),
        ({**NEWSLETTER, "to": "tomorrow"}, 400, "to: expected a date as YYYY-MM-DD"),
        ({**NEWSLETTER, "from": "2026-03-03", "to": "2026-03-02"}, 400,
         "from: expected a date on or before to"),
        ({**NEWSLETTER, "from": "2025-01-01", "to": "2026-03-02"}, 400,
         "to: expected at most 400 days"),
        ({**NEWSLETTER, "interval": "hour"}, 400, "interval: expected day or week"),
        ({**NEWSLETTER, "format": "xml"}, 400, "format: expected json, csv or ndjson"),
    ],
)  # fmt: skip
def test_a_bad_request_names_the_field(
    news: News, params: dict[str, str], status: int, message: str
) -> None:
    response = news.get("/v1/reports", **params)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_a_report_needs_a_valid_key(news: News) -> None:
    for headers in ({}, {"authorization": "Bearer sck_000000000000_" + "x" * 32}):
        response = news.client.get(
            "/v1/reports", params={"site": "news", "rule": "newsletter"}, headers=headers
        )
        assert response.status_code == 401 and response.json()["error"].startswith("authorization")
