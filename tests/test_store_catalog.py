"""The catalogue's store methods, on both engines: products written and read back, listed
by cursor, deleted; the version that tells workers to reload; and page descriptions taken
only once enough distinct visitors sent them, never over the site's own products."""

from __future__ import annotations

import msgspec

from sitecue.store import PageClaim, Product, Store
from stores import with_store

T0 = 1_790_000_000_000


def product(i: int, **fields: object) -> Product:
    base: dict[str, object] = {
        "id": f"sku-{i:03d}",
        "name": f"Product {i}",
        "url": f"https://shop.example/p/{i}",
        "image": f"/img/{i}.svg",
        "price": 10.0 + i,
        "category": "lamps" if i % 2 else "chairs",
        "in_stock": i % 3 != 0,
        "extra": {"brand": "Acme", "rating": 4.5, "new": True},
        "updated": T0,
    }
    return msgspec.convert({**base, **fields}, Product)


def claim(p: Product, visitor: str, digest: str = "d1") -> PageClaim:
    return PageClaim(msgspec.structs.replace(p, source="page", updated=0), digest, visitor)


def test_products_are_read_back_as_written_and_replaced_by_a_later_write(
    store_url: str,
) -> None:
    async def body(store: Store) -> tuple[Product | None, Product | None, list[Product]]:
        await store.put_products("shop", [product(1), product(2)])
        await store.put_products("shop", [product(1, name="Renamed", price=None, extra={})])
        await store.put_products("other", [product(1, name="Elsewhere")])
        return (
            await store.product("shop", "sku-001"),
            await store.product("shop", "sku-404"),
            await store.all_products("shop"),
        )

    one, missing, every = with_store(store_url, body)
    assert one == product(1, name="Renamed", price=None, extra={})
    assert missing is None
    assert every == [product(1, name="Renamed", price=None, extra={}), product(2)]


def test_pages_by_cursor_cover_every_product_once_and_narrow_by_category(
    store_url: str,
) -> None:
    async def body(store: Store) -> tuple[list[str], list[str]]:
        await store.put_products("shop", [product(i) for i in range(1, 12)])
        seen: list[str] = []
        after = None
        while True:
            page = await store.products("shop", after=after, limit=4)
            seen += [p.id for p in page]
            if len(page) < 4:
                break
            after = page[-1].id
        lamps = await store.products("shop", category="lamps", after="sku-003", limit=100)
        return seen, [p.id for p in lamps]

    seen, lamps = with_store(store_url, body)
    assert seen == [f"sku-{i:03d}" for i in range(1, 12)]
    assert lamps == ["sku-005", "sku-007", "sku-009", "sku-011"]


def test_the_version_moves_on_every_change_and_only_then(store_url: str) -> None:
    async def body(store: Store) -> list[int]:
        versions = [await store.catalog_version("shop")]
        await store.put_products("shop", [product(1)])
        versions.append(await store.catalog_version("shop"))
        versions.append(await store.catalog_version("shop"))  # a read changes nothing
        await store.put_products("other", [product(1)])  # another site's change
        versions.append(await store.catalog_version("shop"))
        assert await store.delete_product("shop", "sku-404") is False  # nothing deleted
        versions.append(await store.catalog_version("shop"))
        assert await store.delete_product("shop", "sku-001") is True
        versions.append(await store.catalog_version("shop"))
        assert await store.product("shop", "sku-001") is None
        return versions

    v = with_store(store_url, body)
    assert v[0] == 0
    assert v[1] != v[0] and v[1] == v[2] == v[3] == v[4]
    assert v[5] != v[4]


def test_a_page_description_is_taken_once_enough_distinct_visitors_sent_it(
    store_url: str,
) -> None:
    described = product(5, name="Seen on the page")

    async def body(store: Store) -> list[object]:
        steps: list[object] = []
        # One visitor, many times: still one visitor.
        once = [claim(described, "v1")] * 5
        steps.append(await store.confirm_page_products("shop", once, 2, T0))
        steps.append(await store.product("shop", "sku-005"))
        # Another description by a second visitor does not count for the first.
        other = product(5, name="Another story")
        steps.append(await store.confirm_page_products("shop", [claim(other, "v2", "d2")], 2, T0))
        version = await store.catalog_version("shop")
        # A second visitor agreeing, in a later run: taken.
        steps.append(await store.confirm_page_products("shop", [claim(described, "v3")], 2, T0 + 1))
        steps.append(await store.product("shop", "sku-005"))
        steps.append(await store.catalog_version("shop") != version)
        # The same again changes nothing, and does not move the version.
        version = await store.catalog_version("shop")
        again = [claim(described, "v4"), claim(described, "v5")]
        steps.append(await store.confirm_page_products("shop", again, 2, T0 + 2))
        steps.append(await store.catalog_version("shop") == version)
        return steps

    steps = with_store(store_url, body)
    taken = msgspec.structs.replace(described, source="page", updated=T0 + 1)
    assert steps == [[], None, [], ["sku-005"], taken, True, [], True]


def test_a_page_never_replaces_the_sites_product_but_the_site_replaces_a_pages(
    store_url: str,
) -> None:
    async def body(store: Store) -> list[object]:
        await store.put_products("shop", [product(1)])
        forged = product(1, name="FREE", price=0.0)
        visitors = [claim(forged, f"v{i}") for i in range(50)]
        written = await store.confirm_page_products("shop", visitors, 2, T0)
        kept = await store.product("shop", "sku-001")
        # A page product, then the site's systems describe it: theirs wins.
        await store.confirm_page_products(
            "shop", [claim(product(2, name="Page"), f"v{i}") for i in range(2)], 2, T0
        )
        page = await store.product("shop", "sku-002")
        await store.put_products("shop", [product(2)])
        # ... and pages cannot take it back.
        await store.confirm_page_products(
            "shop", [claim(product(2, name="Page"), f"w{i}") for i in range(9)], 2, T0 + 5
        )
        return [written, kept, page and page.source, await store.product("shop", "sku-002")]

    written, kept, page_source, site_product = with_store(store_url, body)
    assert written == []
    assert kept == product(1)
    assert page_source == "page"
    assert site_product == product(2)


def test_unconfirmed_descriptions_are_forgotten_after_their_time(store_url: str) -> None:
    described = product(7)
    month = 31 * 86_400_000

    async def body(store: Store) -> list[str]:
        await store.confirm_page_products("shop", [claim(described, "v1")], 2, T0)
        # A month later the first sighting is gone: one more visitor is not enough.
        late = await store.confirm_page_products("shop", [claim(described, "v2")], 2, T0 + month)
        assert late == []
        return await store.confirm_page_products(
            "shop", [claim(described, "v3")], 2, T0 + month + 1
        )

    assert with_store(store_url, body) == ["sku-007"]
