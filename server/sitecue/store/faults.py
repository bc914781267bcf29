"""Store faults: an engine's errors that mean "the database cannot serve us now" (stopped,
unreachable, out of disk, read-only) become one :class:`~sitecue.errors.StoreUnavailable`,
which the HTTP layer answers with 503 and ``Retry-After``. Every other error (a constraint
violated, a bug) passes through unchanged: it is not the store's fault, and hiding it
behind a 503 would make it look transient.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import StoreUnavailable

__all__ = ["translate_faults"]

C = TypeVar("C", bound=type)


def translate_faults(is_unavailable: Callable[[BaseException], bool]) -> Callable[[C], C]:
    """A class decorator for an engine: each coroutine method it defines (public or private,
    ``open`` too) raises :class:`StoreUnavailable` from the engine errors that
    ``is_unavailable`` recognises. Methods added later are covered without a line of their
    own, so no endpoint ever meets an engine's own exception for an outage."""

    def translating(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        async def translated(*args: Any, **kwargs: Any) -> Any:
            try:
                return await method(*args, **kwargs)
            except StoreUnavailable:
                raise
            except Exception as err:
                if not is_unavailable(err):
                    raise
                raise StoreUnavailable(f"{type(err).__name__}: {err}") from err

        return translated

    def decorate(cls: C) -> C:
        for name, member in list(vars(cls).items()):
            if isinstance(member, classmethod) and inspect.iscoroutinefunction(member.__func__):
                setattr(cls, name, classmethod(translating(member.__func__)))
            elif inspect.iscoroutinefunction(member):
                setattr(cls, name, translating(member))
        return cls

    return decorate
