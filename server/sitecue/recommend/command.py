"""``sitecue recommend run [--site S]``: one run of the recommendations' job now, on the
node's config and database, printing what it did for each site with a catalog.

    sitecue recommend run --site shop
    shop: 1000000 events counted in 200 batches; lists changed (version 1); 41.2 s
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from ..rules import load_sites
from ..runtime import goals_of
from ..settings import database_url
from ..store import open_store
from .job import Outcome, run_sites

__all__ = ["run_command"]


def run_command(site: str | None, db: str | None) -> int:
    """Run the job for ``site`` (default: every site with a catalog); the exit status."""
    sites = load_sites(Path(os.environ.get("SITECUE_CONFIG_DIR", "config")))
    if site is not None and site not in sites:
        print(f"--site: no site named '{site}' is configured", file=sys.stderr)
        return 2
    if site is not None and sites[site].config.catalog is None:
        print(f"--site: site '{site}' has no catalog section to recommend from", file=sys.stderr)
        return 2

    async def run() -> list[Outcome]:
        store = await open_store(database_url(db), goals_of(sites))
        try:
            return await run_sites(store, sites, site)
        finally:
            await store.close()

    outcomes = asyncio.run(run())
    if not outcomes:
        print("no site has a catalog section: nothing to recommend from")
    for o in outcomes:
        if o.skipped is not None:
            print(f"{o.site}: skipped: {o.skipped}")
            continue
        lists = "changed" if o.changed else "unchanged"
        print(
            f"{o.site}: {o.events} events counted in {o.batches} batches;"
            f" lists {lists} (version {o.version}); {o.seconds:.1f} s"
        )
    return 0
