"""The rollups, on both engines: what the writer counts as records are written matches a
brute-force recount of the same records; the migration that adds them to an older store
counts its logs the same way; retries and replays count once; erasure keeps the counts."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from starlette.testclient import TestClient

from sitecue.decide import Verdict
from sitecue.errors import StoreUnavailable
from sitecue.ids import record_id
from sitecue.runtime import Runtime, goals_of
from sitecue.store import (
    DAY_MS,
    DayCounts,
    DecisionQuery,
    DecisionRecord,
    EventRecord,
    Goals,
    RateLimit,
    Store,
    Submission,
    VariantCounts,
    backfill,
    open_store,
)
from sitecue.store import postgres as postgres_store
from sitecue.store import sqlite as sqlite_store
from sitecue.store.backfill import postgres_rollups, sqlite_rollups
from sitecue.store.submissions import INSERT_SUBMISSION, submission_row
from sites import rule, site
from test_retention import count

T0 = 1_790_000_000_000 - 1_790_000_000_000 % DAY_MS  # midnight UTC
DAY0 = T0 // DAY_MS
GOALS: Goals = {"news": {"subscribe": ("exp",), "purchase": ("exp", "promo")}}
RULES = {"exp": ("control", "blue", "green"), "promo": ("on",)}
LIMITS = (RateLimit(100, 60_000), RateLimit(100, 60_000))
FEEDBACK = ("impression", "click", "dismiss", "convert")

Records = tuple[list[EventRecord], list[DecisionRecord]]
Submitted = tuple[Submission, EventRecord]


def dataset(seed: int = 17) -> tuple[list[Records], list[Submitted]]:
    """Fixed, seeded records, in groups written in order of time: several visitors, variants
    and days, impressions replayed with new ids, retried keys (in one group and in a later
    one), goals before and after exposure, valued goals (exact in binary floating point),
    anonymous decisions, and form submissions."""
    rnd = random.Random(seed)
    visitors = [f"v{i:02d}" for i in range(12)] + ["-"]
    groups: list[Records] = []
    submitted: list[Submitted] = []
    sent: list[EventRecord] = []
    at = T0
    n = 0
    for step in range(60):
        events: list[EventRecord] = []
        decisions: list[DecisionRecord] = []
        for _ in range(rnd.randint(1, 6)):
            at += rnd.randint(1, 3) * 3_600_000  # hours apart: about four days in all
            n += 1
            visitor = rnd.choice(visitors)
            kind = rnd.random()
            if kind < 0.35:
                verdicts = []
                for rule, variants in RULES.items():
                    if rnd.random() < 0.7:
                        verdicts.append(Verdict(rule, True, variant=rnd.choice(variants)))
                    else:
                        verdicts.append(Verdict(rule, False, reason="condition: page.path"))
                key = f"call-{n:06d}" if rnd.random() < 0.8 else None
                decisions.append(
                    DecisionRecord(record_id(at), "news", visitor, at, "u", verdicts, key=key)
                )
            elif kind < 0.55 and decisions + [d for g in groups for d in g[1]]:
                d = rnd.choice(decisions + [d for g in groups[-5:] for d in g[1]])
                shown = [v for v in d.verdicts if v.matched]
                if shown:
                    v = rnd.choice(shown)
                    type_ = rnd.choice(FEEDBACK)
                    e = EventRecord(
                        "news", d.visitor, type_, at, rule=v.rule, variant=v.variant,
                        decision=d.id, key=f"ev-{n:06d}",
                    )  # fmt: skip
                    events.append(e)
                    sent.append(e)
            elif kind < 0.8:
                name = rnd.choice(["subscribe", "purchase", "read"])
                value = rnd.choice([None, 1.5, 20.0, 0.25]) if name == "purchase" else None
                type_ = rnd.choice(["event", "trigger"])
                e = EventRecord(
                    "news", visitor, type_, at, name=name, value=value, key=f"go-{n:06d}"
                )
                events.append(e)
                sent.append(e)
            elif kind < 0.9 and sent:
                old = rnd.choice(sent[-10:])
                if old.decision is not None and rnd.random() < 0.5:
                    # The tag replaying feedback on one decision, with a new id.
                    events.append(EventRecord(
                        old.site, old.visitor, old.type, at, rule=old.rule, variant=old.variant,
                        decision=old.decision, key=f"re-{n:06d}",
                    ))  # fmt: skip
                else:
                    events.append(old)  # a retry: the same key, perhaps in the same group
            elif visitor != "-":
                d = next((d for g in groups[::-1] for d in g[1] if d.visitor == visitor), None)
                shown = [v for v in d.verdicts if v.matched] if d else []
                if d is not None and shown:
                    v = shown[0]
                    s = Submission(
                        record_id(at), "news", v.rule, v.variant or "", d.id, visitor,
                        None, {"email": None}, {}, at,
                    )  # fmt: skip
                    convert = EventRecord(
                        "news", visitor, "convert", at, rule=v.rule, variant=v.variant,
                        decision=d.id, key=f"form-{n:06d}.form",
                    )  # fmt: skip
                    submitted.append((s, convert))
                    groups.append((events, decisions))  # in order of time with the others
                    events, decisions = [], []
                    groups.append(([], []))  # stands for the submission
        if step % 7 == 3 and events:
            events.append(events[0])  # a retry inside the same group
        groups.append((events, decisions))
    return groups, submitted


def recount(groups: list[Records], submitted: list[Submitted], goals: Goals) -> list[DayCounts]:
    """The rollups counted from scratch, record by record in the order written."""
    seen: set[str] = set()

    def new(*keys: str | None) -> bool:
        mine = {k for k in keys if k is not None}
        fresh = not mine & seen
        seen.update(mine)
        return fresh

    events: list[EventRecord] = []
    decisions: list[DecisionRecord] = []
    subs = iter(submitted)
    counts: dict[tuple[str, str, int], list[float]] = defaultdict(lambda: [0] * 9)
    for group_events, group_decisions in groups:
        if not group_events and not group_decisions:
            s, convert = next(subs, (None, None))
            if s is None or convert is None:
                continue
            counts[(s.rule, s.variant, s.at // DAY_MS)][5] += 1
            group_events = [convert]
        for e in group_events:
            feedback = f"{e.type} {e.decision}" if e.type in FEEDBACK and e.decision else None
            if new(e.key and f"e {e.key}", feedback):
                events.append(e)
        decisions += [d for d in group_decisions if new(d.key and f"d {d.key}")]
    first: dict[tuple[str, str], tuple[int, str]] = {}
    for d in sorted(decisions, key=lambda d: (d.at, d.id)):
        for v in d.verdicts:
            if v.matched:
                counts[(v.rule, v.variant or "", d.at // DAY_MS)][0] += 1
                if d.visitor != "-":
                    first.setdefault((d.visitor, v.rule), (d.at, v.variant or ""))
    for e in events:
        column = {"impression": 2, "click": 3, "dismiss": 4}.get(e.type)
        if column is not None and e.rule and e.variant:
            counts[(e.rule, e.variant, e.at // DAY_MS)][column] += 1
    for (visitor, rule_id), (at, variant) in first.items():
        row = counts[(rule_id, variant, at // DAY_MS)]
        row[1] += 1
        converting = [
            e
            for e in events
            if e.visitor == visitor
            and (
                (e.type == "convert" and e.rule == rule_id and e.at >= at)
                or (
                    e.type in ("event", "trigger")
                    and rule_id in goals["news"].get(e.name or "", ())
                    and e.at > at  # not one reported in the call that exposed them
                )
            )
        ]
        row[6] += bool(converting)
        revenue = sum(e.value for e in converting if e.value is not None and e.value > 0)
        row[7] += revenue
        row[8] += revenue * revenue
    return sorted(
        (
            DayCounts(day, variant, *map(int, c[:7]), float(c[7]), float(c[8]))
            for (rule, variant, day), c in counts.items()
            if rule == "exp"
        ),
        key=lambda c: (c.day, c.variant),
    )


async def write_all(store: Store, groups: list[Records], submitted: list[Submitted]) -> None:
    subs = iter(submitted)
    for events, decisions in groups:
        if not events and not decisions:
            s, convert = next(subs, (None, None))
            if s is not None and convert is not None:
                done = await store.submit(s, {}, convert, f"form-{s.id}", LIMITS)
                assert done.outcome == "stored"
            continue
        await store.write(events, decisions)


def run(url: str, body: Callable[[Store], Awaitable[Any]], goals: Goals | None = GOALS) -> Any:
    async def main() -> Any:
        store = await open_store(url, goals)
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def totals(days: list[DayCounts]) -> list[VariantCounts]:
    """The report's days summed per variant, as results() gives them."""
    by: dict[str, list[float]] = defaultdict(lambda: [0] * 9)
    for d in days:
        for i, value in enumerate(
            (d.visitors, d.impressions, d.conversions, d.revenue, d.revenue_sq,
             d.clicks, d.dismissals, d.submissions, d.decisions)
        ):  # fmt: skip
            by[d.variant][i] += value
    return [
        VariantCounts(v, *map(int, c[:3]), float(c[3]), float(c[4]), *map(int, c[5:]))
        for v, c in sorted(by.items())
    ]


def test_the_rollups_match_a_recount_of_the_records_written(store_url: str) -> None:
    groups, submitted = dataset()
    expected = recount(groups, submitted, GOALS)

    async def body(store: Store) -> tuple[list[DayCounts], list[VariantCounts], list[DayCounts]]:
        await write_all(store, groups, submitted)
        days = await store.report("news", "exp", DAY0 - 1, DAY0 + 30)
        return (
            days,
            await store.results("news", "exp"),
            await store.report("news", "exp", DAY0 + 1, DAY0 + 2),
        )

    days, results, one_day = run(store_url, body)
    # The data exercises what it should: several days, every kind of count, revenue.
    assert len({d.day for d in expected}) >= 3 and {d.variant for d in expected} == set(
        RULES["exp"]
    )
    assert all(sum(getattr(d, f) for d in expected) > 0 for f in DayCounts.__struct_fields__[2:])
    assert days == expected
    assert results == totals(expected)
    assert one_day == [d for d in expected if d.day == DAY0 + 1]


def test_a_goal_before_the_exposure_and_a_replay_do_not_count(store_url: str) -> None:
    def shown(visitor: str, at: int, key: str | None = None) -> DecisionRecord:
        verdicts = [Verdict("exp", True, variant="blue")]
        return DecisionRecord(record_id(T0 + at), "news", visitor, T0 + at, "u", verdicts, key=key)

    first = shown("a", 10, key="call-0001")
    seen = EventRecord("news", "a", "impression", T0 + 11, rule="exp", variant="blue",
                       decision=first.id, key="imp-0001")  # fmt: skip
    paid = EventRecord("news", "a", "trigger", T0 + 12, name="purchase", value=3.0, key="pay-01")

    async def body(store: Store) -> list[list[VariantCounts]]:
        seen_at = []
        await store.write(
            [EventRecord("news", "a", "event", T0 + 5, name="purchase", value=8.0)], []
        )
        await store.write([], [first])
        await store.write([seen, msgspec_replace(seen, key="imp-0002")], [first])  # replayed
        seen_at.append(await store.results("news", "exp"))
        await store.write([paid, paid], [shown("a", 20)])  # a retry in the group, a 2nd exposure
        await store.write([paid], [])  # and later
        await store.write([msgspec_replace(paid, key="pay-02", value=1.0)], [])
        seen_at.append(await store.results("news", "exp"))
        return seen_at

    before, after = run(store_url, body)
    assert before == [VariantCounts("blue", 1, 1, 0, decisions=1)]
    # One visitor, converted once, revenue 3 + 1 (the purchase before exposure not counted).
    assert after == [VariantCounts("blue", 1, 1, 1, 4.0, 16.0, decisions=2)]


def test_a_calls_records_are_kept_once_by_its_decisions_key(store_url: str) -> None:
    """A decide call's triggers (keys ``<call>.<part>``) take no key row of their own: the
    key of its decision keeps a retry of the call, in its group or a later one, from
    storing them again. A dotted key whose call has no decision in the group (a form's
    conversion) keeps a row of its own."""

    def call(call: str, at: int, parts: tuple[str, ...]) -> Records:
        triggers = [
            EventRecord("news", "a", "trigger", T0 + at, name=f"t{p}", key=f"{call}.{p}")
            for p in parts
        ]
        shown = [Verdict("exp", True, variant="blue")]
        return triggers, [DecisionRecord(record_id(T0 + at), "news", "a", T0 + at, "u", shown,
                                         key=call)]  # fmt: skip

    form = EventRecord("news", "a", "convert", T0 + 40, rule="exp", variant="blue",
                       decision="d-1", key="form-0001.form")  # fmt: skip

    async def body(store: Store) -> tuple[list[str], int, int]:
        first, retried = call("call-0001", 10, ("0",)), call("call-0001", 11, ("0", "1"))
        await store.write(first[0] + retried[0], first[1] + retried[1])  # one group
        await store.write(*call("call-0001", 20, ("0", "2")))  # a later retry: nothing
        await store.write(*call("call-0002", 30, ("0",)))
        await store.write([form], [])
        await store.write([form], [])
        stored = [e.name or e.type for e in await store.events("news", ["a"])]
        decisions = await store.decisions(DecisionQuery(site="news"))
        return stored, len(decisions), await count(store_url, "SELECT COUNT(*) FROM record_keys")

    stored, decisions, keys = run(store_url, body)
    # The retry in the group stores only the trigger its first attempt did not send.
    assert stored == ["t0", "t1", "t0", "convert"]
    assert decisions == 2
    # The two decisions' keys, and the conversion's own and its decision's (one a decision).
    assert keys == 4


def msgspec_replace(e: EventRecord, **changes: Any) -> EventRecord:
    from msgspec.structs import replace

    return replace(e, **changes)


def test_erasure_keeps_the_counts_and_lets_the_browser_go(store_url: str) -> None:
    async def body(store: Store) -> tuple[list[VariantCounts], list[VariantCounts]]:
        verdicts = [Verdict("exp", True, variant="blue")]
        await store.write([], [DecisionRecord(record_id(T0), "news", "a", T0, "u", verdicts)])
        await store.write([EventRecord("news", "a", "event", T0 + 1, name="subscribe")], [])
        await store.link("news", "a", "alice", T0 + 2, verified=True)
        held = await store.results("news", "exp")
        assert await store.erase_contact("news", "alice")
        kept = await store.results("news", "exp")
        # Nothing ties "a" to its exposure any more: deciding it again exposes a new visitor.
        later = DecisionRecord(record_id(T0 + 9), "news", "a", T0 + 9, "u", verdicts)
        await store.write([], [later])
        assert await store.results("news", "exp") == [VariantCounts("blue", 2, 0, 1, decisions=2)]
        return held, kept

    held, kept = run(store_url, body)
    assert held == kept == [VariantCounts("blue", 1, 0, 1, decisions=1)]


# The statements the store ran before the rollups: records deduplicated by their idempotency
# keys only (a replayed impression with a new id was stored), as older stores hold them.
_OLD_EVENT = (
    "INSERT INTO events (site, visitor, type, at, name, rule, variant, decision, value,"
    " idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (site, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
)
_OLD_DECISION = (
    "INSERT INTO decisions (id, site, visitor, at, url, verdicts, pageview, idempotency_key)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (site, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
)


def _old_rows(
    groups: list[Records], submitted: list[Submitted]
) -> list[tuple[str, tuple[Any, ...]]]:
    from msgspec.json import encode

    rows: list[tuple[str, tuple[Any, ...]]] = []
    subs = iter(submitted)
    for events, decisions in groups:
        if not events and not decisions:
            s, convert = next(subs, (None, None))
            if s is not None and convert is not None:
                rows.append((INSERT_SUBMISSION, submission_row(s, f"form-{s.id}")))
                events = [convert]
        for e in events:
            rows.append((_OLD_EVENT, (e.site, e.visitor, e.type, e.at, e.name, e.rule,
                                      e.variant, e.decision, e.value, e.key)))  # fmt: skip
        for d in decisions:
            verdicts = encode(d.verdicts).decode()
            rows.append(
                (_OLD_DECISION, (d.id, d.site, d.visitor, d.at, d.url, verdicts, True, d.key))
            )
    return rows


def _before_rollups(migrations: list[Any], step: Any) -> list[Any]:
    return migrations[: migrations.index(step)]


async def _old_postgres_store(url: str, rows: list[tuple[str, tuple[Any, ...]]]) -> None:
    db = await asyncpg.connect(url)
    try:
        await postgres_store.migrate(db)
        async with db.transaction():
            for sql, row in rows:
                await db.execute(postgres_store._numbered(sql), *row)
    finally:
        await db.close()


def _old_store(url: str, rows: list[tuple[str, tuple[Any, ...]]], m: pytest.MonkeyPatch) -> None:
    """A store at the schema before the rollups, holding ``rows`` as the old writer did."""
    if url.startswith("sqlite"):
        before = sqlite_store.MIGRATIONS[: sqlite_store.MIGRATIONS.index(sqlite_rollups)]
        m.setattr(sqlite_store, "MIGRATIONS", before)
        db = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        sqlite_store.migrate(db)
        db.execute("BEGIN")
        for sql, row in rows:
            db.execute(sql, row)
        db.execute("COMMIT")
        db.close()
    else:
        before = postgres_store.MIGRATIONS[: postgres_store.MIGRATIONS.index(postgres_rollups)]
        m.setattr(postgres_store, "MIGRATIONS", before)
        asyncio.run(_old_postgres_store(url, rows))


def test_the_migration_counts_older_logs_as_the_writer_counts_new_ones(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store at the schema before the rollups, holding logs as the old writer stored them
    (replayed feedback included), is migrated with the goals given: its rollups are those
    the writer keeps as the same records come (see the recount), and it keeps counting."""
    groups, submitted = dataset(seed=5)
    with monkeypatch.context() as m:
        _old_store(store_url, _old_rows(groups, submitted), m)
    later = DecisionRecord(
        record_id(T0 + 40 * DAY_MS), "news", "newcomer", T0 + 40 * DAY_MS, "u",
        [Verdict("exp", True, variant="blue")],
    )  # fmt: skip

    async def body(store: Store) -> tuple[list[DayCounts], list[DayCounts]]:
        migrated = await store.report("news", "exp", 0, DAY0 + 30)
        await store.write([], [later])
        return migrated, await store.report("news", "exp", DAY0 + 40, DAY0 + 41)

    migrated, after = run(store_url, body)
    expected = recount(groups, submitted, GOALS)
    assert sum(d.conversions for d in expected) > 0 and sum(d.revenue for d in expected) > 0
    assert migrated == expected
    assert after == [DayCounts(DAY0 + 40, "blue", 1, 1, 0, 0, 0, 0, 0, 0.0, 0.0)]


def test_a_retry_that_spans_the_migration_is_not_stored_again(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records the old version stored in the last two days (what retention keeps of the
    keys) keep their idempotency through the upgrade: a decide call's retry, an event's
    retry and feedback replayed with a new id are not stored or counted again."""
    d = DecisionRecord(record_id(T0), "news", "a", T0, "u",
                       [Verdict("exp", True, variant="blue")], key="call-0001")  # fmt: skip
    imp = EventRecord("news", "a", "impression", T0 + 1, rule="exp", variant="blue",
                      decision=d.id, key="imp-0001")  # fmt: skip
    paid = EventRecord("news", "a", "trigger", T0 + 2, name="purchase", value=5.0,
                       key="call-0002.0")  # fmt: skip
    with monkeypatch.context() as m:
        _old_store(store_url, _old_rows([([imp], [d]), ([paid], [])], []), m)
    monkeypatch.setattr(backfill, "_now_ms", lambda: T0 + DAY_MS)  # the upgrade, a day on

    async def body(store: Store) -> tuple[list[VariantCounts], list[VariantCounts]]:
        before = await store.results("news", "exp")
        again = msgspec_replace(d, id=record_id(T0 + 5), at=T0 + 5)  # the same call, retried
        await store.write([imp, msgspec_replace(imp, key="imp-0002"), paid], [again])
        return before, await store.results("news", "exp")

    before, after = run(store_url, body)
    assert before == [VariantCounts("blue", 1, 1, 1, 5.0, 25.0, decisions=1)]
    assert after == before


def _written_or_migrated(
    how: str, url: str, groups: list[Records], m: pytest.MonkeyPatch
) -> list[VariantCounts]:
    """The results of ``groups`` written by the writer, or stored by the old version and
    counted by the migration."""
    if how == "migrated":
        with m.context() as old:
            _old_store(url, _old_rows(groups, []), old)

    async def body(store: Store) -> list[VariantCounts]:
        if how == "written":
            for events, decisions in groups:
                await store.write(events, decisions)
        return await store.results("news", "exp")

    return run(url, body)  # type: ignore[no-any-return]


@pytest.mark.parametrize("how", ["written", "migrated"])
def test_a_goal_reported_in_the_call_that_exposes_the_visitor_does_not_convert(
    store_url: str, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The decide call's triggers and its decision are stored at the same ``at``: such a
    goal fired on the page before the decision, so neither it nor its value counts; a later
    goal does. A ``convert`` names the decision it follows, so one at the same ``at`` does."""
    exposed = [Verdict("exp", True, variant="blue")]
    a = DecisionRecord(record_id(T0), "news", "a", T0, "u", exposed, key="call-0001")
    b = DecisionRecord(record_id(T0 + 1), "news", "b", T0 + 1, "u", exposed, key="call-0002")
    c = DecisionRecord(record_id(T0 + 2), "news", "c", T0 + 2, "u", exposed, key="call-0003")
    groups: list[Records] = [
        ([EventRecord("news", "a", "trigger", T0, name="purchase", value=59.0,
                      key="call-0001.0")], [a]),
        ([], [b]),
        ([EventRecord("news", "b", "convert", T0 + 1, rule="exp", variant="blue",
                      decision=b.id, key="ev-0001")], []),
        ([EventRecord("news", "c", "event", T0 + 2, name="subscribe", key="call-0003.0")], [c]),
        ([EventRecord("news", "a", "trigger", T0 + 9, name="purchase", value=4.0,
                      key="call-0004.0")], []),
    ]  # fmt: skip
    # a converts by the later purchase only (revenue 4), b by its convert, c not at all.
    assert _written_or_migrated(how, store_url, groups, monkeypatch) == [
        VariantCounts("blue", 3, 0, 2, 4.0, 16.0, decisions=3)
    ]


@pytest.mark.parametrize("how", ["written", "migrated"])
def test_only_a_positive_value_is_revenue(
    store_url: str, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The browser reports a goal's value: a negative or zero one adds no revenue (it would
    take from the variant's), though the goal still converts."""
    d = DecisionRecord(record_id(T0), "news", "a", T0, "u",
                       [Verdict("exp", True, variant="blue")], key="call-0001")  # fmt: skip
    goals = [
        EventRecord("news", "a", "event", T0 + i, name="purchase", value=value, key=f"go-{i}")
        for i, value in [(1, -1e9), (2, 0.0), (3, 3.0), (4, -2.0)]
    ]
    groups: list[Records] = [([], [d]), (goals[:2], []), (goals[2:], [])]
    assert _written_or_migrated(how, store_url, groups, monkeypatch) == [
        VariantCounts("blue", 1, 0, 1, 3.0, 9.0, decisions=1)
    ]


def test_goals_map_each_goal_event_to_the_rules_it_converts() -> None:
    first = rule(id="one", goal="subscribe")
    second = rule(id="two", goal="subscribe", priority=5)
    third = rule(id="three", goal="purchase", priority=4)
    plain = {k: v for k, v in rule(id="four", priority=3).items() if k != "goal"}
    sites = {
        "news": site(rules=[first, second, third, plain]),
        "shop": site(site="shop", rules=[plain]),
    }
    assert goals_of(sites) == {
        "news": {"subscribe": ("one", "two"), "purchase": ("three",)},
        "shop": {},
    }


def test_the_app_gives_the_store_its_goals_at_start_and_on_reload(client: TestClient) -> None:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.store.goals == goals_of(runtime.sites)
    assert runtime.store.goals["news"]["subscribe"]
    runtime.store.goals = {}
    assert client.portal.call(runtime.reload) == []  # type: ignore[union-attr]
    assert runtime.store.goals == goals_of(runtime.sites)


def test_the_migration_waits_for_the_goals_when_the_logs_hold_goal_events(
    store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Opened without goals (a command run while the config does not load), an older store
    whose logs hold goal events is not migrated: their conversions would be lost for good.
    A new store needs none."""
    goal = EventRecord("news", "a", "event", T0, name="subscribe")
    with monkeypatch.context() as m:
        _old_store(store_url, _old_rows([([goal], [])], []), m)
    with pytest.raises(StoreUnavailable, match="needs a config that loads"):
        run(store_url, lambda s: s.results("news", "exp"), goals=None)
    assert run(store_url, lambda s: s.results("news", "exp")) == []  # with them: migrated
    assert run(f"sqlite:///{tmp_path / 'new.db'}", lambda s: s.results("news", "exp"), None) == []
