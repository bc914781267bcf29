"""Run a coroutine against a freshly opened store, for the tests of both engines."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sitecue.store import Store, open_store


def with_store(url: str, body: Callable[[Store], Awaitable[Any]]) -> Any:
    """``body(store)`` on the store at ``url``, closed afterwards; its result."""

    async def main() -> Any:
        store = await open_store(url)
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())
