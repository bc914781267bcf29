"""Durable records: every accepted event and every decision, with its reasons."""

from .base import (
    AdminSession,
    ApiKey,
    Contact,
    DecisionQuery,
    DecisionRecord,
    EventRecord,
    GroupCounts,
    History,
    PageView,
    Store,
    TokenUse,
    VariantCounts,
)
from .catalog import PageClaim, Product, ProductSource
from .configs import ConfigHead, ConfigInfo, ConfigVersion
from .contact_events import ContactEvent, Refreshed
from .outbox import (
    Attempt,
    Claimed,
    Delivery,
    DeliveryQuery,
    DeliveryStatus,
    DisabledWebhook,
    Message,
)
from .product_rollups import ProductCounts, Purchases, StrategyCounts, StrategyDay
from .rollups import DAY_MS, DayCounts, Goals
from .submissions import RateLimit, Submission, SubmissionQuery, Submitted

__all__ = [
    "DAY_MS",
    "AdminSession",
    "ApiKey",
    "Attempt",
    "Claimed",
    "ConfigHead",
    "ConfigInfo",
    "ConfigVersion",
    "Contact",
    "ContactEvent",
    "DayCounts",
    "DecisionQuery",
    "DecisionRecord",
    "Delivery",
    "DeliveryQuery",
    "DeliveryStatus",
    "DisabledWebhook",
    "EventRecord",
    "Goals",
    "GroupCounts",
    "History",
    "Message",
    "PageClaim",
    "PageView",
    "Product",
    "ProductCounts",
    "ProductSource",
    "Purchases",
    "RateLimit",
    "Refreshed",
    "Store",
    "StrategyCounts",
    "StrategyDay",
    "Submission",
    "SubmissionQuery",
    "Submitted",
    "TokenUse",
    "VariantCounts",
    "open_store",
]


async def open_store(url: str, goals: Goals | None = None) -> Store:
    """Open the store named by ``url``: ``sqlite:///path/to/file.db`` (the embedded default)
    or ``postgresql://user@host/db`` (many nodes, one database; needs the postgres extra).
    ``goals`` (which rules each goal event converts) become ``store.goals``, and the
    migration that builds the rollups from older logs counts conversions by them (None:
    not known, and that migration refuses to run on logs holding goal events)."""
    if url.startswith("sqlite:///"):
        from .sqlite import SQLiteStore

        return await SQLiteStore.open(url.removeprefix("sqlite:///"), goals)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return await PostgresStore.open(url, goals=goals)
    raise ValueError(f"SITECUE_DB: expected a sqlite:///path or postgresql:// URL, got {url!r}")
