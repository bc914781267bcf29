"""``sitecue catalog import``: a site's products from a file, on the same settings as the
server.

sitecue catalog import products.csv --site shop            # or .ndjson / .jsonl
sitecue catalog import feed.txt --site shop --format csv --db postgresql://…

Every line is checked before any is stored, and every mistake printed, each as
``file:line: field: expected …``; then the products are stored in transactions of 1000.
Importing a file again replaces the same products with what it says (by id).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .bulk import EXTENSIONS, format_of_path
from .catalog import BATCH, store_products
from .catalog_files import read_products
from .rules import load_sites
from .runtime import goals_of
from .settings import database_url

if TYPE_CHECKING:
    from .bulk import Format

__all__ = ["add_catalog_commands", "run_catalog"]


def add_catalog_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``catalog`` command and its subcommands, on ``sitecue``'s parser."""
    catalog = commands.add_parser("catalog", help="the products of a site")
    sub = catalog.add_subparsers(dest="catalog_command", required=True)
    load = sub.add_parser("import", help="import products: every line checked, then stored")
    load.add_argument("file", help="NDJSON of product objects, or CSV id,name,url,…")
    load.add_argument("--site", required=True)
    load.add_argument("--db", help="database URL (default: as sitecue serve and demo)")
    load.add_argument("--format", choices=("csv", "ndjson"), help="default: the extension")


def run_catalog(args: argparse.Namespace) -> int:
    """Run ``sitecue catalog import``; its exit status (1: mistakes, 2: a bad argument)."""
    return _import(args.file, args.site, args.db, args.format)


def _import(file: str, site_name: str, db: str | None, chosen: str | None) -> int:
    from .store import open_store

    config_dir = Path(os.environ.get("SITECUE_CONFIG_DIR", "config"))
    sites = load_sites(config_dir)
    site = sites.get(site_name)
    if site is None:
        print(f"--site: no site named {site_name} in {config_dir / 'sites'}", file=sys.stderr)
        return 2
    catalog = site.config.catalog
    if catalog is None:
        print(f"--site: site '{site_name}' has no catalog section in its config", file=sys.stderr)
        return 2
    kind: Format | None = "csv" if chosen == "csv" else "ndjson" if chosen else None
    kind = kind or format_of_path(file)
    if kind is None:
        accepted = ", ".join(EXTENSIONS)
        print(f"{file}: expected a file ending in {accepted}, or --format", file=sys.stderr)
        return 2
    try:
        data = Path(file).read_bytes()
    except OSError as err:
        print(f"{file}: cannot be read ({err.strerror})", file=sys.stderr)
        return 2
    products, problems = read_products(data, kind, catalog, time.time_ns() // 1_000_000)
    if problems:
        for p in problems:
            print(
                f"{file}:{p.line}: {p.field + ': ' if p.field else ''}{p.expected}", file=sys.stderr
            )
        print(f"{len(problems)} mistake(s) found; nothing imported", file=sys.stderr)
        return 1

    async def store_them() -> int:
        store = await open_store(database_url(db), goals_of(sites))
        try:
            return await store_products(store, site_name, products, BATCH)
        finally:
            await store.close()

    batches = asyncio.run(store_them())
    print(f"imported {len(products)} product(s) into {site_name} in {batches} batch(es)")
    return 0
