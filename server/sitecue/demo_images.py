"""The demo shop's product pictures: one small SVG file a product, drawn from its id and
category (a fixed seed per product), so the demo downloads nothing and the same catalogue
always gives the same files. They are committed under ``config/demo/shop/images/``;
``python -m sitecue.demo_images`` writes them again (tests/test_demo_images.py checks that
it writes exactly what is committed)."""

from __future__ import annotations

import random
import sys
from html import escape
from pathlib import Path

from .demo_shop import CATALOG, ShopProduct, read_catalog

__all__ = ["IMAGES", "svg", "write_images"]

IMAGES = Path("demo/shop/images")  # under the config directory, served as /shop/images/
SEED = 19

# Each category's picture: a shape (SVG path data in a 200 x 150 box) and its base hue.
_SHAPES = {
    "footwear": (
        "M46 40h38v44c10 4 30 8 52 14 16 4 22 12 22 22v8H42v-8l4-8zM42 122h116v10H42z",
        28,
    ),
    "jackets": (
        "M78 24l22 12 22-12 34 18 14 40-20 8-8-22v76H58V68l-8 22-20-8 14-40z",
        210,
    ),
    "packs": (
        "M72 34c0-10 8-16 28-16s28 6 28 16v4c14 4 22 14 22 28v66c0 6-4 10-10 10H60"
        "c-6 0-10-4-10-10V66c0-14 8-24 22-28zM70 92h60v30H70z",
        140,
    ),
    "camping": ("M100 20l66 112H34zM100 62l-22 70h44z", 100),
    "kitchen": (
        "M40 58h120v10c0 34-20 58-60 58S40 102 40 68zM26 58h14v8H26zM160 58h14v8h-14z"
        "M70 30c0-6 8-6 8-12M96 30c0-6 8-6 8-12M122 30c0-6 8-6 8-12",
        0,
    ),
    "accessories": (
        "M100 28a44 44 0 1 0 0.1 0zM100 44a28 28 0 1 1-0.1 0zM96 48h8v52h-8z",
        260,
    ),
}


def svg(product: ShopProduct) -> str:
    """The picture of one product: its category's shape on hills of a colour of its own,
    named for screen readers by its title."""
    rng = random.Random(f"{SEED}:{product.id}")
    path, hue = _SHAPES.get(product.category, _SHAPES["accessories"])
    hue = (hue + rng.randrange(-18, 19)) % 360
    sky = f"hsl({hue} 45% 92%)"
    hills = []
    for layer in range(3):
        left, right = rng.randrange(60, 120), rng.randrange(60, 120)
        peak_x, peak_y = rng.randrange(40, 160), rng.randrange(40, 90)
        shade, drop = 82 - 10 * layer, 20 * layer
        hills.append(
            f'<path d="M0 {left + drop}L{peak_x} {peak_y + 15 * layer}L200 {right + drop}'
            f'V150H0z" fill="hsl({hue} 30% {shade}%)"/>'
        )
    ink = f"hsl({(hue + 180) % 360} 55% 32%)"
    name = escape(product.name)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 150" width="400" height="300"'
        f' role="img" aria-label="{name}">'
        f"<title>{name}</title>"
        f'<rect width="200" height="150" fill="{sky}"/>'
        + "".join(hills)
        + f'<path d="{path}" fill="{ink}" stroke="#fff" stroke-width="2"'
        ' stroke-linejoin="round" fill-rule="evenodd"/>'
        "</svg>\n"
    )


def write_images(config_dir: Path, out: Path | None = None) -> list[Path]:
    """Write every product's picture of the demo catalogue under ``config_dir`` into
    ``out`` (by default the directory the demo serves them from); the files written."""
    target = out if out is not None else config_dir / IMAGES
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for product in read_catalog(config_dir / CATALOG):
        file = target / f"{product.id}.svg"
        file.write_text(svg(product), encoding="utf-8")
        written.append(file)
    return written


if __name__ == "__main__":  # python -m sitecue.demo_images [CONFIG_DIR]
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("config")
    print(f"wrote {len(write_images(root))} pictures under {root / IMAGES}")
