"""Shared fixtures: GrowthBook's SDK conformance cases, vendored with their licence notice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONFORMANCE = json.loads((Path(__file__).parent / "conformance" / "cases.json").read_text())


def conformance(section: str) -> list[Any]:
    """The cases of one section of GrowthBook's cases.json."""
    return CONFORMANCE[section]  # type: ignore[no-any-return]
