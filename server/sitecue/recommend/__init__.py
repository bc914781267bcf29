"""Product recommendations: the job that counts product events into lists (``job``, with
``counting``), each worker's in-memory index of them (``index``), and the strategies that
pick a visitor's products from it (``strategies``)."""

from __future__ import annotations

from .index import Index, Refresher
from .job import RecommendJob, every_from, run_sites
from .strategies import Pick, recommend

__all__ = ["Index", "Pick", "RecommendJob", "Refresher", "every_from", "recommend", "run_sites"]
