"""/v1/catalog through the real app: products put, read, listed by cursor, deleted and
imported (NDJSON, CSV) with the site's admin key only; every mistake a 4xx naming the
field (and in a file its line); a site without a catalogue says so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN, new_key
from sitecue.app import build_app
from sitecue.settings import Settings

LAMP = {
    "name": "Desk lamp",
    "url": "https://shop.example/p/lamp",
    "image": "/img/lamp.svg",
    "price": 39.5,
    "category": "lighting",
    "brand": "Acme",
}


class Admin:
    def __init__(self, client: TestClient, key: str) -> None:
        self.client, self.key = client, key

    def __call__(self, method: str, path: str, site: str = "shop", **kw: Any) -> Any:
        headers = {"authorization": f"Bearer {self.key}", **kw.pop("headers", {})}
        params = {"site": site, **kw.pop("params", {})}
        return self.client.request(method, path, params=params, headers=headers, **kw)


@pytest.fixture
def admin(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> Iterator[Admin]:
    shop = Path(env["SITECUE_CONFIG_DIR"]) / "sites" / "shop.json"
    config = json.loads(shop.read_text())
    config["catalog"] = {"fields": {"brand": "string", "rating": "number"}}
    shop.write_text(json.dumps(config))
    key = new_key(capsys, "shop", "news")
    with TestClient(build_app(Settings.load(env=env)), base_url=ORIGIN) as client:
        yield Admin(client, key)


def test_a_product_is_put_read_replaced_and_deleted(admin: Admin) -> None:
    put = admin("PUT", "/v1/catalog/lamp-1", json=LAMP)
    assert put.status_code == 200, put.text
    shown = put.json()
    assert shown["extra"] == {"brand": "Acme"} and shown["source"] == "site"
    assert shown["in_stock"] is True and shown["updated"] > 0
    assert admin("GET", "/v1/catalog/lamp-1").json() == shown
    # PUT replaces the whole product: what it leaves out is gone.
    admin("PUT", "/v1/catalog/lamp-1", json={"name": "Lamp", "url": LAMP["url"]})
    again = admin("GET", "/v1/catalog/lamp-1").json()
    assert (again["name"], again["price"], again["extra"]) == ("Lamp", None, {})
    # Ids may hold a slash.
    assert admin("PUT", "/v1/catalog/cat/lamps:2", json=LAMP).status_code == 200
    assert admin("GET", "/v1/catalog/cat/lamps:2").json()["id"] == "cat/lamps:2"
    assert admin("DELETE", "/v1/catalog/lamp-1").status_code == 204
    gone = admin("GET", "/v1/catalog/lamp-1")
    assert gone.status_code == 404 and "no product 'lamp-1'" in gone.json()["error"]
    assert admin("DELETE", "/v1/catalog/lamp-1").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({**LAMP, "price": -1}, 400, "body: $.price: expected a finite number"),
        ({**LAMP, "price": "9"}, 400, "body: $.price"),
        ({**LAMP, "url": "javascript:alert(1)"}, 400, "body: $.url: expected an absolute"),
        ({**LAMP, "colour": "red"}, 400, "body: $.colour: expected one of the fields"),
        ({**LAMP, "rating": "five"}, 400, "body: $.rating: expected a finite number"),
        ({"url": LAMP["url"]}, 400, "body: $.name: expected a name of 1 to 200"),
        ([LAMP], 400, "body: Expected `object`, got `array`"),
        (b'{"name": "L", "url": "https://s.example", "price": NaN}', 400, "body: expected a JSON"),
        (b'{"name": "L", "url": "https://s.example", "price": 1e400}', 400, "body: "),
        (b'{"name": "\xff"}', 400, "body: expected UTF-8"),
        (b'{"brand": ' + b"[" * 60_000, 400, "body: expected JSON nested less deeply"),
        (b'{"name": "' + b"x" * 70_000 + b'"}', 413, "body: expected at most 65536 bytes"),
    ],
)
def test_a_bad_product_is_a_4xx_naming_the_field(
    admin: Admin, body: Any, status: int, named: str
) -> None:
    kw = {"json": body} if not isinstance(body, bytes) else {"content": body}
    answer = admin("PUT", "/v1/catalog/lamp-1", **kw)
    assert answer.status_code == status, answer.text
    assert named in answer.json()["error"]


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/v1/catalog/-bad", "id: expected a product id"),
        ("/v1/catalog/" + "a" * 65, "id: expected a product id"),
        ("/v1/catalog/sku%00", "id: expected a product id"),
        ("/v1/catalog/", "id: expected a product id"),
    ],
)
def test_a_bad_id_in_the_path_is_a_400(admin: Admin, path: str, named: str) -> None:
    answer = admin("GET", path)
    assert answer.status_code == 400 and named in answer.json()["error"]
    # A newline ends Starlette's path match: no route, a 404 (never a product "sku\n").
    assert admin("GET", "/v1/catalog/sku%0A").status_code == 404


def test_only_a_key_for_the_site_may_touch_its_catalog(
    admin: Admin, capsys: pytest.CaptureFixture[str]
) -> None:
    other = new_key(capsys, "news")
    headers = {"authorization": f"Bearer {other}"}
    for method in ("GET", "PUT", "DELETE"):
        answer = admin(method, "/v1/catalog/lamp-1", json=LAMP, headers=headers)
        assert answer.status_code == 403, answer.text
    assert admin("GET", "/v1/catalog", headers=headers).status_code == 403
    assert admin("GET", "/v1/catalog", headers={"authorization": ""}).status_code == 401
    assert admin("GET", "/v1/catalog", site="").status_code == 400


def test_a_site_without_a_catalog_says_so(admin: Admin) -> None:
    for method, path in (("GET", "/v1/catalog/x"), ("GET", "/v1/catalog")):
        answer = admin(method, path, site="news")
        assert answer.status_code == 404
        assert answer.json()["error"] == "catalog: site 'news' has no catalog section in its config"


def test_the_list_pages_by_cursor_and_narrows_by_category(admin: Admin) -> None:
    for i in range(7):
        body = {**LAMP, "category": "odd" if i % 2 else "even"}
        assert admin("PUT", f"/v1/catalog/p{i}", json=body).status_code == 200
    seen, after = [], None
    while True:
        params = {"limit": "3", **({"after": after} if after else {})}
        page = admin("GET", "/v1/catalog", params=params).json()
        seen += [p["id"] for p in page["products"]]
        after = page["next"]
        if after is None:
            break
    assert seen == [f"p{i}" for i in range(7)]
    odd = admin("GET", "/v1/catalog", params={"category": "odd"}).json()
    assert [p["id"] for p in odd["products"]] == ["p1", "p3", "p5"] and odd["next"] is None
    for params, named in (
        ({"limit": "0"}, "limit: expected a whole number from 1 to 1000"),
        ({"limit": "x"}, "limit: expected a whole number"),
        ({"after": "bad id"}, "after: expected a product id"),
        ({"category": "c" * 65}, "category: expected 1 to 64"),
    ):
        answer = admin("GET", "/v1/catalog", params=params)
        assert answer.status_code == 400 and named in answer.json()["error"]


NDJSON = (
    b'{"id": "a-1", "name": "A", "url": "https://shop.example/a", "price": 5, "brand": "X"}\n'
    b"\n"
    b'{"id": "b-1", "name": "B", "url": "https://shop.example/b", "in_stock": false}\n'
)
CSV = (
    b"\xef\xbb\xbfid,name,url,price,in_stock,brand,rating\r\n"
    b'a-1,"A, the first",https://shop.example/a,5.5,yes,X,4\r\n'
    b"b-1,B,https://shop.example/b,,no,,\r\n"
)


def test_an_import_stores_every_product_and_again_replaces_them(admin: Admin) -> None:
    for body, kind in ((NDJSON, "application/x-ndjson"), (CSV, "text/csv; charset=utf-8")):
        answer = admin("POST", "/v1/catalog/import", content=body, headers={"content-type": kind})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"imported": 2, "batches": 1}
    a = admin("GET", "/v1/catalog/a-1").json()
    assert (a["name"], a["price"], a["extra"]) == ("A, the first", 5.5, {"brand": "X", "rating": 4})
    b = admin("GET", "/v1/catalog/b-1").json()
    assert (b["in_stock"], b["price"], b["extra"]) == (False, None, {})


def test_a_bad_file_stores_nothing_and_names_every_line(admin: Admin) -> None:
    body = (
        b"id,name,url,price\n"
        b"ok-1,Fine,https://shop.example/ok,1\n"
        b"bad-1,Bad,https://shop.example/b,12\xff\n"
        b"bad-2,,https://shop.example/c,=HYPERLINK(1)\n"
    )
    answer = admin("POST", "/v1/catalog/import", content=body, headers={"content-type": "text/csv"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "body: line 3: expected UTF-8 text, got the byte 0xff"
    body = body.replace(b"12\xff", b"12,50")
    answer = admin("POST", "/v1/catalog/import", content=body, headers={"content-type": "text/csv"})
    error = answer.json()["error"]
    assert "line 3: expected at most 4 cells" in error
    assert "line 4: name: expected a name of 1 to 200 characters" in error
    assert (
        "line 4: price: expected a finite number from 0 to 1000000000, or null, got '=HYP" in error
    )
    assert admin("GET", "/v1/catalog/ok-1").status_code == 404  # nothing stored
    many = b"".join(b'{"id": "x%d", "price": -1}\n' % i for i in range(30))
    answer = admin(
        "POST", "/v1/catalog/import", content=many, headers={"content-type": "application/x-ndjson"}
    )
    assert answer.json()["error"].endswith("; and 70 more")  # 3 problems a line, 20 shown


def test_an_import_of_another_type_or_size_is_refused(admin: Admin) -> None:
    answer = admin("POST", "/v1/catalog/import", content=NDJSON, headers={"content-type": "x/y"})
    assert answer.status_code == 415 and "content-type: expected one of" in answer.json()["error"]
    huge = b" " * (8 * 1024 * 1024 + 1)
    answer = admin("POST", "/v1/catalog/import", content=huge, headers={"content-type": "text/csv"})
    assert answer.status_code == 413
