"""Campaign and customer lists as files: CSV or NDJSON, read line by line, every mistake
named by its line. The API and the command line read them the same way.

Contact ids: CSV with the id in the first column (a header row ``id`` or ``contact`` is
skipped), or NDJSON of ``"id"`` strings or ``{"id": …}`` objects. Contacts: NDJSON of
``{"id": …, "attributes": {…}}``, or CSV with a header ``id,<attribute>,…`` whose cells are
read by each attribute's declared type (empty: not set).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import msgspec

from .config import AttributeType
from .errors import BadRequest
from .identity import MAX_CONTACT_ID, check_attributes

__all__ = ["Format", "ImportedContact", "contact_ids", "contacts", "format_of"]

Format = Literal["csv", "ndjson"]


class ImportedContact(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    attributes: dict[str, Any] = {}


def format_of(name: str) -> Format:
    """The format a file name or content type says: CSV, else NDJSON."""
    return "csv" if name.endswith(".csv") or "csv" in name else "ndjson"


def _lines(text: str, kind: Format) -> Iterator[tuple[int, Any]]:
    """(line number, parsed row) for every non-blank line."""
    if kind == "csv":
        rows = csv.reader(io.StringIO(text, newline=""))
        try:
            for number, row in enumerate(rows, start=1):
                if any(cell.strip() for cell in row):
                    yield number, row
        except csv.Error as err:
            raise BadRequest(f"line {rows.line_num}: expected a CSV row ({err})") from None
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                yield number, msgspec.json.decode(line)
            except msgspec.DecodeError as err:
                raise BadRequest(f"line {number}: expected one JSON value ({err})") from None


def _id(value: Any, number: int) -> str:
    if not isinstance(value, str) or not 0 < len(value.strip()) <= MAX_CONTACT_ID:
        raise BadRequest(
            f"line {number}: expected a contact id of 1 to {MAX_CONTACT_ID} characters"
        )
    return value.strip()


def contact_ids(text: str, kind: Format) -> list[str]:
    """The contact ids of a campaign list, in order."""
    ids = []
    for number, row in _lines(text, kind):
        if kind == "csv":
            if number == 1 and row[0].strip().lower() in ("id", "contact"):
                continue
            ids.append(_id(row[0], number))
        else:
            ids.append(_id(row.get("id") if isinstance(row, dict) else row, number))
    return ids


def _cell(kind: AttributeType, text: str, where: str) -> Any:
    text = text.strip()
    if text == "":
        return None
    if kind == "string":
        return text
    if kind == "boolean":
        if text.lower() in ("true", "yes", "1"):
            return True
        if text.lower() in ("false", "no", "0"):
            return False
        raise BadRequest(f"{where}: expected true or false, got {text!r}")
    try:
        number = float(text)
    except ValueError:
        raise BadRequest(f"{where}: expected a number, got {text!r}") from None
    return int(number) if number.is_integer() and "." not in text else number


def contacts(
    text: str, kind: Format, declared: Mapping[str, AttributeType]
) -> list[ImportedContact]:
    """The contacts of a customer list, their attributes checked against ``declared``."""
    out: list[ImportedContact] = []
    header: list[str] = []
    for number, row in _lines(text, kind):
        if kind == "csv":
            if not header:
                header = [cell.strip() for cell in row]
                if header[0].lower() != "id":
                    raise BadRequest("line 1: expected a header row starting with id")
                for name in header[1:]:
                    check_attributes(declared, {name: None}, "line 1")
                continue
            values = {
                name: _cell(declared[name], cell, f"line {number}: {name}")
                for name, cell in zip(header[1:], row[1:], strict=False)
            }
            contact = ImportedContact(_id(row[0], number), values)
        else:
            try:
                contact = msgspec.convert(row, ImportedContact)
            except msgspec.ValidationError as err:
                raise BadRequest(f"line {number}: {err}") from None
            _id(contact.id, number)
        check_attributes(declared, contact.attributes, f"line {number}: attributes")
        out.append(contact)
    return out
