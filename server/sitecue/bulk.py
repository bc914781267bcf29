"""Campaign and customer lists as files: CSV or NDJSON, read line by line, every mistake
named by its line. The API and the command line read them the same way.

Contact ids: CSV with the id in the first column (a header row ``id`` or ``contact`` is
skipped), or NDJSON of ``"id"`` strings or ``{"id": …}`` objects. Contacts: NDJSON of
``{"id": …, "attributes": {…}}``, or CSV with a header ``id,<attribute>,…`` whose cells are
read by each attribute's declared type (empty: not set).

The format is what the file says it is: its extension (``.csv``, ``.ndjson``, ``.jsonl``)
or its content type, never a guess. A file is UTF-8 (an Excel BOM is allowed); a byte that
is not, or a number that JSON cannot carry (``nan``, ``inf``), is refused with its line
rather than stored as something else.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import msgspec

from .config import AttributeType
from .errors import BadRequest
from .identity import MAX_CONTACT_ID, check_attributes

__all__ = [
    "EXTENSIONS",
    "MEDIA_TYPES",
    "Format",
    "ImportedContact",
    "contact_ids",
    "contacts",
    "format_of_path",
    "format_of_type",
    "text_of",
]

Format = Literal["csv", "ndjson"]
EXTENSIONS: dict[str, Format] = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}
MEDIA_TYPES: dict[str, Format] = {
    "text/csv": "csv",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
}
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_BOM = b"\xef\xbb\xbf"


class ImportedContact(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    attributes: dict[str, Any] = {}


def format_of_path(path: str) -> Format | None:
    """The format a file's extension names (``.csv``, ``.ndjson``, ``.jsonl``), else None:
    a folder called ``csv-exports`` says nothing about the file inside it."""
    dot = path.rfind(".")
    slash = max(path.rfind("/"), path.rfind("\\"))
    return EXTENSIONS.get(path[dot:].lower()) if dot > slash else None


def format_of_type(content_type: str) -> Format | None:
    """The format a ``Content-Type`` names (``text/csv; charset=utf-8``), else None."""
    return MEDIA_TYPES.get(content_type.split(";", 1)[0].strip().lower())


def text_of(data: bytes) -> str:
    """A file's bytes as text: UTF-8, after an optional BOM (spreadsheets write one). A byte
    that is not UTF-8 is refused with its line, never replaced, so an id or a name is
    stored as sent or not at all."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise BadRequest(
            f"line {line}: expected UTF-8 text, got the byte 0x{data[err.start]:02x}"
        ) from None


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
            except msgspec.DecodeError as err:  # NaN and Infinity too: they are not JSON
                raise BadRequest(f"line {number}: expected one JSON value ({err})") from None
            except RecursionError:
                raise BadRequest(f"line {number}: expected JSON nested less deeply") from None


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
    # Digits as JSON writes them: not Python's extras (nan, inf, 1_000), which would be
    # stored as null or as a number no JSON reader takes.
    number = float(text) if _NUMBER.fullmatch(text) else math.nan
    if not math.isfinite(number):
        raise BadRequest(f"{where}: expected a finite number, got {text!r}")
    if text.lstrip("+-").isdigit():
        return int(text)
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
