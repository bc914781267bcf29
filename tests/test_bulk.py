"""Customer and campaign lists: their format is what the file says, and a value that cannot
be stored as sent (a byte that is not UTF-8, a number JSON cannot carry) is refused with its
line."""

from __future__ import annotations

import pytest

from sitecue.bulk import contact_ids, contacts, format_of_path, format_of_type, text_of
from sitecue.config import AttributeType
from sitecue.errors import BadRequest

DECLARED: dict[str, AttributeType] = {"avg_order_value": "number", "loyalty_tier": "string"}


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("customers.csv", "csv"),
        ("EXPORT.CSV", "csv"),
        ("csv-exports/customers.ndjson", "ndjson"),
        ("csv/list.jsonl", "ndjson"),
        ("lists.csv/customers", None),
        ("csv-exports/customers", None),
        ("customers.csv.gz", None),
        ("customers.txt", None),
        ("customers_csv", None),
    ],
)
def test_a_file_s_format_is_its_extension(path: str, kind: str | None) -> None:
    assert format_of_path(path) == kind


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("text/csv", "csv"),
        ("Text/CSV; charset=utf-8", "csv"),
        ("application/x-ndjson", "ndjson"),
        ("application/x-ndjson; note=csv", "ndjson"),
        ("application/jsonl", "ndjson"),
        ("text/csv-schema", None),
        ("application/json", None),
        ("text/plain", None),
        ("", None),
    ],
)
def test_a_body_s_format_is_its_media_type(content_type: str, kind: str | None) -> None:
    assert format_of_type(content_type) == kind


def test_text_is_utf8_after_an_optional_bom_and_a_bad_byte_names_its_line() -> None:
    assert text_of("\ufeffid\nCafé\n".encode()) == "id\nCafé\n"
    with pytest.raises(BadRequest, match=r"^line 3: expected UTF-8 text, got the byte 0xe9$"):
        text_of(b"id\nc-1\nCaf\xe9\n")


@pytest.mark.parametrize("cell", ["nan", "NaN", "inf", "-Infinity", "1e400", "1_000", "0x10"])
def test_a_csv_number_json_cannot_carry_is_refused(cell: str) -> None:
    with pytest.raises(BadRequest) as refused:
        contacts(f"id,avg_order_value\nc-1,1\nc-2,{cell}\n", "csv", DECLARED)
    assert refused.value.message == (
        f"line 3: avg_order_value: expected a finite number, got '{cell}'"
    )


def test_csv_numbers_are_read_exactly() -> None:
    text = "id,avg_order_value\nc-1,87.5\nc-2,18446744073709551617\nc-3,-2\nc-4,1e3\n"
    values = [c.attributes["avg_order_value"] for c in contacts(text, "csv", DECLARED)]
    assert values == [87.5, 18446744073709551617, -2, 1000]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_ndjson_non_finite_numbers_are_refused_with_the_line(literal: str) -> None:
    text = '{"id": "c-1"}\n{"id": "c-2", "attributes": {"avg_order_value": ' + literal + "}}\n"
    with pytest.raises(BadRequest, match=r"^line 2: expected one JSON value"):
        contacts(text, "ndjson", DECLARED)


def test_a_deeply_nested_line_is_refused_with_its_number() -> None:
    with pytest.raises(BadRequest, match=r"^line 2: expected JSON nested less deeply$"):
        contact_ids('"c-1"\n' + "[" * 5000 + "]" * 5000 + "\n", "ndjson")
