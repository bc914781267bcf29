"""The operator's side: admin endpoints behind bearer API keys."""
