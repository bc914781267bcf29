"""Durable records: every accepted event and every decision, with its reasons."""

from .base import DecisionRecord, EventRecord, Store, open_store

__all__ = ["DecisionRecord", "EventRecord", "Store", "open_store"]
