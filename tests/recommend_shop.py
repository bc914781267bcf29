"""A synthetic shop for the recommendations' tests and bench: its site config, its
catalogue written straight into the ``products`` table (on either engine), and seeded
histories of product views, carts and purchases."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Iterable
from typing import Any

import asyncpg

from sitecue.rules import CompiledSite
from sitecue.store import EventRecord, Product
from sitecue.store.catalog import BUMP_VERSION
from sites import site

DAY = 86_400_000
NOW = 1_790_000_000_000 // DAY * DAY + 12 * 3_600_000  # noon UTC


def shop(**catalog: Any) -> CompiledSite:
    """The shop with a catalog section (``catalog`` overrides its settings)."""
    settings = {"cart": "add_to_cart", "purchase": "purchase", **catalog}
    return site(site="shop", origins=["https://shop.example"], catalog=settings)


def products(count: int, categories: int = 5) -> list[Product]:
    """``p000``… in ``c0``… (round robin), every tenth out of stock."""
    return [
        Product(
            f"p{i:03d}",
            f"Product {i}",
            f"https://shop.example/p/{i}",
            price=10.0 + i,
            category=f"c{i % categories}",
            in_stock=i % 10 != 9,
        )
        for i in range(count)
    ]


_INSERT = (
    "INSERT INTO products (site, id, name, url, image, price, category, in_stock, extra,"
    " source, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?)"
    " ON CONFLICT (site, id) DO UPDATE SET in_stock = excluded.in_stock,"
    " category = excluded.category, updated = excluded.updated"
)


def put_products(url: str, site_name: str, items: Iterable[Product]) -> None:
    """Write products into the table as the catalogue would, moving its version on (the
    store must have migrated)."""
    rows = [
        (site_name, p.id, p.name, p.url, p.image, p.price, p.category, p.in_stock,
         p.source, p.updated)
        for p in items
    ]  # fmt: skip
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        with db:
            db.executemany(_INSERT, rows)
            db.execute(BUMP_VERSION, (site_name,))
        db.close()
        return

    async def write() -> None:
        db = await asyncpg.connect(url)
        try:
            async with db.transaction():
                await db.executemany(_numbered(_INSERT), rows)
                await db.execute(_numbered(BUMP_VERSION), site_name)
        finally:
            await db.close()

    asyncio.run(write())


def _numbered(sql: str) -> str:
    count = iter(range(1, 100))
    return "".join(f"${next(count)}" if c == "?" else c for c in sql)


def view(visitor: str, product: str, at: int, **fields: Any) -> EventRecord:
    return EventRecord("shop", visitor, "product_view", at, products=[product], **fields)


def bought(visitor: str, items: list[str], at: int) -> EventRecord:
    return EventRecord("shop", visitor, "event", at, name="purchase", products=items, value=1.0)


def carted(visitor: str, product: str, at: int) -> EventRecord:
    return EventRecord("shop", visitor, "trigger", at, name="add_to_cart", products=[product])


def history(
    seed: int, visitors: int, catalogue: list[str], *, start: int = NOW - 20 * DAY
) -> list[EventRecord]:
    """Random shoppers: each views a few products over a day or two, sometimes adds one to
    the cart and buys one or two; seeded."""
    rng = random.Random(seed)
    events = []
    for v in range(visitors):
        at = start + rng.randrange(19 * DAY)
        seen = rng.sample(catalogue, rng.randint(2, 8))
        for product in seen:
            at += rng.randrange(1, 3_600_000)
            events.append(view(f"v{seed}-{v}", product, at))
        if rng.random() < 0.3:
            events.append(carted(f"v{seed}-{v}", seen[0], at + 1000))
        if rng.random() < 0.2:
            events.append(bought(f"v{seed}-{v}", seen[: rng.randint(1, 2)], at + 2000))
    return events
