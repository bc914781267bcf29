"""Durable records: every accepted event and every decision, with its reasons."""

from .base import (
    ApiKey,
    Contact,
    DecisionQuery,
    DecisionRecord,
    EventRecord,
    Store,
    VariantCounts,
    open_store,
)

__all__ = [
    "ApiKey",
    "Contact",
    "DecisionQuery",
    "DecisionRecord",
    "EventRecord",
    "Store",
    "VariantCounts",
    "open_store",
]
