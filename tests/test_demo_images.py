"""The demo shop's pictures: made by a seeded script from the catalogue, no downloads; the
committed files are exactly what the script writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

from sitecue.demo_images import IMAGES, svg, write_images
from sitecue.demo_shop import CATALOG, read_catalog
from sites import CONFIG_DIR

SVG = "{http://www.w3.org/2000/svg}"


def test_the_committed_pictures_are_what_the_script_writes(tmp_path: Path) -> None:
    written = write_images(CONFIG_DIR, tmp_path)
    committed = sorted(p.name for p in (CONFIG_DIR / IMAGES).iterdir())
    assert sorted(p.name for p in written) == committed
    for file in written:
        assert file.read_bytes() == (CONFIG_DIR / IMAGES / file.name).read_bytes(), file.name


def test_the_script_runs_as_a_module_and_writes_the_same_again(tmp_path: Path) -> None:
    config = tmp_path / "config"
    (config / CATALOG).parent.mkdir(parents=True)
    (config / CATALOG).write_bytes((CONFIG_DIR / CATALOG).read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "sitecue.demo_images", str(config)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.startswith("wrote 36 pictures")
    for file in (config / IMAGES).iterdir():
        assert file.read_bytes() == (CONFIG_DIR / IMAGES / file.name).read_bytes()


def test_each_picture_is_an_svg_named_for_its_product_and_pictures_differ() -> None:
    products = read_catalog(CONFIG_DIR / CATALOG)
    drawn = [svg(p) for p in products]
    assert len(set(drawn)) == len(products)
    for product, text in zip(products, drawn, strict=True):
        root = ElementTree.fromstring(text)
        assert root.tag == f"{SVG}svg" and root.get("role") == "img"
        assert root.findtext(f"{SVG}title") == product.name
        assert "<script" not in text and "href" not in text  # a picture, nothing active
