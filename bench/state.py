"""Cost of the state cookie on every page view: seal and open (encode + decode) per call.

Three states: a returning reader of the demo news site (the cookie most visitors carry),
a year of heavy use of the demo shop (every trigger and rule at its fullest, identified,
with attributes), and the shop's worst case (what `sitecue check` reports). Prints µs per
encode + decode (CPU time of this thread, so a busy machine skews it less) and the bytes sent
(``sc_s=…``).

    python bench/state.py
"""

from __future__ import annotations

import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sitecue.decide import decide  # noqa: E402
from sitecue.protocol import DecideRequest, Page, PageEvent  # noqa: E402
from sitecue.rules import CompiledSite, load_sites  # noqa: E402
from sitecue.state import StateCodec, VisitorState  # noqa: E402
from sitecue.state_size import worst_state  # noqa: E402
from sites import CONFIG_DIR  # noqa: E402
from test_state import heavy_year  # noqa: E402

VISITOR = "bench-visitor-000001aa"


def returning_reader(site: CompiledSite) -> VisitorState:
    """A reader who met the paywall on three page views over two days."""
    state = VisitorState(visitor=VISITOR)
    request = DecideRequest(
        site="news",
        page=Page(url="https://news.example/news/articles/2.html"),
        events=[PageEvent(name="paywall_view")],
    )
    for now in (1_790_000_000_000, 1_790_090_000_000, 1_790_180_000_000):
        decide(site, state, request, now)
    return state


def main() -> None:
    sites = load_sites(CONFIG_DIR)
    shop_worst = worst_state(sites["shop"])
    shop_worst.visitor = VISITOR
    states = {
        "returning reader, news": ("news", returning_reader(sites["news"])),
        "heavy year, shop": ("shop", heavy_year(sites["shop"])),
        "worst case, shop": ("shop", shop_worst),
    }
    codec = StateCodec(["bench-secret-0123456789"])
    print("state cookie, encode + decode (seal and open) per call:")
    for name, (site, state) in states.items():
        cookie = codec.encode(state, site)

        def call(state: VisitorState = state, site: str = site) -> None:
            codec.decode(codec.encode(state, site), state.visitor, site)

        runs = timeit.repeat(call, number=2000, repeat=7, timer=time.thread_time)
        us = min(runs) / 2000 * 1e6
        print(f"  {name:24} {len(cookie) + 5:5d} B sent  {us:6.1f} µs")
    assert not codec.evicted, "the bench measures states that fit"


if __name__ == "__main__":
    main()
