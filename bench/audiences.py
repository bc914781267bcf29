"""Audiences: the memory and lookup cost of an imported id list, and what audiences cost a
page view.

Imports a list of a million contact ids (the file ``sitecue audiences import`` writes),
loads it as the server does at load and reload, and prints its bytes per id, the lookup
cost of a listed and an unlisted id, and for comparison what a Python set of the same ids
would take. Then decide() on the news site, in the same run: without audiences (the
baseline), with both kinds defined but used by no rule (what a page view that uses none of
them pays: the ratio should be 1.00 within noise), and with a rule that asks for each;
and what /v1/decide pays to see that a page view is not a preview.

    python bench/audiences.py [--ids 1000000]
"""

from __future__ import annotations

import argparse
import copy
import gc
import shutil
import sys
import tempfile
import time
import timeit
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sitecue.audiences import PURPOSE, read_id_file, write_id_file  # noqa: E402
from sitecue.config import parse_site  # noqa: E402
from sitecue.decide import decide  # noqa: E402
from sitecue.keyring import Keyring  # noqa: E402
from sitecue.preview import grant_in  # noqa: E402
from sitecue.protocol import DecideRequest, Page, PageEvent  # noqa: E402
from sitecue.rules import CompiledSite, compile_site  # noqa: E402
from sitecue.state import VisitorState  # noqa: E402
from sites import CONFIG_DIR, NEWS  # noqa: E402

RING = Keyring(["bench-audience-secret-0000"])
KEY = b"bench-decision-key"
REQUEST = DecideRequest(
    site="news",
    page=Page(url="https://news.example/articles/2?utm_source=mail", viewport="desktop"),
    events=[PageEvent(name="paywall_view")],
    view="bench-view",
)


def best_us(fn: Any, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def id_list(n: int, root: Path) -> None:
    ids = [f"customer-{i:08d}" for i in range(n)]
    path = root / "audiences" / "news" / "staff.ids"
    started = time.perf_counter()
    distinct, size = write_id_file(path, ids, RING.mac_key(PURPOSE, "news"))
    imported = time.perf_counter() - started
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    hashed = read_id_file(path, RING.mac_keys(PURPOSE, "news"))
    loaded = time.perf_counter() - started
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"id list of {distinct:,} ids: file {size / 1e6:.1f} MB, imported in {imported:.1f} s,")
    print(
        f"  loaded in {loaded * 1000:.0f} ms, holding {held / 1e6:.1f} MB in memory"
        f" ({held / distinct:.1f} B an id, {held / distinct * 1e6 / 1e6:.1f} MB a million)"
    )
    listed, unlisted = ids[n // 2], "customer-x"
    assert listed in hashed and unlisted not in hashed
    hit = best_us(lambda: listed in hashed, 20_000)
    miss = best_us(lambda: unlisted in hashed, 20_000)
    print(f"  lookup: listed {hit:.2f} µs, unlisted {miss:.2f} µs (a keyed hash, a bisection)")
    gc.collect()
    tracemalloc.start()
    as_set = set(ids)
    as_set_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del as_set
    print(f"  for comparison, a set of the ids: {as_set_bytes / 1e6:.0f} MB (not counting the ids)")


def news(root: Path, audiences: dict[str, Any], when: dict[str, Any] | None) -> CompiledSite:
    data = copy.deepcopy(NEWS)
    data["attributes"] = {"loyalty_tier": "string"}
    data["audiences"] = audiences
    if when is not None:
        data["rules"].append(
            {**data["rules"][0], "id": "aud", "when": when, "limit": {},
             "placement": {"type": "bar"}, "variants": [{"id": "on", "weight": 100,
                                                        "widget": "faq"}]}
        )  # fmt: skip
    return compile_site(parse_site(data), root, keyring=RING)


def decide_us(sites: dict[str, tuple[CompiledSite, str]], rounds: int = 9) -> dict[str, float]:
    """µs a decide() for each site, the best of interleaved rounds: on a shared machine,
    load that comes and goes then weighs on every site alike."""
    best = dict.fromkeys(sites, float("inf"))
    for _ in range(rounds):
        for label, (compiled, contact) in sites.items():

            def one(compiled: CompiledSite = compiled, contact: str = contact) -> None:
                state = VisitorState(visitor="bench-visitor-0001", contact=contact, verified=True)
                decide(compiled, state, REQUEST, 1_764_072_000_000, key=KEY)

            best[label] = min(best[label], timeit.timeit(one, number=2_000) / 2_000 * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ids", type=int, default=1_000_000)
    n = parser.parse_args().ids
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(CONFIG_DIR / "widgets", root / "widgets")
        id_list(n, root)
        defined = {
            "vip": {"attributes.loyalty_tier": {"$in": ["gold", "platinum"]}},
            "staff": {"ids_file": "audiences/news/staff.ids"},
        }
        listed, unlisted = f"customer-{n // 2:08d}", "customer-x"
        staff = news(root, defined, {"audience": "staff"})
        group = news(root, defined, {"visitor.contact": {"$inGroup": "staff"}})
        sites = {
            "without audiences (the baseline)": (news(root, {}, None), listed),
            "both defined, no rule uses them": (news(root, defined, None), listed),
            'a rule {"audience": "vip"}, missed': (
                news(root, defined, {"audience": "vip"}),
                listed,
            ),
            'a rule {"audience": "staff"}, missed': (staff, unlisted),
            'a rule {"audience": "staff"}, shown': (staff, listed),
            'a rule $inGroup "staff", missed': (group, unlisted),
        }
        cost = decide_us(sites)
        base = cost["without audiences (the baseline)"]
        print("\ndecide() on the news site, µs a page view (best of 9 interleaved rounds):")
        for label, us in cost.items():
            print(f"  {label:<38}{us:6.1f}  ({us / base:.2f}x the baseline)")
        url = REQUEST.page.url
        look = best_us(lambda: grant_in(url), 100_000)
        print(
            f"\n/v1/decide's check for a preview link on a page without one: {look * 1000:.0f} ns"
        )


if __name__ == "__main__":
    main()
