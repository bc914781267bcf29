"""The demo shop's catalogue and the pages made from it: the front page, a page per category
and per product (``/shop/products/<id>``), rendered from the templates under
``config/demo/shop/`` and the products of ``config/demo/catalog/shop.ndjson``. The cart and
the checkout are plain pages (the cart lives in the browser, see ``shop.js``).

Each product page describes its product to sitecue (``sitecue('set', {product: {...}})``)
and its add-to-cart button carries the product (``data-sc-product``), as a real shop's
pages would; ``sitecue demo`` imports the same catalogue into the store at start (see
:func:`sitecue.demo.build_demo_app`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import jinja2
import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from .store.catalog import Product

__all__ = ["CATALOG", "SHOP", "ShopProduct", "categories", "read_catalog", "shop_routes"]

SHOP = "shop"  # the site the demo shop's pages are of
CATALOG = Path("demo/catalog/shop.ndjson")  # under the config directory
PAGES = Path("demo/shop")  # its templates, under the config directory

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$"  # catalog.PRODUCT_ID


class ShopProduct(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One line of the demo catalogue, as ``sitecue catalog import`` reads it: the product's
    own fields and the one extra field the shop declares (``catalog.fields``: ``brand``)."""

    id: Annotated[str, msgspec.Meta(pattern=_ID)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    url: Annotated[str, msgspec.Meta(pattern=r"^https://shop\.example/shop/products/")]
    image: Annotated[str, msgspec.Meta(pattern=r"^/shop/images/[a-z0-9-]+\.svg$")]
    price: Annotated[float, msgspec.Meta(ge=0, le=1e9)]
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    in_stock: bool
    brand: Annotated[str, msgspec.Meta(max_length=256)]

    def product(self, now: int = 0) -> Product:
        """The product as the store keeps it (source ``site``)."""
        return Product(
            self.id, self.name, self.url, self.image, self.price, self.category,
            self.in_stock, {"brand": self.brand}, "site", now,
        )  # fmt: skip

    def described(self) -> dict[str, object]:
        """What its page tells sitecue (``sitecue('set', {product: ...})``): the product as
        the page shows it; the server takes the page's own address for its url."""
        return {
            "id": self.id, "name": self.name, "image": self.image, "price": self.price,
            "category": self.category, "in_stock": self.in_stock, "brand": self.brand,
        }  # fmt: skip


_line = msgspec.json.Decoder(ShopProduct)


def read_catalog(path: Path) -> list[ShopProduct]:
    """The products of an NDJSON catalogue, in file order; a bad line raises ValueError
    naming the file, the line and msgspec's reason."""
    products = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            products.append(_line.decode(line))
        except msgspec.ValidationError as err:
            raise ValueError(f"{path}:{number}: {err}") from err
    return products


def categories(products: Sequence[ShopProduct]) -> list[str]:
    """The categories, in the order the catalogue first names them."""
    return list(dict.fromkeys(p.category for p in products))


def shop_routes(config_dir: Path) -> list[Route]:
    """The routes of the shop's catalogue pages: the front page, the categories' and the
    products'. The catalogue and the templates are read once, when the demo starts; a config
    directory without the demo catalogue (an operator's own, run as a demo) has none."""
    if not (config_dir / CATALOG).is_file():
        return []
    products = read_catalog(config_dir / CATALOG)
    by_id = {p.id: p for p in products}
    names = categories(products)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(config_dir / PAGES),
        autoescape=True,  # product names reach the page as text, never as markup
        undefined=jinja2.StrictUndefined,
    )
    front, category, product = (
        env.get_template(n) for n in ("index.html", "category.html", "product.html")
    )

    def not_found(what: str) -> HTMLResponse:
        return HTMLResponse(f"No such {what}", status_code=404)

    async def front_page(request: Request) -> HTMLResponse:
        """Every category, and its first product in stock as a pick."""
        picks = [next(p for p in products if p.category == c and p.in_stock) for c in names]
        return HTMLResponse(front.render(categories=names, picks=picks))

    async def category_page(request: Request) -> HTMLResponse:
        name = request.path_params["name"]
        if name not in names:
            return not_found("category")
        listed = [p for p in products if p.category == name]
        return HTMLResponse(category.render(categories=names, category=name, products=listed))

    async def product_page(request: Request) -> HTMLResponse:
        found = by_id.get(request.path_params["id"])
        if found is None:
            return not_found("product")
        return HTMLResponse(
            product.render(categories=names, product=found, described=found.described())
        )

    return [
        Route("/shop/", front_page),
        Route("/shop/index.html", front_page),
        Route("/shop/category/{name}", category_page),
        Route("/shop/products/{id}", product_page),
    ]
