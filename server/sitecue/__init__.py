"""sitecue: a self-hosted, first-party JavaScript-tag backend for onsite personalization."""

__version__ = "0.1.0"
