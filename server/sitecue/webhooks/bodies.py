"""The body a webhook sends for a message."""

from __future__ import annotations

from typing import Any

import msgspec

from .targets import CompiledWebhook

__all__ = ["render"]


def render(webhook: CompiledWebhook, message: dict[str, Any]) -> bytes:
    """The message as plain JSON: its payload with ``id``, ``event``, ``at`` and ``site``."""
    return msgspec.json.encode(message)
