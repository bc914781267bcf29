"""Audiences: named conditions and id lists, used as {"audience": name} in any when."""

from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN
from sitecue.app import build_app
from sitecue.audiences import PURPOSE, HashedIds, page_groups, read_id_file, write_id_file
from sitecue.cli import main
from sitecue.config import parse_site
from sitecue.decide import decide
from sitecue.errors import ConfigError
from sitecue.keyring import Keyring
from sitecue.protocol import DecideRequest, Page, PageEvent
from sitecue.rules import CompiledSite, compile_site
from sitecue.settings import Settings
from sitecue.state import VisitorState
from sitecue.tokens import TokenCodec
from sites import CONFIG_DIR, NEWS

NOW = 1_764_072_000_000
KEY = b"test-decision-key"
RING = Keyring(["a-secret-of-sixteen-chars-or-more"])
SHOP = "https://shop.example"
ALWAYS = [{"id": "on", "weight": 100, "widget": "faq"}]


def news(audiences: dict[str, Any], *whens: dict[str, Any], root: Path = CONFIG_DIR,
         keyring: Keyring | None = RING) -> CompiledSite:  # fmt: skip
    data = copy.deepcopy(NEWS)
    data["attributes"] = {"loyalty_tier": "string"}
    data["audiences"] = audiences
    base = data["rules"][0]
    data["rules"] = [
        {**base, "id": f"r{i}", "when": when, "variants": ALWAYS, "limit": {},
         "placement": {"type": "inline", "selector": f"#slot{i}"}}
        for i, when in enumerate(whens)
    ]  # fmt: skip
    return compile_site(parse_site(data), root, keyring=keyring)


def shown(compiled: CompiledSite, state: VisitorState, events: list[str] = ()) -> set[str]:  # type: ignore[assignment]
    request = DecideRequest(
        site="news",
        page=Page(url="https://news.example/articles/1"),
        events=[PageEvent(name=e) for e in events],
        view="v",
    )
    return {d.rule for d in decide(compiled, state, request, NOW, key=KEY).decisions}


def problems(audiences: dict[str, Any], *whens: dict[str, Any], **kw: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        news(audiences, *whens, **kw)
    return [str(p) for p in caught.value.problems]


VIP = {"vip": {"attributes.loyalty_tier": {"$in": ["gold", "platinum"]}}}


def verified(contact: str, **attributes: Any) -> VisitorState:
    return VisitorState(
        visitor="visitor-aud-0001", contact=contact, verified=True, attributes=attributes
    )


def test_a_named_condition_is_used_in_any_when() -> None:
    compiled = news(
        VIP,
        {"audience": "vip"},
        {"$or": [{"audience": "vip"}, {"page.path": "/nowhere"}]},
        {"$not": {"audience": "vip"}},
    )
    assert shown(compiled, verified("c-1", loyalty_tier="gold")) == {"r0", "r1"}
    assert shown(compiled, verified("c-1", loyalty_tier="bronze")) == {"r2"}
    request = DecideRequest(site="news", page=Page(url="https://news.example/"), view="v")
    outcome = decide(compiled, verified("c-1"), request, NOW, key=KEY)
    assert outcome.verdicts[0].reason == "condition: audience vip"  # the log names it


def test_audiences_build_on_audiences_and_their_triggers_are_kept() -> None:
    compiled = news(
        {**VIP, "keen_vip": {"audience": "vip", "triggers.paywall_view.7d": {"$gte": 2}}},
        {"audience": "keen_vip"},
    )
    assert compiled.windows == {"paywall_view": frozenset({"7d"})}
    state = verified("c-1", loyalty_tier="gold")
    assert shown(compiled, state, ["paywall_view"]) == set()
    assert shown(compiled, state, ["paywall_view"]) == {"r0"}


def test_an_unknown_audience_is_named_with_its_path() -> None:
    assert problems(VIP, {"audience": "vips"}) == [
        "$.rules[0].when.audience: expected the name of an audience (vip), got 'vips'"
    ]
    assert problems(VIP, {"$and": [{"audience": 3}]})[0].startswith(
        "$.rules[0].when.$and[0].audience: expected the name of an audience"
    )


def test_a_circle_of_audiences_is_a_mistake() -> None:
    found = problems({"a": {"audience": "b"}, "b": {"$or": [{"audience": "a"}]}}, {})
    assert found == [
        "$.audiences.b.$or[0].audience: expected audiences that do not refer to each other"
        " in a circle (a -> b -> a)"
    ]
    assert problems({"me": {"audience": "me"}}, {})[0].endswith("circle (me -> me)")


def test_an_audience_reading_undeclared_data_is_a_mistake_where_a_rule_uses_it() -> None:
    found = problems({"x": {"attributes.tier": "gold", "page.nothing": 1}}, {"audience": "x"})
    assert any(
        f.startswith('$.audiences.x["attributes.tier"]: expected attributes.<') for f in found
    )
    found = problems({"x": {"triggers.nope.7d": {"$gt": 1}}}, {"audience": "x"})
    assert found[0].startswith('$.audiences.x["triggers.nope.7d"]: expected triggers.<')
    assert problems({"x": {"page.path": {"$bogus": 1}}}, {})[0].startswith(
        '$.audiences.x["page.path"].$bogus: expected a known operator'
    )


def test_an_id_list_matches_a_verified_contact_only() -> None:
    compiled = news({"staff": {"ids": ["c-7", "c-9"]}}, {"audience": "staff"})
    assert shown(compiled, verified("c-7")) == {"r0"}
    assert shown(compiled, verified("c-8")) == set()
    # Claimed with sitecue('identify') or typed into a form: not proven, unlocks nothing.
    assert shown(compiled, VisitorState(visitor="visitor-aud-0001", contact="c-7")) == set()
    # Nor does a visitor id that happens to be listed (the sc_vid cookie is the browser's say).
    assert shown(compiled, VisitorState(visitor="c-7")) == set()


def test_in_group_and_not_in_group_read_id_lists() -> None:
    compiled = news(
        {"staff": {"ids": ["c-7"]}},
        {"visitor.contact": {"$inGroup": "staff"}},
        {"visitor.contact": {"$notInGroup": "staff"}},
    )
    assert shown(compiled, verified("c-7")) == {"r0"}
    assert shown(compiled, verified("c-1")) == {"r1"}
    found = problems({**VIP, "staff": {"ids": []}}, {"visitor.contact": {"$inGroup": "vip"}})
    assert found == [
        '$.rules[0].when["visitor.contact"].$inGroup: expected the id of a saved group'
        ' (staff), got "vip"'
    ]


def test_in_group_over_what_the_page_says_is_warned_about() -> None:
    compiled = news(
        {"staff": {"ids": ["c-7"]}, "by_link": {"page.query.who": {"$inGroup": "staff"}}},
        {"$or": [{"utm.source": {"$notInGroup": "staff"}}]},
        {
            "visitor.contact": {"$inGroup": "staff"},
            "attributes.loyalty_tier": {"$inGroup": "staff"},
        },
    )
    assert [w.path for w in compiled.warnings] == [
        '$.audiences.by_link["page.query.who"].$inGroup',
        '$.rules[0].when.$or[0]["utm.source"].$notInGroup',
    ]
    assert "anyone can claim a listed id" in compiled.warnings[0].expected


def test_in_group_over_a_form_answer_is_warned_about() -> None:
    """attributes.email read as a form answer is what this browser typed: whoever types a
    listed id there would match; a declared offsite attribute is the site's own data."""
    when = {
        "attributes.email": {"$inGroup": "staff"},
        "$not": {"attributes.email": {"$notInGroup": "staff"}},
        "attributes.loyalty_tier": {"$inGroup": "staff"},
    }
    found = page_groups(when, "$.rules[0].when", ("loyalty_tier",))
    assert [w.path for w in found] == [
        '$.rules[0].when["attributes.email"].$inGroup',
        '$.rules[0].when.$not["attributes.email"].$notInGroup',
    ]


def test_audiences_naming_audiences_over_and_over_are_refused() -> None:
    """Each level names the one below twice: 2**20 clause tests a page view, refused at load
    instead of stalling every decision (a level is its $or and twice the one below)."""
    levels = {"a0": {"page.path": "/"}}
    for i in range(1, 21):
        below = {"audience": f"a{i - 1}"}
        levels[f"a{i}"] = {"$or": [below, below]}
    found = problems(levels, {"audience": "a20"})
    assert any(f.startswith("$.audiences.a13: expected at most 10000 clauses") for f in found)
    assert not any(f.startswith("$.audiences.a12:") for f in found)  # 8,191: allowed


def test_id_list_specs_are_checked() -> None:
    assert problems({"s": {"ids": "c-1"}}, {})[0].startswith("$.audiences.s.ids: expected an array")
    assert problems({"s": {"ids": ["x"] * 1001}}, {})[0].startswith("$.audiences.s.ids:")
    assert problems({"s": {"ids": [], "page.path": "/"}}, {})[0].startswith(
        "$.audiences.s: expected either"
    )
    for bad in ("../secret.ids", "/etc/passwd", 7):
        assert problems({"s": {"ids_file": bad}}, {}) == [
            "$.audiences.s.ids_file: expected a path inside the config directory"
        ]


def imported(tmp_path: Path, ids: list[str], keyring: Keyring = RING) -> Path:
    root = tmp_path / "config"
    shutil.copytree(CONFIG_DIR / "widgets", root / "widgets")
    write_id_file(root / "audiences/news/staff.ids", ids, keyring.mac_key(PURPOSE, "news"))
    return root


def test_an_imported_list_is_hashed_sorted_and_matched(tmp_path: Path) -> None:
    ids = [f"customer-{i}" for i in range(5000)] + ["customer-1"]
    root = imported(tmp_path, ids)
    data = (root / "audiences/news/staff.ids").read_bytes()
    assert len(data) == 16 + 8 * 5000 and b"customer" not in data  # no id in the clear
    spec = {"staff": {"ids_file": "audiences/news/staff.ids"}}
    compiled = news(spec, {"audience": "staff"}, root=root)
    assert shown(compiled, verified("customer-4999")) == {"r0"}
    assert shown(compiled, verified("customer-5000")) == set()
    # check (no secrets) reads and checks the file, and it matches nobody there
    assert shown(news(spec, {"audience": "staff"}, root=root, keyring=None), verified("c")) == set()


def test_a_list_hashed_with_other_secrets_is_refused_and_a_rotation_keeps_it(
    tmp_path: Path,
) -> None:
    root = imported(tmp_path, ["customer-1"], Keyring(["an-older-secret-of-16+chars"]))
    spec = {"staff": {"ids_file": "audiences/news/staff.ids"}}
    assert problems(spec, {}, root=root)[0].startswith(
        "$.audiences.staff.ids_file: expected an id list imported with this server's"
    )
    rotated = Keyring(["an-older-secret-of-16+chars", "a-newer-secret-of-16+chars"])
    compiled = news(spec, {"audience": "staff"}, root=root, keyring=rotated)
    assert shown(compiled, verified("customer-1")) == {"r0"}


def test_a_damaged_or_missing_list_is_named(tmp_path: Path) -> None:
    root = imported(tmp_path, ["a", "b"])
    path = root / "audiences/news/staff.ids"
    path.write_bytes(path.read_bytes()[:-3])
    assert (
        "written by sitecue audiences import"
        in problems({"staff": {"ids_file": "audiences/news/staff.ids"}}, {}, root=root)[0]
    )
    assert (
        "readable id list file"
        in problems({"staff": {"ids_file": "audiences/news/none.ids"}}, {}, root=root)[0]
    )


def test_hashed_ids_answer_strings_only(tmp_path: Path) -> None:
    key = RING.mac_key(PURPOSE, "news")
    write_id_file(tmp_path / "x.ids", ["7", "a"], key)
    ids = read_id_file(tmp_path / "x.ids", [key])
    assert isinstance(ids, HashedIds) and len(ids) == 2 and ids.nbytes == 16 + 4 * 4097
    assert "7" in ids and 7 not in ids and None not in ids and "b" not in ids


def test_imported_staff_see_their_rule_through_the_real_app(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """sitecue audiences import, then the server: a contact on the list, verified by an
    email link, sees the staff rule; the same id claimed by the page does not."""
    config = Path(env["SITECUE_CONFIG_DIR"])
    shop_file = config / "sites" / "shop.json"
    shop = json.loads(shop_file.read_text())
    listing = config.parent / "staff.csv"
    listing.write_text("id\nstaff-1\nstaff-2\nstaff-1\n")
    assert main(["audiences", "import", "--site", "shop", "--audience", "staff", str(listing)]) == 2
    assert '"staff": {"ids_file": "audiences/shop/staff.ids"}' in capsys.readouterr().err
    for outside in ("../staff.ids", str(config.parent / "staff.ids")):  # never written
        shop["audiences"] = {"staff": {"ids_file": outside}}
        shop_file.write_text(json.dumps(shop))
        assert (
            main(["audiences", "import", "--site", "shop", "--audience", "staff", str(listing)])
            == 2
        )
        assert "is not inside" in capsys.readouterr().err
    assert not (config.parent / "staff.ids").exists()
    shop["audiences"] = {"staff": {"ids_file": "audiences/shop/staff.ids"}}
    shop["rules"].append(
        {"id": "staff-bar", "placement": {"type": "bar"}, "when": {"audience": "staff"},
         "variants": [{"id": "on", "weight": 100, "widget": "first-purchase"}]}
    )  # fmt: skip
    shop_file.write_text(json.dumps(shop))
    assert main(["audiences", "import", "--site", "shop", "--audience", "staff", str(listing)]) == 0
    assert "3 id(s), 2 distinct" in capsys.readouterr().out

    codec = TokenCodec([env["SITECUE_SECRETS"]])
    expires = int(time.time()) + 3600
    with TestClient(build_app(Settings.load(env=env)), base_url=ORIGIN) as client:

        def rules(browser: str, **extra: Any) -> list[str]:
            if client.cookies.get("sc_vid") != browser:
                client.cookies.clear()
                client.cookies.set("sc_vid", browser, domain="news.example")
            body = {"site": "shop", "page": {"url": f"{SHOP}/shop/"}, **extra}
            answer = client.post("/v1/decide", json=body, headers={"origin": SHOP})
            assert answer.status_code == 200, answer.text
            return [d["rule"] for d in answer.json()["decisions"]]

        assert "staff-bar" in rules(
            "staff-browser-0001", token=codec.mint("shop", "staff-1", expires)
        )
        assert "staff-bar" in rules("staff-browser-0001")  # the cookie remembers, no token
        # A verified customer who then claims a listed id is no longer verified as anyone.
        assert "staff-bar" not in rules("staff-browser-0001", identify="staff-2")
        # A new list is read on reload, without a restart.
        listing.write_text("staff-3\n")
        assert (
            main(["audiences", "import", "--site", "shop", "--audience", "staff", str(listing)])
            == 0
        )
        staff3 = codec.mint("shop", "staff-3", expires)
        assert "staff-bar" not in rules("staff-browser-0003", token=staff3)
        assert client.portal.call(client.app.state.runtime.reload) == []  # type: ignore[attr-defined,union-attr]
        assert "staff-bar" in rules("staff-browser-0003")
        assert "staff-bar" not in rules("other-browser-00001", identify="staff-1")
        assert "staff-bar" not in rules(
            "other-browser-00002", token=codec.mint("shop", "x", expires)
        )
