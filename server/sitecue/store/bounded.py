"""A store whose calls give up after a deadline, for the reads a decision may make.

A stopped database refuses at once, but one behind a dropped network link, or one that
hangs, answers nothing: a connection attempt waits out the pool's connect timeout (10 s),
a query forever. ``/v1/decide`` reads the store only to identify a visitor (an email
token or a claimed id) and to refresh a verified visitor's attributes, and either can be
put off without failing the decision, so those reads go through :func:`bounded`: each call
that has not answered within its deadline is cancelled and raises StoreUnavailable.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any, cast

from ..errors import StoreUnavailable
from .base import Store

__all__ = ["READ_TIMEOUT_S", "bounded"]

READ_TIMEOUT_S = 2.0
"""How long a decision waits for each identification or refresh read (and link write)."""


class _Bounded:
    def __init__(self, store: Store, seconds: float) -> None:
        self._store = store
        self._seconds = seconds

    def __getattr__(self, name: str) -> Any:
        member = getattr(self._store, name)
        if not inspect.iscoroutinefunction(member):
            return member
        seconds = self._seconds

        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                async with asyncio.timeout(seconds):
                    return await cast(Callable[..., Any], member)(*args, **kwargs)
            except TimeoutError:
                raise StoreUnavailable(f"{name}: no answer within {seconds:g} s") from None

        return call


def bounded(store: Store, seconds: float = READ_TIMEOUT_S) -> Store:
    """``store``, each of whose coroutine methods raises StoreUnavailable after ``seconds``."""
    return cast(Store, _Bounded(store, seconds))
