"""Product files: a site's catalogue as NDJSON (one product object a line) or CSV (a header
row ``id,name,url,image,price,category,in_stock,<declared fields>``, in any order, of which
``id``, ``name`` and ``url`` are required). ``POST /v1/catalog/import`` and ``sitecue
catalog import`` read them the same way, and report every mistake, each with its line:

    products.csv:7: price: expected a finite number from 0 to 1000000000, or null, got '12,50'

A file is UTF-8 (an Excel BOM is allowed): a line that is not is refused, never stored as
something else; so is a number JSON cannot carry (``NaN``, ``1e400``), a cell of the wrong
type, a field the site does not declare, and an id twice in one file (which of the two
was meant?).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from .catalog import FIELDS, check_product
from .store.catalog import Product

if TYPE_CHECKING:
    from .bulk import Format
    from .config import AttributeType, Catalog

__all__ = ["LineProblem", "read_products"]

_BOM = b"\xef\xbb\xbf"
# Digits as JSON writes them: not Python's extras (nan, inf, 1_000), which float() takes.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")
_decode = msgspec.json.Decoder().decode


class LineProblem(NamedTuple):
    """One mistake in a file: its line (1 is the first), the field, what was expected."""

    line: int
    field: str
    expected: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field + ': ' if self.field else ''}{self.expected}"


def _utf8_lines(data: bytes) -> tuple[str, list[LineProblem]]:
    """The text, or every line that is not UTF-8 (each with its first bad byte)."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    problems = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as err:
            byte = f"0x{line[err.start]:02x}"
            problems.append(LineProblem(number, "", f"expected UTF-8 text, got the byte {byte}"))
    return "", problems


def _ndjson(text: str) -> Iterator[tuple[int, Any, LineProblem | None]]:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, _decode(line), None
        except msgspec.DecodeError as err:  # NaN, Infinity and 1e400 too: not JSON numbers
            yield number, None, LineProblem(number, "", f"expected one JSON object ({err})")
        except RecursionError:
            yield number, None, LineProblem(number, "", "expected JSON nested less deeply")


def _typed(kind: str, cell: str) -> Any:
    """A CSV cell as the value of its field's type; a cell that is not one stays text, so
    the check names it (``got '12,50'``). Empty is null."""
    text = cell.strip()
    if text == "":
        return None
    if kind == "number":
        if not _NUMBER.fullmatch(text):
            return text
        return int(text) if text.lstrip("+-").isdigit() else float(text)
    if kind == "boolean":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        return text
    return cell  # a string as it is (a name may end with a space only if the file says so)


_KINDS = {"price": "number", "in_stock": "boolean"}


def _csv(
    text: str, declared: dict[str, AttributeType]
) -> Iterator[tuple[int, Any, LineProblem | None]]:
    rows = csv.reader(io.StringIO(text, newline=""))
    header: list[str] = []
    line = 1
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as err:
            yield line, None, LineProblem(line, "", f"expected a CSV row ({err})")
            return
        start, line = line, rows.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if not header:
            header = [cell.strip() for cell in row]
            problems = [
                LineProblem(
                    start, name[:64], f"expected a column among {', '.join([*FIELDS, *declared])}"
                )
                for name in header
                if name not in FIELDS and name not in declared
            ]
            problems += [
                LineProblem(start, name, "expected each column once")
                for i, name in enumerate(header)
                if name in header[:i]
            ]
            problems += [
                LineProblem(start, name, "expected this column (it is required)")
                for name in ("id", "name", "url")
                if name not in header
            ]
            for problem in problems:
                yield start, None, problem
            if problems:
                return
            continue
        # Empty cells past the header are a spreadsheet's trailing commas; text there is not.
        if any(cell.strip() for cell in row[len(header) :]):
            yield start, None, LineProblem(start, "", f"expected at most {len(header)} cells")
            continue
        fields: dict[str, Any] = {}
        for name, cell in zip(header, row, strict=False):
            value = _typed(_KINDS.get(name) or declared.get(name, "string"), cell)
            if value is not None:
                fields[name] = value
        yield start, fields, None


def read_products(
    data: bytes, kind: Format, catalog: Catalog, now: int
) -> tuple[list[Product], list[LineProblem]]:
    """The products of a file, and every problem found in it (each with its line); the
    products are only of use when there is no problem."""
    text, problems = _utf8_lines(data)
    if problems:
        return [], problems
    rows = _ndjson(text) if kind == "ndjson" else _csv(text, dict(catalog.fields))
    products: list[Product] = []
    lines: dict[str, int] = {}
    for number, fields, problem in rows:
        if problem is not None:
            problems.append(problem)
            continue
        product, found = check_product(catalog, fields, None, now)
        problems += [LineProblem(number, p.path, p.expected) for p in found]
        if product is None:
            continue
        if product.id in lines:
            where = f"line {lines[product.id]}"
            problems.append(
                LineProblem(
                    number, "id", f"expected each id once; {product.id!r} is also on {where}"
                )
            )
            continue
        lines[product.id] = number
        products.append(product)
    return products, problems
