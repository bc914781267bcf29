"""``sitecue catalog import``: every bad line printed as file:line: field: expected …,
nothing stored then; a good file stored in batches of 1000, on either engine, and stored
again harmlessly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sitecue.cli import main
from sitecue.store import Product, Store
from stores import with_store


@pytest.fixture
def shop_with_catalog(env: dict[str, str]) -> Path:
    shop = Path(env["SITECUE_CONFIG_DIR"]) / "sites" / "shop.json"
    config = json.loads(shop.read_text())
    config["catalog"] = {"fields": {"brand": "string"}}
    shop.write_text(json.dumps(config))
    return shop


def _line(i: int, **changes: Any) -> str:
    fields = {"id": f"p-{i:05d}", "name": f"Product {i}", "url": f"https://shop.example/p/{i}"}
    return json.dumps({**fields, "price": i % 50, "category": f"c{i % 4}", **changes})


def test_a_file_is_stored_in_batches_and_again_replaces_the_same_products(
    shop_with_catalog: Path,
    tmp_path: Path,
    store_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # --db is kept in the environment for the command's run: restored afterwards.
    monkeypatch.setenv("SITECUE_DB", store_url)
    products = tmp_path / "products.ndjson"
    products.write_text("\n".join(_line(i) for i in range(2500)) + "\n")
    command = ["catalog", "import", str(products), "--site", "shop", "--db", store_url]
    assert main(command) == 0
    assert capsys.readouterr().out == "imported 2500 product(s) into shop in 3 batch(es)\n"
    products.write_text("\n".join(_line(i, brand="Acme") for i in range(2500)) + "\n")
    assert main(command) == 0
    assert "imported 2500 product(s)" in capsys.readouterr().out

    async def held(store: Store) -> tuple[int, Product | None]:
        return len(await store.all_products("shop")), await store.product("shop", "p-00042")

    count, product = with_store(store_url, held)
    assert count == 2500
    assert product is not None and product.extra == {"brand": "Acme"} and product.price == 42.0


def test_every_bad_line_is_named_and_nothing_is_stored(
    shop_with_catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    products = tmp_path / "products.csv"
    products.write_bytes(
        b"id,name,url,price,in_stock,colour\n"
        b"ok-1,Fine,https://shop.example/1,1,yes,\n"
        b"bad 2,Bad,https://shop.example/2,1,yes,\n"
        b"ok-3,,ftp://shop.example/3,nan,maybe,\n"
    )
    assert main(["catalog", "import", str(products), "--site", "shop"]) == 1
    err = capsys.readouterr().err
    assert f"{products}:1: colour: expected a column among id, name, url" in err
    assert "1 mistake(s) found; nothing imported" in err
    products.write_bytes(products.read_bytes().replace(b",colour", b""))
    assert main(["catalog", "import", str(products), "--site", "shop"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{products}:3: id: expected 1 to 64 letters, digits and _ . : / -, starting with a"
        " letter or digit, got 'bad 2'",
        f"{products}:4: name: expected a name of 1 to 200 characters, without control"
        " characters (it is required)",
        f"{products}:4: url: expected an absolute http(s) URL of at most 2048 characters,"
        " got 'ftp://shop.example/3'",
        f"{products}:4: price: expected a finite number from 0 to 1000000000, or null, got 'nan'",
        f"{products}:4: in_stock: expected true or false, got 'maybe'",
        "5 mistake(s) found; nothing imported",
    ]
    # Bytes that are not UTF-8: every such line, by its number.
    products.write_bytes(
        b"id,name,url\na,\xe9t\xe9,https://s.example\nb,ok,https://s.example\nc,\xff,x\n"
    )
    assert main(["catalog", "import", str(products), "--site", "shop"]) == 1
    err = capsys.readouterr().err
    assert f"{products}:2: expected UTF-8 text, got the byte 0xe9" in err
    assert f"{products}:4: expected UTF-8 text, got the byte 0xff" in err

    async def count(store: Store) -> int:
        return len(await store.all_products("shop"))

    assert with_store(f"sqlite:///{tmp_path / 'data' / 'sitecue.db'}", count) == 0


def test_ndjson_lines_that_are_not_products_are_named(
    shop_with_catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    products = tmp_path / "products.jsonl"
    products.write_text(
        _line(1) + "\n"
        + '{"id": "p-2", "name": "N", "url": "https://s.example", "price": NaN}\n'
        + '["p-3"]\n'
        + _line(4, price=1e400).replace("inf", "1e400").replace("Infinity", "1e400") + "\n"
        + _line(1, name="again") + "\n"
        + '{"id": "p-6", "name": "N", "url": "https://s.example", "brand": 7}\n'
    )  # fmt: skip
    assert main(["catalog", "import", str(products), "--site", "shop"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{products}:2: expected one JSON object")
    assert err[1] == f"{products}:3: expected a JSON object of the product's fields"
    assert err[2].startswith(f"{products}:4: expected one JSON object")
    assert err[3] == f"{products}:5: id: expected each id once; 'p-00001' is also on line 1"
    assert err[4].startswith(f"{products}:6: brand: expected a string of at most 256")


def test_a_site_without_a_catalog_is_refused(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    products = tmp_path / "products.csv"
    products.write_text("id,name,url\n")
    assert main(["catalog", "import", str(products), "--site", "news"]) == 2
    assert "--site: site 'news' has no catalog section in its config" in capsys.readouterr().err
    assert main(["catalog", "import", str(products), "--site", "nope"]) == 2
    assert "--site: no site named nope" in capsys.readouterr().err


def test_a_file_of_no_known_format_is_refused_unless_named(
    shop_with_catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = tmp_path / "products.txt"
    listed.write_text("id,name,url\n")
    assert main(["catalog", "import", str(listed), "--site", "shop"]) == 2
    assert "expected a file ending in .csv" in capsys.readouterr().err
    assert main(["catalog", "import", str(listed), "--site", "shop", "--format", "csv"]) == 0
    assert "imported 0 product(s)" in capsys.readouterr().out
