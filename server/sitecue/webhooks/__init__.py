"""Outbound webhooks: the messages sitecue sends to other systems, and how their bodies are made."""
